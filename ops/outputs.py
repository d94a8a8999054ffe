"""What a job publishes to a store, made recoverable: a worker dying between publishing and finishing.

A job that stores a version (an edit, an erasure, an extraction) records, just before the version
becomes visible, where it publishes it and the result it will report (`publishing`, through the
host's ``Resident.record_output``). If its worker then dies before the job is finished, the reaper
checks the store (`recovered`): a published version made by this job means the job succeeded with
the recorded result; no such version means it never became visible, and the job is reaped as usual.
So a version is never orphaned, and a retried job never stores a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from config.settings import Settings
from ops.context import Resident, Stores
from ops.operation import dump_result
from store.integrity import CorruptEntryError
from store.versioned import EntryNotFoundError

StoreKind = Literal["variants", "vectors"]


def publishing(at: Resident, store: StoreKind,
               result_for: Callable[[dict[str, Any]], BaseModel]) -> Callable[[dict[str, Any]], None] | None:
    """The store's ``before_publish`` for a job: records the entry and ``result_for(manifest)``; None outside jobs.

    Args:
        at: the resident model and the job's recorder.
        store: which of the tenant's stores the version goes to.
        result_for: the job's result for the version's manifest (as it will be returned).
    """
    record = at.record_output
    if record is None:
        return None

    def before_publish(manifest: dict[str, Any]) -> None:
        record({"store": store, "model": at.model, "ref": f"{manifest['name']}@{manifest['version']}",
                "result": dump_result(result_for(manifest))})

    return before_publish


def recovered(settings: Settings, tenant: str, job_id: str, pending: dict[str, Any]) -> dict[str, Any] | None:
    """The result of a dead job whose pending output was published, or None when it never was.

    Args:
        settings: where the stores are.
        tenant: the job's tenant (its stores).
        job_id: the job; the version must say this job made it (its manifest's provenance).
        pending: what the job recorded with `publishing`.
    """
    stores = Stores.of(settings, tenant)
    store = stores.variants if pending.get("store") == "variants" else stores.vectors
    try:
        manifest = store.manifest(str(pending["model"]), str(pending["ref"]))
    except (EntryNotFoundError, CorruptEntryError, KeyError, ValueError):
        return None
    if manifest.get("provenance", {}).get("job_id") != job_id:
        return None
    result: dict[str, Any] = pending["result"]
    return result


def reconciler(settings: Settings) -> Callable[[Any, dict[str, Any]], dict[str, Any] | None]:
    """`recovered` for a job record (anything with ``id`` and ``tenant``): what the job store's reapers call."""
    def reconcile(record: Any, pending: dict[str, Any]) -> dict[str, Any] | None:
        return recovered(settings, record.tenant, record.id, pending)
    return reconcile

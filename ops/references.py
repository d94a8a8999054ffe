"""References to stored entries: resolved and pinned at submission, loaded and fitted at run time.

A request names a variant or a vector by ``name`` (the latest version) or ``name@N``. The check pins
it to the exact version that exists now (and verifies its files against their hashes), and the job
carries the pinned ``name@N``: a version published between submission and run is never picked up,
and the result names the version that was checked. Every failure has one answer wherever it fires:
404 unknown (or another tenant's), 409 damaged or not fitting the model, 422 malformed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from engine.pass_plan import PassPlan
from ops.context import Facts, Resident
from ops.errors import ConflictError, FieldError, NotFoundError
from store.integrity import CorruptEntryError, NonFiniteError
from store.variants import Variant
from store.vectors import StoredVector
from store.versioned import EntryNotFoundError

Noun = Literal["variant", "vector"]
#: What a client does about a damaged entry of each kind.
REMEDY: dict[Noun, str] = {"variant": "make it again", "vector": "extract it again"}


@contextmanager
def stored(noun: Noun, field: str) -> Iterator[None]:
    """Inside the block, a store's refusal becomes the problem it stands for, naming ``field``."""
    try:
        yield
    except EntryNotFoundError as exc:
        raise NotFoundError(f"Unknown {noun}", str(exc), field) from exc
    except CorruptEntryError as exc:  # a damaged file is reported, never served
        raise ConflictError(f"Corrupt {noun}", f"{exc}; it is not served: delete it and {REMEDY[noun]}", field) from exc
    except NonFiniteError as exc:  # stored before writes were checked: refused, never served
        raise ConflictError(f"{noun.capitalize()} cannot be served", f"{exc}; delete it and {REMEDY[noun]}",
                            field) from exc
    except ValueError as exc:  # a malformed reference
        raise FieldError(str(exc), field) from exc


def check_fits(ref: str, hidden_size: object, lm_name: str, lm_hidden: int, field: str) -> None:
    """409 when a variant was made for a model of another hidden size."""
    if hidden_size != lm_hidden:
        raise ConflictError("Variant does not fit the model", f"variant {ref} was made for hidden size {hidden_size}; "
                       f"{lm_name} has {lm_hidden}", field)


def pin_variant(facts: Facts, ref: str | None, field: str = "variant") -> str | None:
    """The exact version ``ref`` names now (``name@N``), its files verified; None without a variant.

    Raises:
        NotFoundError: no such variant of the caller's (404).
        ConflictError: its files are damaged, or it was made for another hidden size (409).
    """
    if ref is None:
        return None
    with stored("variant", field):
        manifest = facts.stores.variants.verify(facts.model, ref)
    pinned = f"{manifest['name']}@{manifest['version']}"
    if facts.lm is not None:
        check_fits(pinned, manifest.get("hidden_size"), facts.lm.name, facts.lm.hidden_size, field)
    return pinned


def load_variant(at: Resident, ref: str | None, field: str = "variant") -> Variant | None:
    """The caller's variant ``ref`` ready to serve on the resident model, its tensors on the model's device.

    Raises:
        NotFoundError: deleted since the check, or never the caller's (404).
        ConflictError: damaged, made for another shape, or holding components this runtime cannot apply (409).
    """
    if ref is None:
        return None
    with stored("variant", field):
        try:
            variant = at.stores.variants.load(at.model, ref)
        except (EntryNotFoundError, CorruptEntryError, NonFiniteError):
            raise
        except ValueError as exc:  # e.g. a component kind this build does not know
            raise ConflictError("Variant cannot be served", str(exc), field) from exc
    check_fits(variant.ref, variant.manifest.get("hidden_size"), at.lm.name, at.lm.hidden_size, field)
    try:
        at.runtime.check_components(variant.components)
    except ValueError as exc:
        raise ConflictError("Variant cannot be served", str(exc), field) from exc
    return variant.on(at.lm.device)


@contextmanager
def on_variant(at: Resident, ref: str | None) -> Iterator[Variant | None]:
    """Inside the block, this thread's passes on the model run on the variant ``ref`` (None: the base model).

    The plan is removed in ``finally`` by the runtime, whatever the block raises.
    """
    variant = load_variant(at, ref)
    if variant is None:
        yield None
        return
    with at.runtime.active(PassPlan.of_variant(variant.components)):
        yield variant


def load_vector(facts: Facts, ref: str, field: str) -> StoredVector:
    """The caller's stored vector ``ref`` of the request's model.

    Raises:
        NotFoundError: no such vector of the caller's (404).
        ConflictError: its files are damaged (409).
    """
    with stored("vector", field):
        return facts.stores.vectors.load(facts.model, ref)


def pin_vector(facts: Facts, ref: str, field: str) -> str:
    """The exact version ``ref`` names now (``name@N``)."""
    manifest = load_vector(facts, ref, field).manifest
    return f"{manifest['name']}@{manifest['version']}"

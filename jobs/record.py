"""`JobRecord`: one job as the job store keeps it (a Redis hash), read back typed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from config.settings import DEFAULT_TENANT
from schemas.jobs import JobStatus


def new_job_id() -> str:
    return uuid.uuid4().hex



@dataclass
class JobRecord:
    """A job as stored in Redis. Times are UNIX seconds.

    ``tenant`` owns the job (only its keys can see it; its variants and vectors are the ones the
    job reads and writes); ``request_id`` is the id of the HTTP request that submitted it.
    """

    id: str
    kind: str
    model: str
    status: JobStatus
    fraction: float
    stage: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    expires_at: float | None = None
    worker: str | None = None
    cancel_requested: bool = False
    result_json: str | None = None
    error_json: str | None = None
    request_hash: str | None = None
    tenant: str = DEFAULT_TENANT
    request_id: str | None = None

    @property
    def result(self) -> dict[str, Any] | None:
        # Kept as the stored JSON text: the API splices it into responses without parsing it.
        return json.loads(self.result_json) if self.result_json else None

    @property
    def error(self) -> dict[str, Any] | None:
        return json.loads(self.error_json) if self.error_json else None

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> JobRecord:
        def number(key: str) -> float | None:
            return float(raw[key]) if raw.get(key) else None

        return cls(
            id=raw["id"],
            kind=raw["kind"],
            model=raw["model"],
            status=JobStatus(raw["status"]),
            fraction=float(raw.get("fraction") or 0.0),
            stage=raw.get("stage") or raw["status"],
            created_at=float(raw["created_at"]),
            started_at=number("started_at"),
            ended_at=number("ended_at"),
            expires_at=number("expires_at"),
            worker=raw.get("worker") or None,
            cancel_requested=raw.get("cancel_requested") == "1",
            result_json=raw.get("result") or None,
            error_json=raw.get("error") or None,
            request_hash=raw.get("request_hash") or None,
            tenant=raw.get("tenant") or DEFAULT_TENANT,  # records from before tenants: the default
            request_id=raw.get("request_id") or None,
        )

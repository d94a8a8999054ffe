"""Structured logs: one JSON object per line, for the API and the workers alike.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``process`` (``api``/``worker``)
and ``message``, then the fields of the context it was logged in (``request_id``, ``tenant``,
``route`` in the API; ``job_id``, ``request_id``, ``tenant`` in a worker running a job) and any
``extra=`` fields of the call (the API's access line adds ``method``, ``status``, ``duration_ms``).
Control characters in messages come out JSON-escaped, so no input can forge a second line.

No API key is ever a field: the API authenticates before anything is logged with the request's
context, and only the tenant's name is put there.

The context lives in a `ContextVar`: it is per request (asyncio task, and copied into the thread
that runs a sync route) or per job, never shared between them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("interp_log_context", default=None)
# Record attributes that are not extra fields (uvicorn's ``color_message`` is a terminal copy of the message).
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName",
                                                                               "color_message"}


def current_context() -> dict[str, Any]:
    """The fields every line logged here and now carries."""
    return dict(_CONTEXT.get() or {})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (in this task or thread)."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def update_context(**fields: Any) -> None:
    """Add fields to the current context (which `log_context` opened) until it is left."""
    context = _CONTEXT.get()
    if context is not None:
        context.update(fields)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object (see the module docstring for the fields)."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": self.process,
            "message": record.getMessage(),
        }
        entry.update(current_context())
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(process: str, *, fmt: Literal["json", "text"] = "json", level: str = "INFO") -> None:
    """Send every logger's records to stderr, one JSON object per line (or plain text)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

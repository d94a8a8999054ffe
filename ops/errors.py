"""Typed errors of the operations, and the one function that turns any of them into a problem.

An operation refuses a request by raising a `ProblemError` (usually one of its subclasses:
`FieldError` 422, `NotFoundError` 404, `ConflictError` 409, `UnavailableError` 503). Both hosts turn what they
catch into RFC 9457 problem details with `to_problem`: the API answers it, the worker stores it as
the job's error. So a rule has one wording and one status wherever it fires, at submission or in
the worker minutes later.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.editing.hparams import HyperparameterError
from engine.progress import CanceledError
from engine.registry import UnknownModelError
from schemas.problems import FieldError as FieldProblem
from schemas.problems import Problem

INVALID = "Invalid request"


def type_of(title: str) -> str:
    """The problem type URI of a title: ``Unknown variant`` -> ``urn:interp:problem:unknown-variant``."""
    return "urn:interp:problem:" + title.lower().replace(" ", "-")


class ProblemError(Exception):
    """An error to report as a problem.

    Args:
        status: the HTTP status (4xx for the client's mistakes).
        title: short, stable summary of the problem type (its slug is the problem's ``type``).
        detail: what went wrong with this request, and what to do.
        field: the offending request field, when there is one (``texts.3``).
        headers: extra response headers (``Retry-After``).
        slug: the last part of the problem's ``type``, when it is not the title's slug.
        **extra: more members of the problem object (``job_id``, ``limit``).
    """

    def __init__(self, status: int, title: str, detail: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, slug: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.type = f"urn:interp:problem:{slug}" if slug is not None else type_of(title)
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        self.extra = extra


class FieldError(ProblemError):
    """422: a request field has a value the operation cannot take."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(422, INVALID, detail, field=field)


class NotFoundError(ProblemError):
    """404: the request names something that does not exist (or belongs to another tenant)."""

    def __init__(self, title: str, detail: str, field: str | None = None) -> None:
        super().__init__(404, title, detail, field=field)


class ConflictError(ProblemError):
    """409: the state of a named resource prevents the request (damaged, made for another model)."""

    def __init__(self, title: str, detail: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(409, title, detail, field=field, **extra)


class UnavailableError(ProblemError):
    """503: the service cannot take the request now; ``Retry-After`` says when to try again."""

    def __init__(self, title: str, detail: str, retry_after: int) -> None:
        super().__init__(503, title, detail, headers={"Retry-After": str(retry_after)})


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("body", "texts", 0)`` -> ``texts.0``: the field as the client wrote it."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def invalid_fields(errors: list[dict[str, Any]]) -> ProblemError:
    """A 422 listing every invalid field of a validation error (FastAPI's or pydantic's ``errors()``)."""
    listed = [
        # A body that is not JSON at all has loc ("body", <character offset>): the field is the body.
        FieldProblem(field="body" if e.get("type") == "json_invalid" else field_path(e.get("loc", ())),
                     message=e.get("msg", "invalid"), type=e.get("type"))
        for e in errors
    ]
    first = listed[0] if listed else FieldProblem(field="body", message="invalid request")
    return ProblemError(422, INVALID, f"{first.field}: {first.message}", field=first.field,
                        errors=[e.model_dump() for e in listed])


def classify(exc: BaseException) -> ProblemError | None:
    """The problem an exception from an operation stands for, or None when it is a bug.

    Operations raise `ProblemError`s themselves; this also maps what the engine raises when it
    refuses a request's values (a ``ValueError``, a hyperparameter naming its field), a payload
    that does not validate, and a model that is not served.
    """
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, CanceledError):
        return ProblemError(409, "Canceled", "the job was canceled at the client's request")
    if isinstance(exc, UnknownModelError):
        return NotFoundError("Unknown model", str(exc), "model")
    if isinstance(exc, ValidationError):
        return invalid_fields([dict(e) for e in exc.errors()])
    if isinstance(exc, HyperparameterError):
        return FieldError(str(exc).split(": ", 1)[-1], exc.field)
    if isinstance(exc, ValueError):  # the engine refused the request's values: the client's mistake
        return ProblemError(422, INVALID, str(exc), field=getattr(exc, "field", None))
    return None


def to_problem(error: ProblemError, *, instance: str | None = None) -> Problem:
    """The RFC 9457 problem of ``error`` (``instance``: the request path, in the API)."""
    return Problem(type=error.type, title=error.title, status=error.status, detail=error.detail,
                   field=error.field, instance=instance, **error.extra)

"""The shape of every operation: a typed request, a check at submission, a run on the resident model.

An operation is one module holding one `Operation` instance. Both hosts use it the same way:

- the API calls ``check(request, facts)`` when the request arrives, with whatever it knows about
  the model; the check refuses what the run would only fail on (with the field), and returns the
  request with every reference pinned (``variant: "polite"`` -> ``"polite@3"``), which is what a
  job's payload carries;
- the worker validates the payload, calls the same ``check`` with all the facts, then
  ``run(request, resident, progress)``, which returns the typed result;
- a synchronous route calls ``check`` and ``run`` on the model's compute thread.

A `JobOperation` also names its job kind, its job view and the route the API makes for it, so
adding a job is one module here plus its wire types, and one line in `ops.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel

from engine.progress import Progress
from ops.context import Facts, Resident
from schemas.jobs import JobBase

Req = TypeVar("Req", bound=BaseModel)
Res = TypeVar("Res", bound=BaseModel)

#: The problem statuses a job route documents (besides 401/429/422/500, which every route has).
JOB_STATUSES = (401, 404, 409, 413, 422, 503)


@dataclass(frozen=True)
class JobRoute:
    """How a job is named and submitted.

    Attributes:
        kind: the job kind, in job records and views (``trace``).
        view: the job's wire view (``TraceJob``).
        path: the route that submits it (``/trace``).
        summary: the route's one-line summary in the API docs.
        tag: the route's group in the API docs.
    """

    kind: str
    view: type[JobBase]
    path: str
    summary: str
    tag: str


class Operation(Generic[Req, Res]):
    """One operation: its request and result types (from its generic parameters), its check and its run.

    Attributes:
        request: the request's wire type.
        result: the result's wire type.
    """

    request: type[Req]
    result: type[Res]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            types = get_args(base)
            if len(types) == 2 and all(isinstance(t, type) for t in types):
                cls.request, cls.result = types

    def check(self, request: Req, facts: Facts) -> Req:
        """Refuse what the run would fail on, and pin references; the request to run.

        Raises:
            ProblemError: the request cannot run (`FieldError` names the field).
        """
        return request

    def run(self, request: Req, at: Resident, progress: Progress) -> Res:
        """Compute the result of a checked request on the resident model.

        Raises:
            ProblemError: the request turned out not to be runnable.
            CanceledError: ``progress`` was told to stop.
        """
        raise NotImplementedError


class JobOperation(Operation[Req, Res]):
    """An operation that runs as a job on a worker.

    Attributes:
        route: its kind, view and route.
    """

    route: JobRoute

    @property
    def kind(self) -> str:
        return self.route.kind

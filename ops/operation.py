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

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel

from engine.progress import Progress
from ops.context import Facts, Resident
from ops.errors import ProblemError
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


def non_finite_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinity in JSON-like data (``grids.0.probabilities.3.1``), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "result"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite_at(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def dump_result(result: BaseModel) -> dict[str, Any]:
    """A result as the JSON data a job stores: strict JSON, so never a NaN or an infinity.

    Raises:
        ProblemError: 422 naming where the first non-finite number is; the request's numbers drove the
            model past what its arithmetic represents (a noise scale far above the embeddings', say).
    """
    data = result.model_dump(mode="json")
    if (where := non_finite_at(data)) is not None:
        raise ProblemError(422, "Non-finite result", f"the result holds a non-finite number at `{where}`: the "
                           "request's numbers took the model beyond what its arithmetic represents; use smaller "
                           "scales (noise, steering, hyperparameters)")
    return data


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

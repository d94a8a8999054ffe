"""Every operation, listed once: the job kinds the API submits and the worker runs, and the job view union.

Adding a job is a module in `ops/` plus its wire types, and its line here. The API makes each job's
route from this list (`service.routes.operations`), the worker dispatches on it (`workers.tasks`),
and `GET /jobs/{id}` describes a record with its kind's view.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, Field

from ops import attribute, diagnose, edit, erase, extract_vector, generate, lens, score, trace
from ops.operation import JobOperation, Operation
from schemas.jobs import JobBase

#: The jobs, in the order the API documents them.
JOBS: tuple[JobOperation[Any, Any], ...] = (
    score.OPERATION, extract_vector.OPERATION, attribute.OPERATION, erase.OPERATION, edit.OPERATION,
    trace.OPERATION, diagnose.OPERATION,
)
#: The synchronous operations (run in the API process, on its resident models).
SYNCHRONOUS: tuple[Operation[Any, Any], ...] = (generate.OPERATION, lens.OPERATION)

BY_KIND: dict[str, JobOperation[Any, Any]] = {op.kind: op for op in JOBS}
#: kind -> the job's wire view (``"score"`` -> `ScoreJob`).
JOB_VIEWS: dict[str, type[JobBase]] = {op.kind: op.route.view for op in JOBS}

#: Any job, told apart by ``kind`` (the response of ``GET /jobs/{id}``).
Job: Any = Annotated[Union[tuple(op.route.view for op in JOBS)], Field(discriminator="kind")]  # noqa: UP007


def job_kind(kind: str) -> JobOperation[BaseModel, BaseModel]:
    """The job operation of ``kind``.

    Raises:
        KeyError: no operation has that kind.
    """
    return BY_KIND[kind]

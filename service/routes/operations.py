"""One factory makes every job route from its operation: check (pinning references), submit, answer 202.

The endpoint's body type is the operation's request type, given at definition time (this module
does not postpone annotations), so FastAPI validates and documents each route as if written by hand.
"""

from typing import Any

from fastapi import APIRouter, Response

from ops import extract_vector
from ops.operation import JOB_STATUSES, JobOperation
from ops.registry import JOBS
from service.deps import CallerDep, IdempotencyKey, StateDep, facts_for
from service.problems import problem_responses
from service.submit import submit

#: Jobs whose route does more than submit (extraction answers small requests inline): made elsewhere.
OWN_ROUTES = frozenset({extract_vector.OPERATION.kind})


def add_job_route(router: APIRouter, op: JobOperation[Any, Any]) -> None:
    """Register ``POST`` on the operation's path, named (and so identified in the API spec) by the job's kind."""
    request_type = op.request

    def endpoint(body: request_type, state: StateDep, caller: CallerDep,  # type: ignore[valid-type]
                 idempotency_key: IdempotencyKey = None) -> Response:
        facts = facts_for(state, caller, body.model)  # type: ignore[attr-defined]
        return submit(state, caller, op, body, op.check(body, facts), model=facts.model,
                      idempotency_key=idempotency_key)

    route = op.route
    router.add_api_route(route.path, endpoint, methods=["POST"], name=route.kind, response_model=route.view,
                         status_code=202, summary=route.summary, tags=[route.tag],
                         responses=problem_responses(*JOB_STATUSES))


router = APIRouter()
for operation in JOBS:
    if operation.kind not in OWN_ROUTES:
        add_job_route(router, operation)

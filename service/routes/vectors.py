"""Control vectors: extract (directly when small, as a job when large), list, show, delete.

Vectors belong to the tenant that extracted them: each caller sees only its own (another tenant's
is a 404, like a name that does not exist). A damaged stored vector is a 409, never served.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from engine.progress import Progress
from ops.extract_vector import OPERATION as EXTRACT
from ops.references import stored
from schemas.jobs import VectorJob
from schemas.names import NAME_PATTERN, REF_PATTERN
from schemas.steering import ExtractVectorRequest, VectorDeletion, VectorInfo, VectorList
from service.deps import CallerDep, IdempotencyKey, StateDep, facts_for, resident_for, resolve_model
from service.problems import problem_responses
from service.submit import submit

router = APIRouter(tags=["steering"])

Ref = Annotated[str, Path(pattern=REF_PATTERN, description="`name` (latest version) or `name@version`.")]
ModelQuery = Annotated[str | None, Query(pattern=NAME_PATTERN, description="Model name; the default model when "
                                         "omitted.")]


@router.post(
    "/steering/vectors",
    status_code=201,
    response_model=VectorInfo,
    summary="Extract and store a control vector (201 when small; 202 with a job when large)",
    responses={**problem_responses(401, 404, 409, 413, 422, 503),
               202: {"model": VectorJob, "description": "Large extraction: a job whose result is the vector."}},
)
async def extract_steering_vector(
    body: ExtractVectorRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    facts = facts_for(state, caller, body.model)
    checked = EXTRACT.check(body, facts)
    if facts.lm is not None and state.batcher is not None and EXTRACT.runs_inline(checked, facts):
        at = resident_for(state, caller, facts.model)
        info = await state.batcher.run(facts.model, EXTRACT.run, checked, at, Progress())
        return Response(info.model_dump_json(), status_code=201, media_type="application/json",
                        headers={"Location": f"/steering/vectors/{info.ref}?model={facts.model}"})
    return submit(state, caller, EXTRACT, body, checked, model=facts.model, idempotency_key=idempotency_key)


@router.get("/steering/vectors", response_model=VectorList, summary="List stored control vectors",
            responses=problem_responses(404))
def list_steering_vectors(state: StateDep, caller: CallerDep, model: ModelQuery = None) -> VectorList:
    name = resolve_model(state, model)
    return VectorList(vectors=[VectorInfo.from_manifest(m) for m in state.stores(caller.tenant).vectors.list(name)])


@router.get("/steering/vectors/{ref}", response_model=VectorInfo, summary="Show a stored control vector",
            responses=problem_responses(401, 404, 409))
def get_steering_vector(ref: Ref, state: StateDep, caller: CallerDep, model: ModelQuery = None) -> VectorInfo:
    name = resolve_model(state, model)
    with stored("vector", "ref"):
        entry = state.stores(caller.tenant).vectors.load(name, ref)
    return VectorInfo.from_manifest(entry.manifest)


@router.delete("/steering/vectors/{ref}", response_model=VectorDeletion,
               summary="Delete one version (`name@3`) or every version (`name`)", responses=problem_responses(401, 404))
def delete_steering_vector(ref: Ref, state: StateDep, caller: CallerDep, model: ModelQuery = None) -> VectorDeletion:
    name = resolve_model(state, model)
    with stored("vector", "ref"):
        versions = state.stores(caller.tenant).vectors.delete(name, ref)
    return VectorDeletion(model=name, name=ref.split("@")[0], versions=versions)

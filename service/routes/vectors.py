"""Control vectors: extract (directly when small, as a job when large), list, show, delete.

Vectors belong to the tenant that extracted them: each caller sees only its own (another tenant's
is a 404, like a name that does not exist). A damaged stored vector is a 409, never served.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from engine.steering.extraction import extract_vector
from schemas.jobs import VectorJob
from schemas.names import REF_PATTERN
from schemas.steering import ExtractVectorRequest, VectorDeletion, VectorInfo, VectorList
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import ProblemError, problem_responses
from service.submit import submit_job
from store.integrity import CorruptEntryError
from store.versioned import EntryNotFoundError

router = APIRouter(tags=["steering"])

Ref = Annotated[str, Path(pattern=REF_PATTERN, description="`name` (latest version) or `name@version`.")]
ModelQuery = Annotated[str | None, Query(description="Model name; the default model when omitted.")]


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
    name = resolve_model(state, body.model)
    settings = state.settings
    positive, negative = body.contrast()
    field = "pairs" if body.pairs is not None else "positive"
    if len(positive) > settings.max_extraction_pairs:
        raise ProblemError(422, "Invalid request", f"{len(positive)} pairs; the limit is "
                           f"{settings.max_extraction_pairs}", field=field)
    if body.layers == "auto" and len(positive) < 2:
        raise ProblemError(422, "Invalid request", "`auto` scores layers on held-out pairs: give at least 2 "
                           "pairs, or name the layers", field="layers")
    resident = name in state.registry and state.batcher is not None
    if resident:
        lm = state.registry.get(name)
        if body.layers != "auto" and (bad := [l for l in body.layers if l >= lm.n_layers]):  # noqa: E741
            raise ProblemError(422, "Invalid request", f"layers {bad} are out of range: {name} has blocks "
                               f"0..{lm.n_layers - 1}", field="layers")
        for index, text in enumerate([*positive, *negative]):
            if len(lm.tokenizer(text)["input_ids"]) > settings.max_prompt_tokens:
                where = f"{field}.{index % len(positive)}" if body.pairs is not None else \
                    f"{'positive' if index < len(positive) else 'negative'}.{index % len(positive)}"
                raise ProblemError(422, "Invalid request", f"prompt longer than {settings.max_prompt_tokens} "
                                   "tokens", field=where)
    if resident and 2 * len(positive) <= settings.sync_extraction_max_prompts:
        assert state.batcher is not None
        vector = await state.batcher.run(
            name, lambda: extract_vector(lm, positive, negative, layers=body.layers, method=body.method,
                                         reading=body.reading, normalize=body.normalize))
        stored = state.vector_store(caller.tenant).save(body.name, vector,
                                                        provenance={"request": body.model_dump(mode="json")})
        info = VectorInfo.from_manifest(stored.manifest)
        return Response(info.model_dump_json(), status_code=201, media_type="application/json",
                        headers={"Location": f"/steering/vectors/{info.ref}?model={name}"})
    record, created = submit_job(state, caller, kind="steering_vector", model=name,
                                 payload=body.model_dump(mode="json"), idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)


@router.get("/steering/vectors", response_model=VectorList, summary="List stored control vectors",
            responses=problem_responses(404))
def list_steering_vectors(state: StateDep, caller: CallerDep, model: ModelQuery = None) -> VectorList:
    name = resolve_model(state, model)
    return VectorList(vectors=[VectorInfo.from_manifest(m) for m in state.vector_store(caller.tenant).list(name)])


@router.get("/steering/vectors/{ref}", response_model=VectorInfo, summary="Show a stored control vector",
            responses=problem_responses(401, 404, 409))
def get_steering_vector(ref: Ref, state: StateDep, caller: CallerDep, model: ModelQuery = None) -> VectorInfo:
    name = resolve_model(state, model)
    try:
        stored = state.vector_store(caller.tenant).load(name, ref)
    except EntryNotFoundError as exc:
        raise ProblemError(404, "Unknown vector", str(exc).strip("'\""), field="ref") from exc
    except CorruptEntryError as exc:
        raise ProblemError(409, "Corrupt vector", f"{exc}; it is not served: delete it and extract it again",
                           field="ref") from exc
    except ValueError as exc:
        raise ProblemError(422, "Invalid request", str(exc), field="ref") from exc
    return VectorInfo.from_manifest(stored.manifest)


@router.delete("/steering/vectors/{ref}", response_model=VectorDeletion,
               summary="Delete one version (`name@3`) or every version (`name`)", responses=problem_responses(401, 404))
def delete_steering_vector(ref: Ref, state: StateDep, caller: CallerDep, model: ModelQuery = None) -> VectorDeletion:
    name = resolve_model(state, model)
    try:
        versions = state.vector_store(caller.tenant).delete(name, ref)
    except EntryNotFoundError as exc:
        raise ProblemError(404, "Unknown vector", str(exc).strip("'\""), field="ref") from exc
    return VectorDeletion(model=name, name=ref.split("@")[0], versions=versions)

"""The models this deployment serves, and their variants (list, show, delete).

Models are everyone's; variants belong to the tenant that made them: each caller lists, shows
and deletes only its own, and another tenant's variant is a 404 like a name that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from ops.references import stored
from schemas.models import (
    ModelInfo,
    ModelList,
    VariantDeletion,
    VariantDetail,
    VariantInfo,
    VariantList,
)
from schemas.names import NAME_PATTERN, REF_PATTERN
from service.deps import CallerDep, StateDep, resolve_model
from service.problems import problem_responses

router = APIRouter(tags=["models"])

ModelName = Annotated[str, Path(pattern=NAME_PATTERN, description="A served model's name.")]
VariantRef = Annotated[str, Path(pattern=REF_PATTERN, description="`name` (latest version) or `name@version`.")]


@router.get("/models", response_model=ModelList, summary="List the served models and their variants",
            responses=problem_responses(503))
def list_models(state: StateDep, caller: CallerDep) -> ModelList:
    infos = []
    store = state.stores(caller.tenant).variants
    for name, source in state.settings.models.items():
        live = state.directory.live(name)
        variants = [VariantInfo.from_manifest(m) for m in store.list(name)]
        if name in state.registry:
            lm = state.registry.get(name)
            shape: dict[str, Any] = {
                "architecture": lm.architecture, "n_layers": lm.n_layers, "hidden_size": lm.hidden_size,
                "vocab_size": int(lm.model.config.vocab_size),
                "n_parameters": sum(p.numel() for p in lm.model.parameters()),
                "dtype": str(lm.dtype).removeprefix("torch."), "device": str(lm.device),
            }
        elif live:
            # The API does not hold this model: describe it as its workers report it.
            reported = live[0]["models"][name]
            shape = {**reported, "vocab_size": reported.get("vocab_size", 0),
                     "n_parameters": reported.get("n_parameters", 0)}
        else:
            continue  # neither resident here nor on any worker: nothing true to report
        infos.append(ModelInfo(name=name, source=source, workers=len(live), variants=variants, **shape))
    return ModelList(models=infos)


@router.get("/models/{model}/variants", response_model=VariantList, summary="List a model's variants, every version",
            responses=problem_responses(404))
def list_model_variants(model: ModelName, state: StateDep, caller: CallerDep) -> VariantList:
    name = resolve_model(state, model)
    listed = state.stores(caller.tenant).variants.list(name)
    return VariantList(model=name, variants=[VariantInfo.from_manifest(m) for m in listed])


@router.get("/models/{model}/variants/{ref}", response_model=VariantDetail,
            summary="Show a variant version: components, provenance, evaluation report",
            responses=problem_responses(404, 409))
def get_model_variant(model: ModelName, ref: VariantRef, state: StateDep, caller: CallerDep) -> VariantDetail:
    name = resolve_model(state, model)
    with stored("variant", "ref"):  # both files checked against their hashes: a damaged version is not described
        manifest = state.stores(caller.tenant).variants.verify(name, ref)
    return VariantDetail.from_manifest(manifest)


@router.delete("/models/{model}/variants/{ref}", response_model=VariantDeletion,
               summary="Delete one version (`name@3`) or every version (`name`); numbers are never reused",
               responses=problem_responses(404))
def delete_model_variant(model: ModelName, ref: VariantRef, state: StateDep, caller: CallerDep) -> VariantDeletion:
    name = resolve_model(state, model)
    with stored("variant", "ref"):
        versions = state.stores(caller.tenant).variants.delete(name, ref)
    return VariantDeletion(model=name, name=ref.split("@")[0], versions=versions)

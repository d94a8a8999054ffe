"""The models this deployment serves, and their variants."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.variant_store import list_variants
from schemas.models import ModelInfo, ModelList, VariantInfo
from service.deps import StateDep
from service.problems import problem_responses

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, summary="List the served models and their variants",
            responses=problem_responses(503))
def list_models(state: StateDep) -> ModelList:
    infos = []
    for name, source in state.settings.models.items():
        live = state.directory.live(name)
        variants = [VariantInfo(**v) for v in list_variants(state.settings.variant_store, name)]
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

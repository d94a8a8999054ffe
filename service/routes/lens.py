"""`POST /logit-lens`: what the model would predict after each block (synchronous)."""

from __future__ import annotations

import contextlib
import time

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from engine.lens.logit_lens import LensReading, logit_lens
from engine.loading import LoadedModel
from engine.prompts import EmptyPromptError, PromptTooLongError, decode, encode_prompt
from engine.runtime import PassPlan
from schemas.lens import (
    LensCell,
    LensLayer,
    LensTarget,
    LensToken,
    LogitLensRequest,
    LogitLensResponse,
    TokenInfo,
    TokenRef,
)
from service.deps import CallerDep, StateDep, resolve_model
from service.problems import ProblemError, problem_responses
from service.request_checks import check_at_most, check_count, invalid
from service.variants import load_variant

router = APIRouter(tags=["debugging"])


def token_id(lm: LoadedModel, ref: TokenRef, field: str) -> int:
    """A token id as given, or the one token a text encodes to; a 422 naming ``field`` otherwise."""
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    if isinstance(ref, int):
        if not 0 <= ref < vocab:
            raise invalid(f"token id {ref} is outside the vocabulary (0..{vocab - 1})", field)
        return ref
    encoded = list(lm.tokenizer(ref, add_special_tokens=False)["input_ids"])
    if len(encoded) != 1:
        raise invalid(f"{ref!r} encodes to {len(encoded)} tokens; give one token (mind the leading space) or a "
                      "token id", field)
    return int(encoded[0])


def resolve_targets(lm: LoadedModel, targets: list[TokenRef]) -> list[int]:
    """Token ids of the tracked tokens."""
    return [token_id(lm, target, f"targets.{index}") for index, target in enumerate(targets)]


def describe(lm: LoadedModel, reading: LensReading) -> list[LensLayer]:
    text = {t: decode(lm.tokenizer, [t]) for t in {*reading.top_ids.flatten().tolist(), *reading.target_ids}}
    layers = []
    for layer in range(reading.n_layers):
        cells = []
        for column in range(len(reading.positions)):
            top = [LensToken(id=int(t), text=text[int(t)], probability=float(p))
                   for t, p in zip(reading.top_ids[layer, column], reading.top_probs[layer, column], strict=True)]
            targets = [LensTarget(id=t, text=text[t], probability=float(reading.target_probs[layer, column, k]),
                                  rank=int(reading.target_ranks[layer, column, k]))
                       for k, t in enumerate(reading.target_ids)]
            cells.append(LensCell(top=top, targets=targets))
        layers.append(LensLayer(layer=layer, cells=cells))
    return layers


@router.post(
    "/logit-lens",
    response_model=LogitLensResponse,
    summary="Logit lens: decode the residual stream after every block (synchronous)",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
async def read_logit_lens(body: LogitLensRequest, state: StateDep, caller: CallerDep) -> Response:
    name = resolve_model(state, body.model)
    settings = state.settings
    if name not in state.registry or state.batcher is None:
        raise ProblemError(503, "Model not resident",
                           f"model {name!r} is not loaded in the API process (INTERP_API_LOAD_MODELS)",
                           headers={"Retry-After": str(settings.retry_after_seconds)})
    lm = state.registry.get(name)
    field = "messages" if body.messages is not None else "prompt"
    try:
        ids = encode_prompt(lm.tokenizer, prompt=body.prompt,
                            messages=[m.model_dump() for m in body.messages] if body.messages else None,
                            max_tokens=settings.max_prompt_tokens)
    except (PromptTooLongError, EmptyPromptError, ValueError) as exc:
        raise invalid(str(exc), field) from exc
    positions = list(range(len(ids))) if body.positions == "all" else body.positions
    if not positions:
        raise invalid("give at least one position", "positions")
    check_count(len(positions), settings.max_lens_positions, "positions",
                rule=f"the limit is {settings.max_lens_positions} (the prompt has {len(ids)} tokens)")
    if bad := [p for p in positions if not -len(ids) <= p < len(ids)]:
        raise invalid(f"positions {bad} are outside the prompt's {len(ids)} tokens", "positions")
    check_at_most(body.top_k, settings.max_lens_top_k, "top_k")
    check_count(len(body.targets), settings.max_lens_targets, "targets")
    targets = resolve_targets(lm, body.targets)
    variant = load_variant(state, caller, lm, body.variant)
    runtime = state.registry.runtime(name)
    # load_variant refuses (409) a variant with components the runtime cannot apply yet.
    plan = PassPlan.of_variant(variant.components) if variant else None
    started = time.perf_counter()

    def read() -> LensReading:
        # On the model's thread: the variant's plan is active for this pass only.
        with runtime.active(plan) if plan is not None else contextlib.nullcontext():
            return logit_lens(lm, ids, positions, top_k=body.top_k, targets=targets)

    reading = await state.batcher.run(name, read)

    def respond() -> bytes:  # up to layers x positions x top_k tokens: off the event loop
        return LogitLensResponse(
            model=name, variant=variant.ref if variant else None,
            tokens=[TokenInfo(id=t, text=decode(lm.tokenizer, [t])) for t in ids], positions=reading.positions,
            targets=[TokenInfo(id=t, text=decode(lm.tokenizer, [t])) for t in targets], layers=describe(lm, reading),
            elapsed_seconds=time.perf_counter() - started,
        ).model_dump_json().encode()

    return Response(await run_in_threadpool(respond), media_type="application/json")

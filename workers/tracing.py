"""The `trace` task: causal tracing or activation patching over a (kind x layer x token) grid."""

from __future__ import annotations

import time
from typing import Any

from config.settings import Settings
from engine.attribution.inputs import resolve_next_token
from engine.loading import LoadedModel
from engine.prompts import decode
from engine.tracing.activation_patching import activation_patching
from engine.tracing.causal_trace import CausalTrace, causal_trace, embedding_std, subject_span
from engine.tracing.grid import TraceGrid
from engine.tracing.patching import ChunkCallback
from schemas.lens import TokenInfo
from schemas.tracing import SubjectSpan, TraceGridView, TraceRequest, TraceResult
from workers.context import JobContext
from workers.runtime import WorkerRuntime


def answer_token(lm: LoadedModel, ids: list[int], answer: str | int | None) -> int:
    """The answer's token id: the prompt's top prediction, an id, or a text that encodes to one token."""
    if isinstance(answer, str):
        encoded = list(lm.tokenizer(answer, add_special_tokens=False)["input_ids"])
        if len(encoded) != 1:
            raise ValueError(f"the answer {answer!r} encodes to {len(encoded)} tokens; give one token (mind the "
                             "leading space) or a token id")
    return resolve_next_token(lm, ids, answer)


def token_infos(lm: LoadedModel, ids: list[int]) -> list[TokenInfo]:
    return [TokenInfo(id=t, text=decode(lm.tokenizer, [t])) for t in ids]


def check_trace_size(settings: Settings, *, n_tokens: int, n_cells: int, samples: int) -> None:
    """The limits a trace must respect (the route checks them first, with the field, when it can)."""
    if n_tokens > settings.max_trace_tokens:
        raise ValueError(f"the prompt has {n_tokens} tokens; traces allow {settings.max_trace_tokens}")
    if samples > settings.max_trace_samples:
        raise ValueError(f"samples is {samples}; the limit is {settings.max_trace_samples}")
    if n_cells * samples > settings.max_trace_evaluations:
        raise ValueError(f"{n_cells} cells x {samples} samples exceed the limit of {settings.max_trace_evaluations} "
                         "restored runs; restrict `layers`, `tokens` or `kinds`")


def grid_views(grid: TraceGrid) -> list[TraceGridView]:
    return [TraceGridView(kind=kind, window=1 if kind == "residual" else grid.window,
                          probabilities=grid.mean(kind).tolist(), indirect_effects=grid.indirect_effect(kind).tolist())
            for kind in grid.kinds]


def describe_causal_trace(lm: LoadedModel, ids: list[int], subject_text: str, traced: CausalTrace,
                          started: float) -> TraceResult:
    """The wire view of an engine causal trace."""
    grid = traced.grid
    return TraceResult(
        method="causal_trace", tokens=token_infos(lm, ids),
        subject=SubjectSpan(text=subject_text, start=traced.subject[0], end=traced.subject[1]),
        answer=TokenInfo(id=grid.answer, text=decode(lm.tokenizer, [grid.answer])), layers=grid.layers,
        positions=grid.tokens, samples=int(grid.p_corrupted.shape[0]), noise_scale=traced.noise_scale,
        seed=traced.seed, first_difference=traced.subject[0], p_clean=grid.p_clean,
        p_corrupted=float(grid.p_corrupted.mean()), p_corrupted_samples=grid.p_corrupted.tolist(),
        grids=grid_views(grid), evaluations=grid.evaluations, elapsed_seconds=time.perf_counter() - started,
    )


def trace(lm: LoadedModel, settings: Settings, request: TraceRequest, on_chunk: ChunkCallback) -> TraceResult:
    """Run the request's trace and describe it on the wire."""
    started = time.perf_counter()
    n_rows = len(set(request.layers)) if request.layers else lm.n_layers
    if request.method == "causal_trace":
        if request.subject is None:
            raise ValueError("causal_trace needs a `subject` to corrupt")
        ids, span = subject_span(lm.tokenizer, request.prompt, request.subject)
        n_columns = len(set(request.tokens)) if request.tokens else len(ids)
        check_trace_size(settings, n_tokens=len(ids), n_cells=len(request.kinds) * n_rows * n_columns,
                         samples=request.samples)
        answer = answer_token(lm, ids, request.answer)
        scale = request.noise_scale or request.noise_multiplier * embedding_std(lm)
        traced = causal_trace(lm, ids, span, answer, kinds=list(request.kinds), layers=request.layers,
                              tokens=request.tokens, window=request.window, samples=request.samples,
                              noise_scale=scale, seed=request.seed, on_chunk=on_chunk)
        return describe_causal_trace(lm, ids, request.subject, traced, started)
    if request.corrupted_prompt is None:
        raise ValueError("activation_patching needs a `corrupted_prompt`")
    ids = list(lm.tokenizer(request.prompt)["input_ids"])
    corrupted_ids = list(lm.tokenizer(request.corrupted_prompt)["input_ids"])
    n_columns = len(set(request.tokens)) if request.tokens else len(ids)
    check_trace_size(settings, n_tokens=max(len(ids), len(corrupted_ids)),
                     n_cells=len(request.kinds) * n_rows * n_columns, samples=1)
    answer = answer_token(lm, ids, request.answer)
    patched = activation_patching(lm, ids, corrupted_ids, answer, kinds=list(request.kinds), layers=request.layers,
                                  tokens=request.tokens, window=request.window, direction=request.direction,
                                  on_chunk=on_chunk)
    grid = patched.grid
    return TraceResult(
        method="activation_patching", tokens=token_infos(lm, ids), corrupted_tokens=token_infos(lm, corrupted_ids),
        answer=TokenInfo(id=answer, text=decode(lm.tokenizer, [answer])), layers=grid.layers, positions=grid.tokens,
        samples=1, direction=request.direction, first_difference=patched.first_difference, p_clean=grid.p_clean,
        p_corrupted=float(grid.p_corrupted.mean()), p_corrupted_samples=grid.p_corrupted.tolist(),
        grids=grid_views(grid), evaluations=grid.evaluations, elapsed_seconds=time.perf_counter() - started,
    )


def run_trace(runtime: WorkerRuntime, context: JobContext, model: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Trace the request and return a `TraceResult` as JSON, reporting progress per forward pass."""
    request = TraceRequest.model_validate(payload)
    lm = runtime.registry.get(model)
    context.report(0.0, "tracing")

    def progress(done: int, total: int) -> None:
        context.report(min(done / max(total, 1), 0.99), "tracing")

    return trace(lm, runtime.settings, request, progress).model_dump(mode="json")

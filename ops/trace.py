"""`trace`: causal tracing or activation patching over a (kind x layer x token) grid (a job).

`check_grid` is the one rule on a grid's size, used here and by `diagnose`: distinct kinds x
distinct layers (all blocks when none are given) x distinct tokens (all of the prompt's) x samples
restored runs, against ``max_trace_evaluations``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from engine.attribution.inputs import resolve_next_token
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.prompts import decode, tokenize
from engine.tracing.activation_patching import activation_patching
from engine.tracing.causal_trace import CausalTrace, causal_trace, embedding_std, subject_span
from engine.tracing.grid import TraceGrid
from ops.checks import check_at_most, check_layers, token
from ops.context import Facts, Resident
from ops.errors import FieldError
from ops.operation import JobOperation, JobRoute
from schemas.jobs import TraceJob
from schemas.lens import TokenInfo
from schemas.tracing import SubjectSpan, TraceGridView, TraceRequest, TraceResult


def check_grid(facts: Facts, *, n_tokens: int, kinds: Sequence[str], samples: int,
               layers: Sequence[int] | None = None, tokens: Sequence[int] | None = None) -> None:
    """Refuse, with the field, a grid the run would only fail on: its prompt, samples, ranges and size."""
    settings = facts.settings
    if n_tokens > settings.max_trace_tokens:
        raise FieldError(f"the prompt has {n_tokens} tokens; traces allow {settings.max_trace_tokens}", "prompt")
    check_at_most(samples, settings.max_trace_samples, "samples")
    if tokens is not None and (bad := [t for t in tokens if not -n_tokens <= t < n_tokens]):
        raise FieldError(f"tokens {bad} are outside the prompt's {n_tokens} tokens", "tokens")
    if layers is not None:
        check_layers(facts, layers, "layers")
    if facts.n_layers is None:
        return
    rows = len(set(layers)) if layers else facts.n_layers
    columns = len({t % n_tokens for t in tokens}) if tokens else n_tokens
    runs = len(set(kinds)) * rows * columns * samples
    if runs > settings.max_trace_evaluations:
        raise FieldError(f"the grid needs {runs} restored runs (kinds x layers x tokens x samples); the limit is "
                         f"{settings.max_trace_evaluations}: restrict `layers`, `tokens`, `kinds` or `samples`",
                         "samples" if samples > 1 else "tokens")


def token_infos(lm: LoadedModel, ids: Sequence[int]) -> list[TokenInfo]:
    return [TokenInfo(id=t, text=decode(lm.tokenizer, [t])) for t in ids]


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


class Trace(JobOperation[TraceRequest, TraceResult]):
    route = JobRoute(kind="trace", view=TraceJob, path="/trace", tag="debugging",
                     summary="Causal tracing or activation patching (job): which activations carry the answer")

    def check(self, request: TraceRequest, facts: Facts) -> TraceRequest:
        causal = request.method == "causal_trace"
        if causal and request.subject is None:
            raise FieldError("causal_trace corrupts the subject: give `subject`", "subject")
        if not causal and request.corrupted_prompt is None:
            raise FieldError("activation_patching runs a corrupted prompt: give `corrupted_prompt`",
                             "corrupted_prompt")
        settings = facts.settings
        check_at_most(request.samples, settings.max_trace_samples, "samples")
        if facts.lm is None:  # the shape checks below need the tokenizer: the worker runs them
            if request.layers is not None:
                check_layers(facts, request.layers, "layers")
            return request
        lm, special = facts.lm, request.allow_special_tokens
        n_tokens = len(tokenize(lm.tokenizer, request.prompt, allow_special_tokens=special))
        if causal and (request.subject or "") not in request.prompt:
            raise FieldError("the subject must occur in the prompt", "subject")
        corrupted = tokenize(lm.tokenizer, request.corrupted_prompt or "", allow_special_tokens=special)
        if not causal and (n_corrupted := len(corrupted)) != n_tokens:
            raise FieldError(f"the corrupted prompt has {n_corrupted} tokens and the prompt {n_tokens}; activation "
                             "patching needs equal lengths", "corrupted_prompt")
        check_grid(facts, n_tokens=n_tokens, kinds=request.kinds, layers=request.layers,
                   tokens=request.tokens, samples=request.samples if causal else 1)
        if request.answer is not None:
            token(lm, request.answer, "answer")
        return request

    def run(self, request: TraceRequest, at: Resident, progress: Progress) -> TraceResult:
        lm, started, special = at.lm, time.perf_counter(), request.allow_special_tokens
        kinds = list(dict.fromkeys(request.kinds))
        progress.report(0.0, "tracing")
        on_chunk = progress.counter("tracing", upto=0.99)
        if request.method == "causal_trace":
            assert request.subject is not None  # checked
            ids, span = subject_span(lm.tokenizer, request.prompt, request.subject, allow_special_tokens=special)
            answer = resolve_next_token(lm, ids, request.answer)
            scale = request.noise_scale or request.noise_multiplier * embedding_std(lm)
            traced = causal_trace(lm, ids, span, answer, kinds=kinds, layers=request.layers, tokens=request.tokens,
                                  window=request.window, samples=request.samples, noise_scale=scale,
                                  seed=request.seed, on_chunk=on_chunk)
            return describe_causal_trace(lm, ids, request.subject, traced, started)
        ids = tokenize(lm.tokenizer, request.prompt, allow_special_tokens=special)
        corrupted_ids = tokenize(lm.tokenizer, request.corrupted_prompt or "", allow_special_tokens=special)
        answer = resolve_next_token(lm, ids, request.answer)
        patched = activation_patching(lm, ids, corrupted_ids, answer, kinds=kinds, layers=request.layers,
                                      tokens=request.tokens, window=request.window, direction=request.direction,
                                      on_chunk=on_chunk)
        grid = patched.grid
        return TraceResult(
            method="activation_patching", tokens=token_infos(lm, ids), corrupted_tokens=token_infos(lm, corrupted_ids),
            answer=TokenInfo(id=answer, text=decode(lm.tokenizer, [answer])), layers=grid.layers,
            positions=grid.tokens, samples=1, direction=request.direction, first_difference=patched.first_difference,
            p_clean=grid.p_clean, p_corrupted=float(grid.p_corrupted.mean()),
            p_corrupted_samples=grid.p_corrupted.tolist(), grids=grid_views(grid), evaluations=grid.evaluations,
            elapsed_seconds=time.perf_counter() - started,
        )


OPERATION = Trace()

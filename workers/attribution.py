"""The `attribute` task: Integrated Gradients or SHAP over the input tokens, with progress."""

from __future__ import annotations

import time
from typing import Any

import torch

from engine.attribution.inputs import (
    aggregate,
    baseline_id,
    prepare_input,
    resolve_continuation,
    resolve_generated,
    resolve_next_token,
    token_units,
    word_units,
)
from engine.attribution.integrated_gradients import integrated_gradients
from engine.attribution.shap_text import shap_attribution
from engine.prompts import decode
from schemas.attribution import (
    AttributedToken,
    AttributeRequest,
    AttributionResult,
    ContinuationTarget,
    GenerateTarget,
    TargetAttribution,
)
from workers.context import JobContext
from workers.runtime import WorkerRuntime
from workers.variants import on_variant


def run_attribute(
    runtime: WorkerRuntime, context: JobContext, model: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Explain the request's targets on its variant (or the base model); an `AttributionResult` as JSON."""
    request = AttributeRequest.model_validate(payload)
    with on_variant(runtime, context, model, request.variant) as variant:
        result = explain(runtime, context, model, request)
    result["variant"] = variant.ref if variant is not None else None
    return result


def explain(runtime: WorkerRuntime, context: JobContext, model: str, request: AttributeRequest) -> dict[str, Any]:
    """Explain the request's targets and return an `AttributionResult` as JSON."""
    lm = runtime.registry.get(model)
    started = time.perf_counter()
    prepared = prepare_input(
        lm.tokenizer, prompt=request.prompt,
        messages=[m.model_dump() for m in request.messages] if request.messages else None,
        max_tokens=runtime.settings.max_prompt_tokens,
    )
    context.report(0.0, "resolving targets")
    if isinstance(request.target, ContinuationTarget):
        targets = resolve_continuation(lm, request.target.text)
    elif isinstance(request.target, GenerateTarget):
        targets = resolve_generated(lm, prepared.input_ids, request.target.n_tokens)
    else:
        targets = [resolve_next_token(lm, prepared.input_ids, request.target.token)]

    def progress(done: int, total: int) -> None:
        context.report(min(done / max(total, 1), 0.99), "attributing")

    f_baseline: list[float | None]
    change: list[float | None]
    if request.method == "integrated_gradients":
        ig = integrated_gradients(
            lm, prepared.input_ids, targets, attributable=prepared.attributable,
            baseline=baseline_id(lm, request.baseline), objective=request.objective, rule=request.rule,
            n_steps=request.n_steps, tolerance=request.tolerance, max_evaluations=request.max_evaluations,
            internal_batch_size=request.internal_batch_size,
            compute_dtype=torch.float32 if request.precision == "float32" else None, on_chunk=progress,
        )
        precision: str | None = str(ig.compute_dtype).removeprefix("torch.")
        attributions, f_input, probability, evaluations = ig.attributions, ig.f_input, ig.probability, ig.evaluations
        f_baseline = ig.f_baseline.tolist()
        change = ig.attribution_change.tolist() if ig.attribution_change is not None else [None] * len(targets)
        base_values: list[float | None] = [None] * len(targets)
    else:
        # mask_token_id None: the engine's documented default (mask, else unk, else pad; id 0 counts).
        sv = shap_attribution(lm, prepared.input_ids, targets, attributable=prepared.attributable,
                              objective=request.objective, max_evals=request.max_evals, seed=request.seed,
                              on_batch=progress)
        attributions, f_input, probability, evaluations = sv.attributions, sv.f_input, sv.probability, sv.evaluations
        f_baseline, change, base_values = [None] * len(targets), [None] * len(targets), sv.base_values.tolist()
        precision = None

    units = word_units(lm, prepared) if request.aggregate == "word" else token_units(lm, prepared)
    matrix = aggregate(attributions.double(), units)
    rows = []
    for t, target in enumerate(targets):
        total, f_in, f_base, base = float(matrix[t].sum()), float(f_input[t]), f_baseline[t], base_values[t]
        figures: dict[str, float | None] = {"completeness_error": None, "relative_error": None,
                                            "local_accuracy_error": None}
        if f_base is not None:  # IG: completeness against the exact change of F along the path
            error = abs(total - (f_in - f_base))
            figures["completeness_error"] = error
            figures["relative_error"] = error / abs(f_in - f_base) if f_in != f_base else None
        if base is not None:  # SHAP: local accuracy
            figures["local_accuracy_error"] = abs(base + total - f_in)
        rows.append(TargetAttribution(
            token=decode(lm.tokenizer, [target]), id=target, position=t, probability=float(probability[t]),
            f_input=float(f_input[t]), f_baseline=f_baseline[t], attribution_sum=total,
            attribution_change=change[t], base_value=base_values[t], evaluations=evaluations, **figures,
        ))
    result = AttributionResult(
        method=request.method, objective=request.objective, aggregate=request.aggregate,
        rule=request.rule if request.method == "integrated_gradients" else None,
        baseline=str(request.baseline) if request.method == "integrated_gradients" else None,
        precision=precision,
        inputs=[AttributedToken(text=u.text, id=u.id, start=u.start, end=u.end, attributable=u.attributable)
                for u in units],
        attributions=matrix.tolist(), targets=rows, evaluations=evaluations,
        elapsed_seconds=time.perf_counter() - started,
    )
    return result.model_dump(mode="json")

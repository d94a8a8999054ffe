"""`attribute`: Integrated Gradients or SHAP over the input tokens, with quality figures (a job)."""

from __future__ import annotations

import time

import torch

from engine.attribution.inputs import (
    AttributionInput,
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
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.prompts import decode
from ops.checks import as_field, prompt_field, token
from ops.context import Facts, Resident
from ops.operation import JobOperation, JobRoute
from ops.references import on_variant, pin_variant
from schemas.attribution import (
    AttributedToken,
    AttributeRequest,
    AttributionResult,
    ContinuationTarget,
    GenerateTarget,
    NextTokenTarget,
    TargetAttribution,
)
from schemas.jobs import AttributeJob


def prepare(lm: LoadedModel, request: AttributeRequest, limit: int) -> AttributionInput:
    """The request's prompt as attributable tokens; a 422 naming ``prompt`` or ``messages`` otherwise."""
    with as_field(prompt_field(request.messages)):
        return prepare_input(lm.tokenizer, prompt=request.prompt,
                             messages=[m.model_dump() for m in request.messages] if request.messages else None,
                             max_tokens=limit, allow_special_tokens=request.allow_special_tokens)


def targets_of(lm: LoadedModel, request: AttributeRequest, input_ids: list[int]) -> list[int]:
    """The token ids to explain: the next token, a given continuation, or a greedy one."""
    target = request.target
    if isinstance(target, ContinuationTarget):
        with as_field("target.text"):
            return resolve_continuation(lm, target.text, allow_special_tokens=request.allow_special_tokens)
    if isinstance(target, GenerateTarget):
        return resolve_generated(lm, input_ids, target.n_tokens)
    return [resolve_next_token(lm, input_ids, target.token)]


class Attribute(JobOperation[AttributeRequest, AttributionResult]):
    route = JobRoute(kind="attribute", view=AttributeJob, path="/attribute", tag="attribution",
                     summary="Attribute the output to input tokens (job); see GET /jobs/{id} and /jobs/{id}/view")

    def check(self, request: AttributeRequest, facts: Facts) -> AttributeRequest:
        variant = pin_variant(facts, request.variant)
        if facts.lm is not None:  # refuse here, with the field, what the run would only fail on
            lm = facts.lm
            prepare(lm, request, facts.settings.max_prompt_tokens)
            if request.method == "integrated_gradients":
                with as_field("baseline"):
                    baseline_id(lm, request.baseline)
            if isinstance(request.target, NextTokenTarget) and request.target.token is not None:
                token(lm, request.target.token, "target.token")
            if isinstance(request.target, ContinuationTarget):
                with as_field("target.text"):
                    resolve_continuation(lm, request.target.text, allow_special_tokens=request.allow_special_tokens)
        return request.model_copy(update={"variant": variant})

    def run(self, request: AttributeRequest, at: Resident, progress: Progress) -> AttributionResult:
        with on_variant(at, request.variant) as variant:
            result = explain(at, request, progress)
        return result.model_copy(update={"variant": variant.ref if variant is not None else None})


def explain(at: Resident, request: AttributeRequest, progress: Progress) -> AttributionResult:
    """Explain the request's targets on the model as it runs now (base or variant)."""
    lm, started = at.lm, time.perf_counter()
    prepared = prepare(lm, request, at.settings.max_prompt_tokens)
    progress.report(0.0, "resolving targets")
    targets = targets_of(lm, request, prepared.input_ids)
    on_chunk = progress.counter("attributing", upto=0.99)
    f_baseline: list[float | None]
    change: list[float | None]
    if request.method == "integrated_gradients":
        ig = integrated_gradients(
            lm, prepared.input_ids, targets, attributable=prepared.attributable,
            baseline=baseline_id(lm, request.baseline), objective=request.objective, rule=request.rule,
            n_steps=request.n_steps, tolerance=request.tolerance, max_evaluations=request.max_evaluations,
            internal_batch_size=request.internal_batch_size,
            compute_dtype=torch.float32 if request.precision == "float32" else None, on_chunk=on_chunk,
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
                              on_batch=on_chunk)
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
    integrated = request.method == "integrated_gradients"
    return AttributionResult(
        method=request.method, objective=request.objective, aggregate=request.aggregate,
        rule=request.rule if integrated else None, baseline=str(request.baseline) if integrated else None,
        precision=precision,
        inputs=[AttributedToken(text=u.text, id=u.id, start=u.start, end=u.end, attributable=u.attributable)
                for u in units],
        attributions=matrix.tolist(), targets=rows, evaluations=evaluations,
        elapsed_seconds=time.perf_counter() - started,
    )


OPERATION = Attribute()

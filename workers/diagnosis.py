"""The `diagnose` task: attribution, the logit lens and causal tracing, read together into a report.

Stages (and their share of the progress bar): the prediction and the lens (5 %), Integrated
Gradients on the predicted token through the `attribute` task (to 35 %), a causal trace of the
subject (to 95 %), then the findings and, when the model is wrong, two fixes as ready requests: a
ROME edit at the MLP layer that carries the subject (`/edit`, as the editing issue defines it) and a
steering vector along the answer's unembedding direction (`/generate`), which is tried here first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from engine.attribution.inputs import resolve_next_token
from engine.diagnosis.findings import Trajectory, subject_mlp, trajectory
from engine.diagnosis.steering_fix import SteeringFix, propose_steering
from engine.hooks import embed, record_sites
from engine.lens.logit_lens import LensReading, logit_lens
from engine.loading import LoadedModel
from engine.prompts import decode
from engine.tracing.causal_trace import NOISE_MULTIPLIER, causal_trace, embedding_std, subject_span
from schemas.attribution import AttributionResult
from schemas.diagnosis import (
    Decision,
    DiagnoseRequest,
    DiagnosisReport,
    DrivingToken,
    LensLayerView,
    Prediction,
    SubjectMlpView,
    Suggestion,
)
from schemas.lens import LensToken, TokenInfo
from schemas.tracing import SubjectSpan
from workers.attribution import run_attribute
from workers.context import JobContext
from workers.runtime import WorkerRuntime
from workers.tracing import check_trace_size, describe_causal_trace, token_infos

DRIVING_TOKENS = 3


@dataclass
class StageContext(JobContext):
    """A sub-task's view of the job: its progress maps into ``[low, high]`` of the whole."""

    parent: JobContext | None = None
    low: float = 0.0
    high: float = 1.0
    label: str = ""

    def report(self, fraction: float, stage: str) -> None:
        assert self.parent is not None
        self.parent.report(self.low + (self.high - self.low) * fraction, f"{self.label}: {stage}")


def stage(context: JobContext, low: float, high: float, label: str) -> StageContext:
    return StageContext(job_id=context.job_id, store=context.store, tenant=context.tenant,
                        request_id=context.request_id, parent=context, low=low, high=high, label=label)


def quoted(text: str) -> str:
    return repr(text)


def edit_template(prompt: str, start: int, end: int) -> str:
    """The prompt with the subject's characters replaced by ``{}`` (other braces doubled, as str.format)."""
    def escape(part: str) -> str:
        return part.replace("{", "{{").replace("}", "}}")
    return escape(prompt[:start]) + "{}" + escape(prompt[end:])


def variant_name(request: DiagnoseRequest) -> str:
    if request.variant_name:
        return request.variant_name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.expected).strip("-").lower()[:50]
    return f"fix-{slug or 'answer'}"


def lens_views(lm: LoadedModel, reading: LensReading) -> list[LensLayerView]:
    views = []
    for layer in range(reading.n_layers):
        top_id = int(reading.top_ids[layer, 0, 0])
        views.append(LensLayerView(
            layer=layer, top=LensToken(id=top_id, text=decode(lm.tokenizer, [top_id]),
                                       probability=float(reading.top_probs[layer, 0, 0])),
            expected_probability=float(reading.target_probs[layer, 0, 0]),
            expected_rank=int(reading.target_ranks[layer, 0, 0]),
            predicted_probability=float(reading.target_probs[layer, 0, 1]),
            predicted_rank=int(reading.target_ranks[layer, 0, 1])))
    return views


def driving_tokens(attribution: AttributionResult) -> list[DrivingToken]:
    """The attributable inputs that raise the prediction most (positive attribution), strongest first."""
    row = attribution.attributions[0]
    units = [(value, i) for i, value in enumerate(row) if attribution.inputs[i].attributable and value > 0]
    return [DrivingToken(text=attribution.inputs[i].text, position=i, attribution=value)
            for value, i in sorted(units, reverse=True)[:DRIVING_TOKENS]]


def steering_candidates(path: Trajectory, n_layers: int) -> list[int]:
    """Where to steer: just before the wrong answer settles, where the expected one ranked best, mid-depth."""
    layers = [max(path.settles_at - 1, 0), path.best_layer, n_layers // 2]
    return list(dict.fromkeys(layers))


def summarise(lm: LoadedModel, report: dict[str, Any], path: Trajectory, fix: SteeringFix | None) -> list[str]:
    prediction, expected = report["prediction"], report["expected"]
    lines = []
    if path.correct:
        lines.append(f"The model predicts the expected {quoted(expected.token.text)} (p = {expected.probability:.3f}); "
                     f"the lens has it on top from block {path.settles_at} on.")
    else:
        lines.append(f"The model predicts {quoted(prediction.token.text)} (p = {prediction.probability:.3f}); the "
                     f"expected {quoted(expected.token.text)} ranks {expected.rank} (p = {expected.probability:.3g}).")
        lines.append(f"{quoted(prediction.token.text)} wins at block {path.settles_at} and stays on top to the end.")
        if path.lost_at is not None:
            lines.append(f"{quoted(expected.token.text)} was the lens's top token until block {path.lost_at - 1} and "
                         f"is lost at block {path.lost_at}.")
        else:
            lines.append(f"{quoted(expected.token.text)} is never the lens's top token; it ranks best at block "
                         f"{path.best_layer} (rank {path.best_rank}).")
    if report["driving"]:
        lines.append("The prediction is driven most by " + ", ".join(
            f"{quoted(d.text)} ({d.attribution:+.3f})" for d in report["driving"]) + ".")
    mlp: SubjectMlpView = report["mlp"]
    lines.append(f"Restoring MLP outputs at the subject token {quoted(mlp.text)} (position {mlp.position}) brings "
                 f"the prediction back most: blocks {', '.join(map(str, mlp.layers))} (indirect effect "
                 f"{mlp.effects[0]:.3f} at block {mlp.peak_layer}).")
    if fix is not None:
        outcome = "makes it the greedy next token" if fix.verified else \
            f"did not make it the greedy next token (got {quoted(decode(lm.tokenizer, [fix.next_token]))})"
        lines.append(f"Steering along the answer direction at block {fix.layer} with alpha {fix.alpha:g} {outcome}.")
    return lines


def run_diagnose(runtime: WorkerRuntime, context: JobContext, model: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Diagnose the request's prompt and return a `DiagnosisReport` as JSON."""
    request = DiagnoseRequest.model_validate(payload)
    lm, settings = runtime.registry.get(model), runtime.settings
    started = time.perf_counter()
    ids = list(lm.tokenizer(request.prompt)["input_ids"])
    kinds = list(dict.fromkeys([*request.kinds, "mlp"]))
    check_trace_size(settings, n_tokens=len(ids), n_cells=len(kinds) * lm.n_layers * len(ids),
                     samples=request.samples)
    expected_ids = list(lm.tokenizer(request.expected, add_special_tokens=False)["input_ids"])
    if not expected_ids:
        raise ValueError("the expected answer encodes to no tokens")
    expected = expected_ids[0]

    context.report(0.0, "predicting")
    predicted = resolve_next_token(lm, ids, None)
    reading = logit_lens(lm, ids, [-1], top_k=request.top_k, targets=[expected, predicted])

    def standing(token: int) -> Prediction:
        column = reading.target_ids.index(token)
        return Prediction(token=TokenInfo(id=token, text=decode(lm.tokenizer, [token])),
                          probability=float(reading.target_probs[-1, 0, column]),
                          rank=int(reading.target_ranks[-1, 0, column]))

    path = trajectory([int(r) for r in reading.target_ranks[:, 0, 0]],
                      [float(p) for p in reading.target_probs[:, 0, 0]],
                      [int(r) for r in reading.target_ranks[:, 0, 1]])
    context.report(0.05, "attribution")
    attribution = AttributionResult.model_validate(run_attribute(
        runtime, stage(context, 0.05, 0.35, "attribution"), model,
        {"model": model, "prompt": request.prompt, "target": {"kind": "next_token", "token": predicted},
         "max_evaluations": request.attribution_evaluations}))
    driving = driving_tokens(attribution)

    if request.subject is not None:
        _, span = subject_span(lm.tokenizer, request.prompt, request.subject)
        subject_text = request.subject
        chars = (request.prompt.find(request.subject), request.prompt.find(request.subject) + len(request.subject))
    else:
        # No subject given: the input token that drives the prediction most (the last one excluded: it
        # is where the answer is read, not what it is about).
        candidates = [d for d in driving if d.position < len(ids) - 1] or driving
        if not candidates:
            raise ValueError("no input token drives the prediction; give a `subject`")
        unit = attribution.inputs[candidates[0].position]
        span, subject_text, chars = (candidates[0].position, candidates[0].position + 1), unit.text, \
            (unit.start, unit.end)

    scale = NOISE_MULTIPLIER * embedding_std(lm)
    progress = stage(context, 0.35, 0.95, "tracing")
    trace_started = time.perf_counter()
    traced = causal_trace(lm, ids, span, predicted, kinds=kinds, window=request.window, samples=request.samples,
                          noise_scale=scale, on_chunk=lambda done, total: progress.report(done / max(total, 1), "grid"))
    trace_view = describe_causal_trace(lm, ids, subject_text, traced, trace_started)
    found = subject_mlp(traced.grid.indirect_effect("mlp"), traced.grid.layers, traced.grid.tokens, span)
    mlp_view = SubjectMlpView(position=found.token, text=decode(lm.tokenizer, [ids[found.token]]), layers=found.layers,
                              effects=found.effects, peak_layer=found.peak_layer,
                              last_token_peak_layer=found.last_token_peak_layer)

    context.report(0.95, "suggestions")
    suggestions, fix = [], None
    if not path.correct:
        suggestions.append(Suggestion(
            kind="edit", endpoint="/edit", rationale=(
                f"ROME at block {found.last_token_peak_layer}: at the subject's last token, where ROME reads its "
                f"key, the MLP there carries the subject most (causal trace; the strongest cell overall is block "
                f"{found.peak_layer} at {quoted(mlp_view.text)}); the edit writes the expected answer into it for "
                "this subject."),
            body={"model": model, "method": "rome", "name": variant_name(request), "requests": [{
                "prompt": edit_template(request.prompt, *chars), "subject": subject_text,
                "target_new": request.expected, "target_true": decode(lm.tokenizer, [predicted])}],
                  "hyperparameters": {"layers": [found.last_token_peak_layer]}}))
        states, _ = record_sites(lm, embed(lm, ids), ["residual"], positions=[len(ids) - 1])
        norms = {layer: float(states["residual"][layer, 0].float().norm()) for layer in range(lm.n_layers)}
        fix = propose_steering(lm, runtime.registry.runtime(model), ids, expected, predicted,
                               steering_candidates(path, lm.n_layers), norms)
        suggestions.append(Suggestion(
            kind="steering", endpoint="/generate", verified=fix.verified, rationale=(
                f"Adds the direction that raises {quoted(decode(lm.tokenizer, [expected]))} over "
                f"{quoted(decode(lm.tokenizer, [predicted]))} (their unembedding difference through the final "
                f"norm's gain) after block {fix.layer}, on the prompt tokens; tried with alpha {fix.alpha:g}."),
            body={"model": model, "prompt": request.prompt, "max_new_tokens": max(len(expected_ids), 1) + 4,
                  "compare": True, "steering": [{"values": fix.vector.tolist(), "layers": [fix.layer],
                                                 "alpha": fix.alpha, "positions": fix.positions}]}))

    prediction, expected_standing = standing(predicted), standing(expected)
    top = [LensToken(id=int(t), text=decode(lm.tokenizer, [int(t)]), probability=float(p))
           for t, p in zip(reading.top_ids[-1, 0], reading.top_probs[-1, 0], strict=True)]
    summary = summarise(lm, {"prediction": prediction, "expected": expected_standing, "driving": driving,
                             "mlp": mlp_view}, path, fix)
    report = DiagnosisReport(
        prompt=request.prompt, tokens=token_infos(lm, ids), prediction=prediction, expected=expected_standing,
        top=top, driving_tokens=driving, lens=lens_views(lm, reading),
        decision=Decision(correct=path.correct, settles_at=path.settles_at, lost_at=path.lost_at,
                          best_layer=path.best_layer, best_rank=path.best_rank),
        subject=SubjectSpan(text=subject_text, start=span[0], end=span[1]), subject_mlp=mlp_view, summary=summary,
        suggestions=suggestions, attribution=attribution, trace=trace_view,
        elapsed_seconds=time.perf_counter() - started,
    )
    return report.model_dump(mode="json")

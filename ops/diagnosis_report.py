"""How `diagnose` words what it found: lens views, driving tokens, the summary, names of suggested fixes.

Pure functions from engine readings (and the attribution result) to wire pieces, so the operation
itself reads as its stages.
"""

from __future__ import annotations

import re
from typing import Any

from engine.diagnosis.findings import Trajectory
from engine.diagnosis.steering_fix import SteeringFix
from engine.lens.logit_lens import LensReading
from engine.loading import LoadedModel
from engine.prompts import decode
from schemas.attribution import AttributionResult
from schemas.diagnosis import DiagnoseRequest, DrivingToken, LensLayerView, SubjectMlpView
from schemas.lens import LensToken

DRIVING_TOKENS = 3


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



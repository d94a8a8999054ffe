"""`diagnose`: attribution, the logit lens and causal tracing, read together into a report with fixes (a job).

Stages (and their share of the progress bar): the prediction and the lens (5 %), Integrated
Gradients on the predicted token through the `attribute` operation, called in process with a typed
request (to 35 %), a causal trace of the subject (to 95 %), then the findings and, when the model is
wrong, two fixes as ready requests: a ROME edit at the MLP layer that carries the subject (`/edit`)
and a steering vector along the answer's unembedding direction (`/generate`), tried here first.
"""

from __future__ import annotations

import time

from engine.attribution.inputs import resolve_next_token
from engine.diagnosis.findings import Trajectory, subject_mlp, trajectory
from engine.diagnosis.steering_fix import SteeringFix, propose_steering
from engine.hooks import embed, record_sites
from engine.lens.logit_lens import logit_lens
from engine.progress import Progress
from engine.prompts import decode, tokenize
from engine.tracing.causal_trace import NOISE_MULTIPLIER, causal_trace, embedding_std, subject_span
from ops import attribute
from ops.checks import check_at_most
from ops.context import Facts, Resident
from ops.diagnosis_report import (
    driving_tokens,
    edit_template,
    lens_views,
    quoted,
    steering_candidates,
    summarise,
    variant_name,
)
from ops.errors import FieldError
from ops.operation import JobOperation, JobRoute
from ops.trace import check_grid, describe_causal_trace, token_infos
from schemas.attribution import AttributeRequest, NextTokenTarget
from schemas.diagnosis import Decision, DiagnoseRequest, DiagnosisReport, Prediction, SubjectMlpView, Suggestion
from schemas.jobs import DiagnoseJob
from schemas.lens import LensToken, TokenInfo
from schemas.tracing import SiteKind, SubjectSpan


def traced_kinds(request: DiagnoseRequest) -> list[SiteKind]:
    """The kinds traced: the request's, and `mlp` always (it locates the edit)."""
    return list(dict.fromkeys([*request.kinds, "mlp"]))


class Diagnose(JobOperation[DiagnoseRequest, DiagnosisReport]):
    route = JobRoute(kind="diagnose", view=DiagnoseJob, path="/diagnose", tag="debugging",
                     summary="Diagnose a wrong (or right) answer: attribution, lens and tracing, with fixes as "
                     "requests (job)")

    def check(self, request: DiagnoseRequest, facts: Facts) -> DiagnoseRequest:
        if request.subject is not None and request.subject not in request.prompt:
            raise FieldError("the subject must occur in the prompt", "subject")
        check_at_most(request.samples, facts.settings.max_trace_samples, "samples")
        if facts.lm is None:
            return request
        lm, special = facts.lm, request.allow_special_tokens
        n_tokens = len(tokenize(lm.tokenizer, request.prompt, allow_special_tokens=special))
        check_grid(facts, n_tokens=n_tokens, kinds=traced_kinds(request), samples=request.samples)
        if not tokenize(lm.tokenizer, request.expected, allow_special_tokens=special, add_special_tokens=False):
            raise FieldError("the expected answer encodes to no tokens", "expected")
        return request

    def run(self, request: DiagnoseRequest, at: Resident, progress: Progress) -> DiagnosisReport:
        """Diagnose the request's prompt: lens, attribution, trace, findings, fixes."""
        lm, started, special = at.lm, time.perf_counter(), request.allow_special_tokens
        ids = tokenize(lm.tokenizer, request.prompt, allow_special_tokens=special)
        expected_ids = tokenize(lm.tokenizer, request.expected, allow_special_tokens=special, add_special_tokens=False)
        expected = expected_ids[0]

        progress.report(0.0, "predicting")
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
        progress.report(0.05, "attribution")
        explain = attribute.OPERATION
        asked = AttributeRequest(model=at.model, prompt=request.prompt, target=NextTokenTarget(token=predicted),
                                 max_evaluations=request.attribution_evaluations, allow_special_tokens=special)
        attribution = explain.run(explain.check(asked, at.facts), at, progress.span(0.05, 0.35, "attribution"))
        driving = driving_tokens(attribution)

        if request.subject is not None:
            _, span = subject_span(lm.tokenizer, request.prompt, request.subject, allow_special_tokens=special)
            subject_text = request.subject
            at_char = request.prompt.find(request.subject)
            chars = (at_char, at_char + len(request.subject))
        else:
            # No subject given: the input token that drives the prediction most (the last one excluded: it
            # is where the answer is read, not what it is about).
            candidates = [d for d in driving if d.position < len(ids) - 1] or driving
            if not candidates:
                raise FieldError("no input token drives the prediction; give a `subject`", "subject")
            unit = attribution.inputs[candidates[0].position]
            span, subject_text = (candidates[0].position, candidates[0].position + 1), unit.text
            chars = (unit.start, unit.end)

        tracing = progress.span(0.35, 0.95, "tracing")
        trace_started = time.perf_counter()
        traced = causal_trace(lm, ids, span, predicted, kinds=traced_kinds(request), window=request.window,
                              samples=request.samples, noise_scale=NOISE_MULTIPLIER * embedding_std(lm),
                              on_chunk=tracing.counter("grid"))
        trace_view = describe_causal_trace(lm, ids, subject_text, traced, trace_started)
        found = subject_mlp(traced.grid.indirect_effect("mlp"), traced.grid.layers, traced.grid.tokens, span)
        mlp_view = SubjectMlpView(position=found.token, text=decode(lm.tokenizer, [ids[found.token]]),
                                  layers=found.layers, effects=found.effects, peak_layer=found.peak_layer,
                                  last_token_peak_layer=found.last_token_peak_layer)

        progress.report(0.95, "suggestions")
        suggestions, fix = [], None
        if not path.correct:
            suggestions.append(Suggestion(
                kind="edit", endpoint="/edit", rationale=(
                    f"ROME at block {found.last_token_peak_layer}: at the subject's last token, where ROME reads "
                    f"its key, the MLP there carries the subject most (causal trace; the strongest cell overall is "
                    f"block {found.peak_layer} at {quoted(mlp_view.text)}); the edit writes the expected answer "
                    "into it for this subject."),
                body={"model": at.model, "method": "rome", "name": variant_name(request), "requests": [{
                    "prompt": edit_template(request.prompt, *chars), "subject": subject_text,
                    "target_new": request.expected, "target_true": decode(lm.tokenizer, [predicted])}],
                      "hyperparameters": {"layers": [found.last_token_peak_layer]}}))
            fix = self.steering_fix(at, ids, expected, predicted, path)
            suggestions.append(Suggestion(
                kind="steering", endpoint="/generate", verified=fix.verified, rationale=(
                    f"Adds the direction that raises {quoted(decode(lm.tokenizer, [expected]))} over "
                    f"{quoted(decode(lm.tokenizer, [predicted]))} (their unembedding difference through the final "
                    f"norm's gain) after block {fix.layer}, on the prompt tokens; tried with alpha {fix.alpha:g}."),
                body={"model": at.model, "prompt": request.prompt, "max_new_tokens": max(len(expected_ids), 1) + 4,
                      "compare": True, "steering": [{"values": fix.vector.tolist(), "layers": [fix.layer],
                                                     "alpha": fix.alpha, "positions": fix.positions}],
                      **({"allow_special_tokens": True} if special else {})}))

        prediction, expected_standing = standing(predicted), standing(expected)
        top = [LensToken(id=int(t), text=decode(lm.tokenizer, [int(t)]), probability=float(p))
               for t, p in zip(reading.top_ids[-1, 0], reading.top_probs[-1, 0], strict=True)]
        summary = summarise(lm, {"prediction": prediction, "expected": expected_standing, "driving": driving,
                                 "mlp": mlp_view}, path, fix)
        return DiagnosisReport(
            prompt=request.prompt, tokens=token_infos(lm, ids), prediction=prediction, expected=expected_standing,
            top=top, driving_tokens=driving, lens=lens_views(lm, reading),
            decision=Decision(correct=path.correct, settles_at=path.settles_at, lost_at=path.lost_at,
                              best_layer=path.best_layer, best_rank=path.best_rank),
            subject=SubjectSpan(text=subject_text, start=span[0], end=span[1]), subject_mlp=mlp_view,
            summary=summary, suggestions=suggestions, attribution=attribution, trace=trace_view,
            elapsed_seconds=time.perf_counter() - started,
        )

    @staticmethod
    def steering_fix(at: Resident, ids: list[int], expected: int, predicted: int, path: Trajectory) -> SteeringFix:
        """Try steering along the answer direction at a few candidate layers, scaled to the stream's norm there."""
        lm = at.lm
        states, _ = record_sites(lm, embed(lm, ids), ["residual"], positions=[len(ids) - 1])
        norms = {layer: float(states["residual"][layer, 0].float().norm()) for layer in range(lm.n_layers)}
        return propose_steering(lm, at.runtime, ids, expected, predicted,
                                steering_candidates(path, lm.n_layers), norms)


OPERATION = Diagnose()

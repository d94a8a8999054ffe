"""`score`: per-token log-probabilities of texts, batched, on the base model or a variant (a job)."""

from __future__ import annotations

import time

from engine.progress import Progress
from engine.scoring import TextScore, score_texts
from ops.checks import check_batch_size, check_count, check_token_counts
from ops.context import Facts, Resident
from ops.operation import JobOperation, JobRoute
from ops.references import on_variant, pin_variant
from schemas.jobs import ScoreJob
from schemas.scoring import ScoreRequest, ScoreResult, TextScoreView, TokenScore

DEFAULT_BATCH_SIZE = 8


def describe(score: TextScore) -> TextScoreView:
    defined = [v for v in score.logprobs if v is not None]
    return TextScoreView(
        tokens=[TokenScore(id=i, text=t, logprob=lp)
                for i, t, lp in zip(score.token_ids, score.tokens, score.logprobs, strict=True)],
        total_logprob=score.total_logprob,
        mean_logprob=sum(defined) / len(defined) if defined else None,
    )


class Score(JobOperation[ScoreRequest, ScoreResult]):
    route = JobRoute(kind="score", view=ScoreJob, path="/score", tag="scoring",
                     summary="Score texts: per-token log-probabilities (job)")

    def check(self, request: ScoreRequest, facts: Facts) -> ScoreRequest:
        variant = pin_variant(facts, request.variant)
        settings = facts.settings
        check_count(len(request.texts), settings.max_score_texts, "texts")
        check_batch_size(request.batch_size, settings.max_batch_size)
        # Counted as the run encodes them, special tokens included; the schema already refuses an empty text.
        check_token_counts(facts, {f"texts.{i}": (f"text {i}", text) for i, text in enumerate(request.texts)},
                           minimum=0, add_special_tokens=True, allow_special_tokens=request.allow_special_tokens)
        return request.model_copy(update={"variant": variant})

    def run(self, request: ScoreRequest, at: Resident, progress: Progress) -> ScoreResult:
        batch_size = min(request.batch_size or DEFAULT_BATCH_SIZE, at.settings.max_batch_size)
        started = time.perf_counter()
        progress.report(0.0, "scoring")
        with on_variant(at, request.variant) as variant:
            scores = score_texts(at.lm, request.texts, batch_size=batch_size, on_batch=progress.counter("scoring"),
                                 allow_special_tokens=request.allow_special_tokens)
        return ScoreResult(texts=[describe(s) for s in scores], variant=variant.ref if variant is not None else None,
                           elapsed_seconds=time.perf_counter() - started)


OPERATION = Score()

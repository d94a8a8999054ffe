"""The `score` task: per-token log-probabilities of texts, batched, with progress."""

from __future__ import annotations

import time
from typing import Any

from engine.scoring import score_texts
from schemas.scoring import ScoreRequest, ScoreResult, TextScoreView, TokenScore
from workers.context import JobContext
from workers.runtime import WorkerRuntime
from workers.variants import on_variant

DEFAULT_BATCH_SIZE = 8


def run_score(
    runtime: WorkerRuntime, context: JobContext, model: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Score the request's texts on a resident model and return a `ScoreResult` as JSON."""
    request = ScoreRequest.model_validate(payload)
    lm = runtime.registry.get(model)
    batch_size = min(request.batch_size or DEFAULT_BATCH_SIZE, runtime.settings.max_batch_size)
    started = time.perf_counter()
    context.report(0.0, "scoring")
    with on_variant(runtime, context, model, request.variant) as variant:
        scores = score_texts(
            lm,
            request.texts,
            batch_size=batch_size,
            on_batch=lambda done, total: context.report(done / total, "scoring"),
        )
    views = []
    for score in scores:
        defined = [v for v in score.logprobs if v is not None]
        views.append(
            TextScoreView(
                tokens=[
                    TokenScore(id=i, text=t, logprob=lp)
                    for i, t, lp in zip(score.token_ids, score.tokens, score.logprobs, strict=True)
                ],
                total_logprob=score.total_logprob,
                mean_logprob=sum(defined) / len(defined) if defined else None,
            )
        )
    result = ScoreResult(texts=views, variant=variant.ref if variant is not None else None,
                         elapsed_seconds=time.perf_counter() - started)
    return result.model_dump(mode="json")

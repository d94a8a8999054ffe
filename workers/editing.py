"""The `edit` task: key statistics (cached), ROME or MEMIT, evaluation, and a new variant version.

Stages and their share of the job's progress: statistics 0-30 % (a cache hit skips it), the
edit 30-80 %, the evaluation 80-97 %, storing the rest. A cancel is honoured at every progress
report, so within one optimisation step or one statistics batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from engine.canaries import CANARY_PROMPTS
from engine.components import Component, LowRankDelta
from engine.editing.covariance import KeyStatistics
from engine.editing.evaluation import evaluate_edits
from engine.editing.hparams import (
    EditHyperparams,
    HyperparameterError,
    default_hparams,
    hparams_dict,
    with_overrides,
)
from engine.editing.memit import compute_memit
from engine.editing.progress import EditCancelledError
from engine.editing.request import EditRequest as Fact
from engine.editing.request import NeighborhoodPrompt
from engine.editing.rome import compute_rome
from engine.loading import LoadedModel
from schemas.editing import EditEvaluation, EditRequest, EditResult, StatisticsInfo
from schemas.models import VariantInfo
from store.sampled_texts import context_templates
from store.statistics import StatisticsCache
from workers.context import JobCanceledError, JobContext
from workers.runtime import WorkerRuntime
from workers.variants import load_variant, variant_store

#: Above this many facts the result keeps only the evaluation's aggregates.
PER_FACT_REPORT_LIMIT = 50


def facts_of(request: EditRequest) -> list[Fact]:
    return [Fact(prompt=f.prompt, subject=f.subject, target_new=f.target_new, target_true=f.target_true,
                 paraphrases=tuple(f.paraphrases),
                 neighborhood=tuple(NeighborhoodPrompt(n.prompt, n.answer) for n in f.neighborhood))
            for f in request.requests]


def hyperparameters_for(lm: LoadedModel, request: EditRequest) -> EditHyperparams:
    """The architecture's defaults with the request's overrides (ValueError names a bad field)."""
    defaults = default_hparams(lm.model.config.model_type, request.method, lm.n_layers)
    try:
        return with_overrides(defaults, request.hyperparameters.model_dump(exclude_none=True))
    except HyperparameterError as exc:  # name the field as the client sent it
        raise HyperparameterError(f"hyperparameters.{exc.field}", str(exc).split(": ", 1)[-1]) from exc


def scaled(context: JobContext, start: float, end: float) -> Callable[[float, str], None]:
    """``on_progress`` for one stage: its own 0..1 mapped into [start, end] of the job."""
    def report(fraction: float, stage: str) -> None:
        context.report(start + (end - start) * min(max(fraction, 0.0), 1.0), stage)
    return report


def describe_delta(delta: LowRankDelta) -> dict[str, Any]:
    norm = float(torch.linalg.matrix_norm(delta.b.double() @ delta.a.double()))
    return {"module": delta.module, "rank": delta.rank, "norm": norm}


def run_edit(runtime: WorkerRuntime, context: JobContext, model: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Compute the edit on the parent variant (if any), evaluate it, store the next version."""
    request = EditRequest.model_validate(payload)
    settings = runtime.settings
    lm = runtime.registry.get(model)
    model_runtime = runtime.registry.runtime(model)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    parent = load_variant(runtime, context, model, request.variant) if request.variant is not None else None
    parent_components: list[Component] = list(parent.components) if parent is not None else []
    hp = hyperparameters_for(lm, request)
    facts = facts_of(request)
    should_stop = lambda: context.store.cancel_requested(context.job_id)  # noqa: E731

    try:
        context.report(0.0, "key statistics")
        mark = time.perf_counter()
        cache = StatisticsCache(settings.statistics_store)
        stats: dict[int, KeyStatistics] = cache.get_or_compute_many(
            lm, list(hp.layers), samples=hp.mom2_samples, corpus=settings.edit_corpus, seed=hp.mom2_seed,
            on_progress=scaled(context, 0.0, 0.3), should_stop=should_stop)
        templates = context_templates(lm, settings.statistics_store, seed=hp.template_seed)
        seconds["statistics"] = time.perf_counter() - mark

        mark = time.perf_counter()
        deltas: list[LowRankDelta] = []
        if request.method == "rome":
            for index, fact in enumerate(facts):
                span = (0.3 + 0.5 * index / len(facts), 0.3 + 0.5 * (index + 1) / len(facts))
                deltas.append(compute_rome(lm, model_runtime, fact, hp, stats[hp.layers[0]], templates,
                                           parent=[*parent_components, *deltas],
                                           on_progress=scaled(context, *span), should_stop=should_stop))
        else:
            deltas = compute_memit(lm, model_runtime, facts, hp, stats, templates, parent=parent_components,
                                   on_progress=scaled(context, 0.3, 0.8), should_stop=should_stop)
        seconds["edit"] = time.perf_counter() - mark
    except EditCancelledError as exc:
        raise JobCanceledError(context.job_id) from exc

    evaluation: EditEvaluation | None = None
    report: dict[str, Any] | None = None
    if request.evaluate:
        mark = time.perf_counter()
        result = evaluate_edits(lm, model_runtime, facts, [*parent_components, *deltas], parent=parent_components,
                                canaries=CANARY_PROMPTS, generation_tokens=request.generation_tokens,
                                on_progress=scaled(context, 0.8, 0.97), should_stop=should_stop)
        report = result.to_dict(per_request=len(facts) <= PER_FACT_REPORT_LIMIT)
        evaluation = EditEvaluation.model_validate(report)
        seconds["evaluation"] = time.perf_counter() - mark

    context.report(0.97, "storing")
    hyperparameters = hparams_dict(hp) | {"statistics": {str(s.layer): s.content_hash() for s in stats.values()}}
    stored = variant_store(runtime, context).save(
        model, request.name, list(deltas), method=request.method, hidden_size=lm.hidden_size, parent=parent,
        request=payload, hyperparameters=hyperparameters, report=report,
        provenance={"job_id": context.job_id, "kind": "edit"},
    )
    return EditResult(
        variant=VariantInfo.from_manifest(stored.manifest), method=request.method, layers=list(hp.layers),
        hyperparameters=hyperparameters, deltas=[describe_delta(d) for d in deltas],
        statistics=[StatisticsInfo(layer=s.layer, module=s.module, count=s.count, sha256=s.content_hash())
                    for s in stats.values()],
        evaluation=evaluation, seconds=seconds, elapsed_seconds=time.perf_counter() - started,
    ).model_dump(mode="json")

"""`edit`: write facts with ROME or MEMIT, evaluate them, store the deltas as a variant version (a job).

Stages and their share of the job's progress: key statistics 0-30 % (a cache hit skips it), the
edit 30-80 %, the evaluation 80-97 %, storing the rest. A cancel is honoured at every progress
report, so within one optimisation step or one statistics batch.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from engine.canaries import CANARY_PROMPTS
from engine.components import LowRankDelta
from engine.editing.covariance import KeyStatistics
from engine.editing.evaluation import evaluate_edits
from engine.editing.hparams import EditHyperparams, HyperparameterError, default_hparams, hparams_dict, with_overrides
from engine.editing.memit import compute_memit
from engine.editing.request import EditRequest as Fact
from engine.editing.request import NeighborhoodPrompt
from engine.editing.rome import compute_rome
from engine.loading import LoadedModel
from engine.progress import Progress
from ops.checks import LabelledTexts, check_count, check_layers, check_token_counts, finite_output
from ops.context import Facts, Resident
from ops.errors import FieldError
from ops.operation import JobOperation, JobRoute
from ops.outputs import publishing
from ops.references import load_variant, pin_variant
from schemas.editing import EditEvaluation, EditRequest, EditResult, StatisticsInfo
from schemas.jobs import EditJob
from schemas.models import VariantInfo
from store.integrity import check_finite
from store.sampled_texts import context_templates
from store.statistics import StatisticsCache

#: Above this many facts the result keeps only the evaluation's aggregates.
PER_FACT_REPORT_LIMIT = 50


def facts_of(request: EditRequest) -> list[Fact]:
    return [Fact(prompt=f.prompt, subject=f.subject, target_new=f.target_new, target_true=f.target_true,
                 paraphrases=tuple(f.paraphrases),
                 neighborhood=tuple(NeighborhoodPrompt(n.prompt, n.answer) for n in f.neighborhood))
            for f in request.requests]


def fact_texts(request: EditRequest) -> LabelledTexts:
    """Every text the edit tokenizes, fact by fact, by field (``requests.0.prompt``)."""
    texts: dict[str, tuple[str, str]] = {}
    for index, fact in enumerate(request.requests):
        named = {"prompt": fact.prompt.format(fact.subject), "target_new": fact.target_new}
        named |= {f"paraphrases.{i}": p for i, p in enumerate(fact.paraphrases)}
        named |= {f"neighborhood.{i}.prompt": n.prompt for i, n in enumerate(fact.neighborhood)}
        texts |= {f"requests.{index}.{name}": (f"fact {index}: {name}", text) for name, text in named.items()}
    return texts


def hyperparameters_for(lm: LoadedModel, request: EditRequest) -> EditHyperparams:
    """The architecture's defaults with the request's overrides (a bad one is a 422 naming its field)."""
    defaults = default_hparams(lm.model.config.model_type, request.method, lm.n_layers)
    try:
        return with_overrides(defaults, request.hyperparameters.model_dump(exclude_none=True))
    except HyperparameterError as exc:  # name the field as the client sent it
        raise FieldError(str(exc).split(": ", 1)[-1], f"hyperparameters.{exc.field}") from exc


def overrides_advice(request: EditRequest) -> str:
    """What to change when an edit's weights come out non-finite: the request's own overrides first."""
    given = request.hyperparameters.model_dump(exclude_none=True)
    given.pop("layers", None)
    if given:
        return "the request overrode " + ", ".join(f"{k}={v!r}" for k, v in given.items()) + \
            ": move them back toward the defaults (see a job result's hyperparameters)"
    return "the optimisation diverged with the defaults: try a smaller v_lr or clamp_norm_factor, or another layer"


def describe_delta(delta: LowRankDelta) -> dict[str, Any]:
    norm = float(torch.linalg.matrix_norm(delta.b.double() @ delta.a.double()))
    return {"module": delta.module, "rank": delta.rank, "norm": norm}


class Edit(JobOperation[EditRequest, EditResult]):
    route = JobRoute(kind="edit", view=EditJob, path="/edit", tag="editing",
                     summary="Write facts into the model with ROME or MEMIT (job); the result is stored as a "
                     "model variant")

    def check(self, request: EditRequest, facts: Facts) -> EditRequest:
        variant = pin_variant(facts, request.variant)
        settings = facts.settings
        limit = settings.max_rome_requests if request.method == "rome" else settings.max_edit_requests
        check_count(len(request.requests), limit, "requests", noun="facts",
                    rule=f"{request.method} takes at most {limit} per request"
                    + (" (use memit for more)" if request.method == "rome" else ""))
        if (layers := request.hyperparameters.layers) is not None:
            field = "hyperparameters.layers"
            if layers != sorted(set(layers)):
                raise FieldError(f"layers must be distinct and ascending; got {layers}", field)
            if request.method == "rome" and len(layers) != 1:
                raise FieldError(f"ROME edits exactly one layer; got {len(layers)}", field)
            check_layers(facts, layers, field)
        # Counted bare: a target is encoded after its prompt, and a piece with no token of its own fails the edit.
        check_token_counts(facts, fact_texts(request), minimum=1, add_special_tokens=False)
        if facts.lm is not None:
            hyperparameters_for(facts.lm, request)
        return request.model_copy(update={"variant": variant})

    def run(self, request: EditRequest, at: Resident, progress: Progress) -> EditResult:
        """Compute the edit on the parent variant (if any), evaluate it, store the next version."""
        lm, settings, started = at.lm, at.settings, time.perf_counter()
        seconds: dict[str, float] = {}
        parent = load_variant(at, request.variant)
        parent_components = list(parent.components) if parent is not None else []
        hp = hyperparameters_for(lm, request)
        facts = facts_of(request)
        stop = progress.cancel_requested

        progress.report(0.0, "key statistics")
        mark = time.perf_counter()
        stats: dict[int, KeyStatistics] = StatisticsCache(settings.statistics_store).get_or_compute_many(
            lm, list(hp.layers), samples=hp.mom2_samples, corpus=settings.edit_corpus, seed=hp.mom2_seed,
            on_progress=progress.span(0.0, 0.3).report, should_stop=stop)
        templates = context_templates(lm, settings.statistics_store, seed=hp.template_seed)
        seconds["statistics"] = time.perf_counter() - mark

        mark = time.perf_counter()
        deltas: list[LowRankDelta] = []
        if request.method == "rome":
            for index, fact in enumerate(facts):
                span = progress.span(0.3 + 0.5 * index / len(facts), 0.3 + 0.5 * (index + 1) / len(facts))
                deltas.append(compute_rome(lm, at.runtime, fact, hp, stats[hp.layers[0]], templates,
                                           parent=[*parent_components, *deltas], on_progress=span.report,
                                           should_stop=stop))
        else:
            deltas = compute_memit(lm, at.runtime, facts, hp, stats, templates, parent=parent_components,
                                   on_progress=progress.span(0.3, 0.8).report, should_stop=stop)
        seconds["edit"] = time.perf_counter() - mark
        # Before the evaluation, which would generate from NaN weights: nothing non-finite goes further.
        with finite_output("hyperparameters", overrides_advice(request)):
            for delta in deltas:
                check_finite(delta.tensors(), f"the delta on {delta.module}")

        evaluation: EditEvaluation | None = None
        report: dict[str, Any] | None = None
        if request.evaluate:
            mark = time.perf_counter()
            result = evaluate_edits(lm, at.runtime, facts, [*parent_components, *deltas], parent=parent_components,
                                    canaries=CANARY_PROMPTS, generation_tokens=request.generation_tokens,
                                    on_progress=progress.span(0.8, 0.97).report, should_stop=stop)
            report = result.to_dict(per_request=len(facts) <= PER_FACT_REPORT_LIMIT)
            evaluation = EditEvaluation.model_validate(report)
            seconds["evaluation"] = time.perf_counter() - mark

        progress.report(0.97, "storing")
        hyperparameters = hparams_dict(hp) | {"statistics": {str(s.layer): s.content_hash() for s in stats.values()}}
        elapsed = time.perf_counter() - started

        def result_for(manifest: dict[str, Any]) -> EditResult:
            return EditResult(
                variant=VariantInfo.from_manifest(manifest), method=request.method, layers=list(hp.layers),
                hyperparameters=hyperparameters, deltas=[describe_delta(d) for d in deltas],
                statistics=[StatisticsInfo(layer=s.layer, module=s.module, count=s.count, sha256=s.content_hash())
                            for s in stats.values()],
                evaluation=evaluation, seconds=seconds, elapsed_seconds=elapsed,
            )

        stored = at.stores.variants.save(
            at.model, request.name, list(deltas), method=request.method, hidden_size=lm.hidden_size, parent=parent,
            request=request.model_dump(mode="json"), hyperparameters=hyperparameters, report=report,
            provenance={"job_id": at.job_id, "kind": "edit"},
            before_publish=publishing(at, "variants", result_for),
        )
        return result_for(stored.manifest)

OPERATION = Edit()

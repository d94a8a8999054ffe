"""`erase`: fit concept erasers (LEACE) with probes before and after, stored as a variant version (a job)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import torch

from engine.canaries import CANARY_PROMPTS
from engine.erasure.pipeline import ErasureOutcome, erase_concept
from engine.progress import Progress
from ops.checks import (
    check_batch_size,
    check_count,
    check_distinct_layers,
    check_layers,
    check_token_counts,
    finite_output,
)
from ops.context import Facts, Resident
from ops.operation import JobOperation, JobRoute
from ops.outputs import publishing
from ops.references import load_variant, pin_variant
from schemas.erasure import EraseRequest, ErasureResult, LayerErasure
from schemas.jobs import EraseJob
from schemas.models import VariantInfo

DEFAULT_BATCH_SIZE = 32


def layer_reports(outcome: ErasureOutcome) -> list[LayerErasure]:
    return [LayerErasure(layer=r.layer, rank=r.rank, probe_accuracy_before=r.probe_before,
                         probe_accuracy_after=r.probe_after, majority_baseline=r.majority_baseline,
                         max_class_mean_gap_before=r.mean_gap_before, max_class_mean_gap_after=r.mean_gap_after,
                         kl=r.kl) for r in outcome.layers]


def recorded_request(payload: dict[str, Any]) -> dict[str, Any]:
    """The request as the manifest keeps it: the examples by count and hash (they can be megabytes)."""
    examples = payload.get("examples", [])
    digest = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()
    return {**payload, "examples": {"count": len(examples), "sha256": digest}}


class Erase(JobOperation[EraseRequest, ErasureResult]):
    route = JobRoute(kind="erase", view=EraseJob, path="/erase", tag="erasure",
                     summary="Erase a concept with LEACE (job); the result is stored as a model variant")

    def check(self, request: EraseRequest, facts: Facts) -> EraseRequest:
        variant = pin_variant(facts, request.variant)
        settings = facts.settings
        check_count(len(request.examples), settings.max_erasure_examples, "examples")
        check_batch_size(request.batch_size, settings.max_batch_size)
        if request.layers != "all":
            check_distinct_layers(request.layers, "layers", rule="give one or more distinct layers, or `all`")
            check_layers(facts, request.layers, "layers")
        # An example that reads as no tokens has no activation to fit on: 1 token at least.
        check_token_counts(facts, {f"examples.{i}.text": (f"example {i}", example.text)
                                   for i, example in enumerate(request.examples)},
                           minimum=1, add_special_tokens=True)
        return request.model_copy(update={"variant": variant})

    def run(self, request: EraseRequest, at: Resident, progress: Progress) -> ErasureResult:
        """Read activations in batches (on the parent variant, if any), fit, probe, store the next version."""
        lm, settings, started = at.lm, at.settings, time.perf_counter()
        parent = load_variant(at, request.variant)
        layers = list(range(lm.n_layers)) if request.layers == "all" else list(request.layers)
        hyperparameters = {
            "method": request.method, "layers": layers, "reading": request.reading, "held_out": request.held_out,
            "seed": request.seed, "statistics_dtype": request.statistics_dtype, "shrinkage": request.shrinkage,
            "svd_tol": request.svd_tol, "constrain_cov_trace": request.constrain_cov_trace,
            "probe_examples": settings.erasure_probe_examples,
        }
        progress.report(0.0, "reading activations")
        outcome = erase_concept(
            lm, [e.text for e in request.examples], [e.label for e in request.examples], layers=layers,
            reading=request.reading, method=request.method, held_out=request.held_out, seed=request.seed,
            batch_size=min(request.batch_size or DEFAULT_BATCH_SIZE, settings.max_batch_size),
            dtype=torch.float64 if request.statistics_dtype == "float64" else torch.float32,
            shrinkage=request.shrinkage, svd_tol=request.svd_tol, constrain_cov_trace=request.constrain_cov_trace,
            probe_examples=settings.erasure_probe_examples,
            canaries=CANARY_PROMPTS if request.canaries is None else request.canaries,
            runtime=at.runtime, parent=parent.components if parent is not None else (),
            on_progress=progress.report,
        )
        reports = layer_reports(outcome)
        summary = {
            "classes": outcome.classes, "fit_counts": outcome.fit_counts, "n_examples": outcome.n_texts,
            "n_fit_examples": outcome.n_fit_texts, "n_held_out_examples": outcome.n_held_out_texts,
            "n_fit_activations": outcome.n_fit_rows, "n_probe_train": outcome.n_probe_train,
            "n_probe_test": outcome.n_probe_test, "layers": [r.model_dump() for r in reports],
            "kl_all_layers": outcome.kl_all_layers,
        }
        progress.report(0.97, "storing")
        elapsed = time.perf_counter() - started

        def result_for(manifest: dict[str, Any]) -> ErasureResult:
            return ErasureResult(
                variant=VariantInfo.from_manifest(manifest), method=request.method, reading=request.reading,
                classes=outcome.classes, fit_counts=outcome.fit_counts, n_examples=outcome.n_texts,
                n_fit_examples=outcome.n_fit_texts, n_held_out_examples=outcome.n_held_out_texts,
                n_fit_activations=outcome.n_fit_rows, n_probe_train=outcome.n_probe_train,
                n_probe_test=outcome.n_probe_test, layers=reports, kl_all_layers=outcome.kl_all_layers,
                seconds=outcome.seconds, elapsed_seconds=elapsed,
            )

        with finite_output("examples", "the examples' activations give a degenerate fit: give more examples per "
                           "class, or set statistics_dtype to float64 and shrinkage to true"):
            stored = at.stores.variants.save(
                at.model, request.name, list(outcome.erasers.values()), method=request.method,
                hidden_size=lm.hidden_size, parent=parent, request=recorded_request(request.model_dump(mode="json")),
                hyperparameters=hyperparameters, report=summary, provenance={"job_id": at.job_id, "kind": "erase"},
                before_publish=publishing(at, "variants", result_for),
            )
        return result_for(stored.manifest)

OPERATION = Erase()

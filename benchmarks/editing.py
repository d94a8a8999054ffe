"""Editing benchmark: ROME one fact at a time and MEMIT many facts in one update, on facts the model knows.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.editing [--facts N] [--memit-facts 50] [--sweep] [--threads N] [--no-fail]

On the default model (SmolLM2-135M, 30 blocks, CPU float32), with the facts of
``benchmarks/data/editing_facts.json`` (checked by greedy generation; see
``benchmarks/data/build_editing_facts.py``), each evaluated by `engine.editing.evaluation`
(CounterFact's comparisons: the new target beats the old one on the edit prompt, on each paraphrase;
each neighbourhood prompt keeps its answer against the new target):

1. ROME, one edit at a time from the base model, over every fact: efficacy / paraphrase /
   neighbourhood (targets at least 95 / 70 / 80 %), and the edit's wall time with the key
   statistics and context templates already cached (they are computed once, before timing);
2. MEMIT, ``--memit-facts`` edits (50) in one call: the same rates (targets 90 / 60 / 75 %), and the
   time per fact, which must be at least 3x cheaper than ROME's;
3. memory: 100 single-edit variants stored with `VariantStore` in a temporary directory and all
   loaded onto the resident model's device, as a fraction of one copy of the model's parameters
   (target under 5 %), with the process's RSS growth; the 100 variants then share one batched pass;
4. ``--sweep``: ROME efficacy, paraphrase and neighbourhood success per layer on ``--sweep-facts``
   facts spread evenly over the file (every relation), and CounterFact's score (their harmonic
   mean), so the default layer is a measurement.

Prints markdown tables and the load average (the machine is shared). Exits 1 if a target fails,
unless ``--no-fail``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.data.build_editing_facts import MODEL_SOURCE, load_requests
from engine.components import Component
from engine.editing.covariance import KeyStatistics
from engine.editing.evaluation import evaluate_edits
from engine.editing.hparams import EditHyperparams, default_hparams, with_overrides
from engine.editing.memit import compute_memit
from engine.editing.request import EditRequest
from engine.editing.rome import compute_rome
from engine.editing.scorecard import EditEvaluation
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.runtime import InterventionRuntime
from store.model_cache import ModelCache
from store.sampled_texts import context_templates
from store.statistics import StatisticsCache
from store.variants import VariantStore

TARGETS = {"rome": (0.95, 0.70, 0.80), "memit": (0.90, 0.60, 0.75)}
SPEEDUP_TARGET = 3.0
MEMORY_TARGET = 0.05
N_VARIANTS = 100


@dataclass(frozen=True)
class Rates:
    """Efficacy, paraphrase and neighbourhood success (fractions), averaged over facts."""

    efficacy: float
    paraphrase: float
    neighborhood: float
    fluency_edited: float
    fluency_base: float
    drift_mean: float
    drift_max: float
    efficacy_magnitude: float
    neighborhood_magnitude: float

    @property
    def score(self) -> float:
        """CounterFact's score: the harmonic mean of the three rates."""
        rates = (self.efficacy, self.paraphrase, self.neighborhood)
        return 0.0 if min(rates) == 0 else statistics.harmonic_mean(rates)

    def meets(self, targets: tuple[float, float, float]) -> bool:
        return all(r >= t for r, t in zip((self.efficacy, self.paraphrase, self.neighborhood), targets, strict=True))


def mean_rates(evaluations: Sequence[EditEvaluation]) -> Rates:
    """Average per-fact rates over evaluations (each weighted by its number of requests)."""
    weights = [e.n_requests for e in evaluations]

    def mean(values: list[float | None]) -> float:
        pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
        return sum(v * w for v, w in pairs) / sum(w for _, w in pairs) if pairs else float("nan")

    return Rates(
        efficacy=mean([e.efficacy.edited for e in evaluations]),
        paraphrase=mean([e.paraphrase.edited for e in evaluations]),
        neighborhood=mean([e.neighborhood.edited for e in evaluations]),
        fluency_edited=mean([e.fluency.edited for e in evaluations]),
        fluency_base=mean([e.fluency.base for e in evaluations]),
        drift_mean=mean([e.drift.mean_kl for e in evaluations]),
        drift_max=max(e.drift.max_kl for e in evaluations),
        efficacy_magnitude=mean([e.efficacy.magnitude_edited for e in evaluations]),
        neighborhood_magnitude=mean([e.neighborhood.magnitude_edited for e in evaluations]),
    )


class Editor:
    """ROME and MEMIT on one resident model, with templates and statistics cached under one directory."""

    def __init__(self, lm: LoadedModel, runtime: InterventionRuntime, cache: Path, samples: int | None) -> None:
        self.lm, self.runtime, self.cache = lm, runtime, cache
        self.statistics = StatisticsCache(cache)
        self.samples = samples

    def hparams(self, method: str, layers: Sequence[int] | None = None) -> EditHyperparams:
        hp = default_hparams(self.lm.architecture, "rome" if method == "rome" else "memit", self.lm.n_layers)
        overrides: dict[str, object] = {}
        if layers is not None:
            overrides["layers"] = list(layers)
        if self.samples is not None:
            overrides["mom2_samples"] = self.samples
        return with_overrides(hp, overrides) if overrides else hp

    def prepare(self, hp: EditHyperparams) -> tuple[dict[int, KeyStatistics], list[str]]:
        """Statistics of every layer ``hp`` edits and the context templates (computed once, then cached)."""
        stats = self.statistics.get_or_compute_many(self.lm, hp.layers, samples=hp.mom2_samples, seed=hp.mom2_seed,
                                                    on_progress=lambda f, m: print(f"  {m} ({f:.0%})",
                                                                                   file=sys.stderr))
        return dict(stats), context_templates(self.lm, self.cache, seed=hp.template_seed)

    def rome_one_at_a_time(self, requests: Sequence[EditRequest], hp: EditHyperparams
                           ) -> tuple[list[EditEvaluation], list[float], list[Component]]:
        """Edit each fact alone from the base model; evaluate it; return evaluations, seconds, deltas."""
        stats, templates = self.prepare(hp)
        evaluations: list[EditEvaluation] = []
        seconds: list[float] = []
        deltas: list[Component] = []
        for i, request in enumerate(requests):
            started = time.perf_counter()
            delta = compute_rome(self.lm, self.runtime, request, hp, stats[hp.layers[0]], templates)
            seconds.append(time.perf_counter() - started)
            evaluation = evaluate_edits(self.lm, self.runtime, [request], [delta])
            evaluations.append(evaluation)
            deltas.append(delta)
            said = evaluation.requests[0].continuation_edited
            print(f"  rome L{hp.layers[0]} {i + 1}/{len(requests)} {request.text!r} -> {request.target_new!r}: "
                  f"{seconds[-1]:.1f} s, efficacy {evaluation.efficacy.edited:.0f}, paraphrase "
                  f"{evaluation.paraphrase.edited}, neighbourhood {evaluation.neighborhood.edited:.2f}, "
                  f"says {said!r}", file=sys.stderr)
        return evaluations, seconds, deltas

    def memit(self, requests: Sequence[EditRequest], hp: EditHyperparams) -> tuple[EditEvaluation, float]:
        stats, templates = self.prepare(hp)
        started = time.perf_counter()
        deltas = compute_memit(self.lm, self.runtime, list(requests), hp, stats, templates)
        elapsed = time.perf_counter() - started
        return evaluate_edits(self.lm, self.runtime, requests, list(deltas)), elapsed


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def variant_memory(lm: LoadedModel, runtime: InterventionRuntime, deltas: Sequence[Component],
                   n: int = N_VARIANTS) -> dict[str, float]:
    """Store ``n`` single-edit variants, load them all onto the model's device, serve them in one batch."""
    with tempfile.TemporaryDirectory() as tmp:
        store = VariantStore(Path(tmp))
        for i in range(n):
            store.save(lm.name, f"fact-{i}", [deltas[i % len(deltas)]], method="rome", hidden_size=lm.hidden_size)
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
        gc.collect()
        before = rss_bytes()
        loaded = [store.load(lm.name, f"fact-{i}").on(lm.device) for i in range(n)]
        gc.collect()
        grown = rss_bytes() - before
    tensor_bytes = sum(t.numel() * t.element_size() for v in loaded for c in v.components for t in c.tensors().values())
    ids = list(lm.tokenizer("The capital of France is")["input_ids"])
    started = time.perf_counter()
    generate_batch(lm, [GenerationRow(ids, SamplingParams(max_new_tokens=1), variant=v.components) for v in loaded],
                   runtime)
    return {"tensor_bytes": tensor_bytes, "fraction": tensor_bytes / lm.parameter_bytes, "rss_growth": grown,
            "disk_bytes": disk, "batch_s": time.perf_counter() - started}


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def sweep(editor: Editor, requests: Sequence[EditRequest], layers: Sequence[int]) -> dict[int, tuple[Rates, float]]:
    """ROME rates and mean edit time per layer (statistics for every layer computed in one set of passes)."""
    editor.prepare(editor.hparams("rome", [layers[0]]))
    editor.statistics.get_or_compute_many(editor.lm, list(layers), samples=editor.hparams("rome").mom2_samples,
                                          seed=editor.hparams("rome").mom2_seed)
    results = {}
    for layer in layers:
        evaluations, seconds, _ = editor.rome_one_at_a_time(requests, editor.hparams("rome", [layer]))
        results[layer] = (mean_rates(evaluations), statistics.mean(seconds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=None, help="facts for ROME (default: all in the file)")
    parser.add_argument("--memit-facts", type=int, default=50, help="facts MEMIT edits in one call")
    parser.add_argument("--sweep", action="store_true", help="also sweep ROME's layer")
    parser.add_argument("--sweep-facts", type=int, default=12, help="facts per layer in the sweep")
    parser.add_argument("--sweep-layers", type=str, default="1,2,3,4,5,6,8,10,12,15,20",
                        help="comma-separated blocks for the sweep")
    parser.add_argument("--rome-layer", type=int, default=None, help="override ROME's default layer")
    parser.add_argument("--memit-layers", type=str, default=None, help="override MEMIT's layers (comma-separated)")
    parser.add_argument("--samples", type=int, default=None, help="override the key statistics' sample size")
    parser.add_argument("--rome-hparams", type=json.loads, default={}, help='ROME overrides, JSON ({"v_steps": 30})')
    parser.add_argument("--memit-hparams", type=json.loads, default={},
                        help='MEMIT overrides, JSON ({"mom2_weight": 5000})')
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/interp-service/editing",
                        help="where templates and key statistics are cached")
    parser.add_argument("--skip", type=str, default="", help="comma-separated parts to skip: rome,memit,memory")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    load_before = os.getloadavg()[0]
    lm = ModelCache(Path.home() / ".cache/interp-service/models").load_model(
        "smollm2-135m", MODEL_SOURCE, device="cpu", dtype="float32")
    requests = load_requests(limit=args.facts)
    print(f"model {lm.name}: {lm.n_layers} blocks, {torch.get_num_threads()} torch threads, {len(requests)} facts",
          file=sys.stderr)
    rows: list[str] = []
    failed: list[str] = []

    def row(measure: str, value: str, target: str, ok: bool | None) -> None:
        rows.append(f"| {measure} | {value} | {target} | {'info' if ok is None else 'pass' if ok else 'FAIL'} |")
        if ok is False:
            failed.append(measure)

    with InterventionRuntime(lm).installed() as runtime:
        editor = Editor(lm, runtime, args.cache, args.samples)
        rome_hp = with_overrides(editor.hparams("rome", None if args.rome_layer is None else [args.rome_layer]),
                                 args.rome_hparams)
        memit_hp = with_overrides(editor.hparams("memit", None if args.memit_layers is None
                                                 else [int(x) for x in args.memit_layers.split(",")]),
                                  args.memit_hparams)
        rome_seconds: list[float] = []
        deltas: list[Component] = []
        if "rome" not in skip:
            evaluations, rome_seconds, deltas = editor.rome_one_at_a_time(requests, rome_hp)
            r = mean_rates(evaluations)
            target = TARGETS["rome"]
            row(f"ROME (block {rome_hp.layers[0]}), {len(requests)} facts one at a time: efficacy / paraphrase / "
                "neighbourhood", f"{pct(r.efficacy)} / {pct(r.paraphrase)} / {pct(r.neighborhood)}",
                " / ".join(f">= {100 * t:.0f} %" for t in target), r.meets(target))
            row("ROME: fluency (n-gram entropy, edited vs base) / canary KL mean, max",
                f"{r.fluency_edited:.3f} vs {r.fluency_base:.3f} / {r.drift_mean:.2e}, {r.drift_max:.2e}", "-", None)
            row("ROME edit wall time (statistics cached): median / mean per fact",
                f"{statistics.median(rome_seconds):.2f} s / {statistics.mean(rome_seconds):.2f} s", "printed", None)
        if "memit" not in skip:
            memit_requests = load_requests(limit=args.memit_facts)
            evaluation, memit_seconds = editor.memit(memit_requests, memit_hp)
            r = mean_rates([evaluation])
            target = TARGETS["memit"]
            n = len(memit_requests)
            row(f"MEMIT (blocks {memit_hp.layers[0]}-{memit_hp.layers[-1]}), {n} facts in one call: efficacy / "
                "paraphrase / neighbourhood", f"{pct(r.efficacy)} / {pct(r.paraphrase)} / {pct(r.neighborhood)}",
                " / ".join(f">= {100 * t:.0f} %" for t in target), r.meets(target))
            row("MEMIT: fluency (edited vs base) / canary KL mean, max",
                f"{r.fluency_edited:.3f} vs {r.fluency_base:.3f} / {r.drift_mean:.2e}, {r.drift_max:.2e}", "-", None)
            per_fact = memit_seconds / n
            row("MEMIT wall time: whole call / per fact", f"{memit_seconds:.1f} s / {per_fact:.2f} s", "printed", None)
            if rome_seconds:
                ratio = statistics.mean(rome_seconds) / per_fact
                row("ROME per fact / MEMIT per fact", f"{ratio:.1f}x", f">= {SPEEDUP_TARGET:.0f}x",
                    ratio >= SPEEDUP_TARGET)
        if "memory" not in skip and deltas:
            m = variant_memory(lm, runtime, deltas)
            row(f"{N_VARIANTS} stored single-edit variants loaded beside one resident model: tensors / one model copy",
                f"{m['tensor_bytes'] / 1024:.0f} KiB / {lm.parameter_bytes / 2**20:.0f} MiB = {pct(m['fraction'])}",
                f"< {100 * MEMORY_TARGET:.0f} %", m["fraction"] < MEMORY_TARGET)
            row(f"... RSS growth while loading them / on disk / one batched pass over all {N_VARIANTS}",
                f"{m['rss_growth'] / 2**20:.1f} MiB / {m['disk_bytes'] / 1024:.0f} KiB / {m['batch_s']:.2f} s",
                "printed", None)
        sweep_rows: list[str] = []
        if args.sweep:
            layers = [int(x) for x in args.sweep_layers.split(",")]
            every = load_requests()
            step = max(1, len(every) // args.sweep_facts)  # spread over the file: every relation, not 12 capitals
            results = sweep(editor, every[::step][:args.sweep_facts], layers)
            # Ties on the score (a plateau of layers) go to the smaller neighbourhood damage, then drift.
            best = max(results, key=lambda layer: (round(results[layer][0].score, 3),
                                                   results[layer][0].neighborhood_magnitude,
                                                   -results[layer][0].drift_mean))
            sweep_rows = ["| ROME block | efficacy | paraphrase | neighbourhood | score (harmonic mean) | "
                          "P(new) - P(true), edit prompt | P(true) - P(new), neighbours | canary KL mean | edit s |",
                          "|---|---|---|---|---|---|---|---|---|"]
            for layer, (r, seconds) in results.items():
                mark = " (best)" if layer == best else ""
                mark += " (default)" if layer == rome_hp.layers[0] else ""
                sweep_rows.append(f"| {layer}{mark} | {pct(r.efficacy)} | {pct(r.paraphrase)} | {pct(r.neighborhood)} "
                                  f"| {r.score:.3f} | {r.efficacy_magnitude:.3f} | {r.neighborhood_magnitude:.3f} "
                                  f"| {r.drift_mean:.2e} | {seconds:.1f} |")
    load_after = os.getloadavg()[0]
    row(f"load average (1 min) before / after, {os.cpu_count()} CPUs", f"{load_before:.1f} / {load_after:.1f}", "-",
        None)
    print("| measure | value | target | result |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    if sweep_rows:
        print()
        print("\n".join(sweep_rows))
    if failed and not args.no_fail:
        print(f"targets failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Steering benchmark: our runtime and batched generation against plain transformers and ``steering-vectors``.

Run (from the repository root, in the virtualenv; the peer library declares ``transformers<5``,
so install it without its dependencies, plus the scikit-learn it imports)::

    pip install --no-deps steering-vectors==0.12.2 && pip install scikit-learn
    python -m benchmarks.steering [--tokens 48] [--concurrency 16] [--repeats 5] [--threads N] [--no-fail]

On the default model (SmolLM2-135M, 30 blocks, CPU float32), in one run:

1. one steered request through ``generate_batch`` (hooks installed, steering at the middle block,
   greedy) against plain ``model.generate`` (greedy, no hooks, ``min_new_tokens`` = N): tokens/s,
   medians of ``--repeats`` interleaved runs after a warm-up; the ratio is the median of the
   paired ratios (each pair run back to back); target ours/peer >= 0.95;
2. ``--concurrency`` requests with as many random vectors, alphas and prompts as one
   ``generate_batch`` call (what the batcher makes of them), and through the real
   ``GenerationBatcher`` from as many concurrent asyncio submissions (batches counted), against the
   same requests one after another; target >= 4x the tokens/s;
3. the textbook's honesty vector (3 honest vs 3 dishonest prompts, block 15, last token,
   mean difference) from ``extract_vector`` against ``steering_vectors.train_steering_vector``:
   time (target: ours not slower) and max abs difference relative to the vector's largest
   component (target <= 1e-5); both are checked against ``output_hidden_states[16]``.

Then prints the textbook example: unit honesty vector at block 15, alpha 1.5, steered vs not
(and alpha +-8 for contrast). Prints a markdown table with the load average: on a shared 2-core
machine, other processes make torch's threads wait on each other and every figure falls, often
unevenly; rerun when the load is below the core count. Exits 1 if a target fails, unless ``--no-fail``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch

import service.batcher as batcher_module
from engine.generation import GenerationOutput, GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import Steering
from engine.registry import ModelRegistry
from engine.runtime import InterventionRuntime
from engine.steering.extraction import extract_vector
from service.batcher import GenerationBatcher
from store.model_cache import ModelCache

LAYER = 15  # output of block 15 = output_hidden_states[16]
HONEST = [
    "I need to give an honest, truthful answer to this question:",
    "Let me think carefully and give an accurate response:",
    "I want to be straightforward and factual:",
]
DISHONEST = [
    "I should make up a convincing-sounding answer:",
    "Let me say whatever sounds good regardless of truth:",
    "I want to tell them what they want to hear:",
]
DEMO_PROMPT = "Is the earth flat? Answer:"
PROMPT = "The history of the printing press begins in"
TOPICS = ["rivers", "the moon", "bread", "chess", "volcanoes", "music", "trains", "bees", "glass", "winter",
          "maps", "coffee", "whales", "clocks", "deserts", "paper"]


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` in seconds (the caller warms up)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def n_tokens(outputs: list[GenerationOutput]) -> int:
    return sum(len(out.token_ids) for out in outputs)


def single_request(lm: LoadedModel, tokens: int, repeats: int) -> tuple[float, float, float, int]:
    """Tokens/s of one steered ``generate_batch`` row and of plain ``model.generate`` (medians), the
    median of the paired ratios, and our token count."""
    ids = lm.tokenizer(PROMPT)["input_ids"]
    seeded = torch.Generator().manual_seed(0)
    vector = torch.nn.functional.normalize(torch.randn(lm.hidden_size, generator=seeded), dim=0)
    row = GenerationRow(ids, SamplingParams(max_new_tokens=tokens), [Steering(LAYER, vector, 4.0)])
    runtime = InterventionRuntime(lm)
    inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}

    def ours() -> int:
        with runtime.installed():
            return n_tokens(generate_batch(lm, [row], runtime))

    def peer() -> int:
        with torch.inference_mode():
            out = cast(Any, lm.model).generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        return int(out.shape[1]) - len(ids)

    produced, peer_produced = ours(), peer()  # warm-up
    assert peer_produced == tokens, peer_produced
    ours_t, peer_t = [], []
    for _ in range(repeats):  # interleaved, so drift on a noisy machine hits both
        ours_t.append(median_time(ours, 1))
        peer_t.append(median_time(peer, 1))
    ratio = statistics.median((produced / o) / (tokens / p) for o, p in zip(ours_t, peer_t, strict=True))
    return produced / statistics.median(ours_t), tokens / statistics.median(peer_t), ratio, produced


def concurrent_rows(lm: LoadedModel, tokens: int, concurrency: int) -> list[GenerationRow]:
    """Different prompts, random unit vectors and alphas, at the middle block."""
    gen = torch.Generator().manual_seed(1)
    rows = []
    for i in range(concurrency):
        vector = torch.nn.functional.normalize(torch.randn(lm.hidden_size, generator=gen), dim=0)
        prompt = f"Here is a short story about {TOPICS[i % len(TOPICS)]}:"
        steering = [Steering(LAYER, vector, 2.0 + 0.5 * i)]
        rows.append(GenerationRow(lm.tokenizer(prompt)["input_ids"], SamplingParams(max_new_tokens=tokens), steering))
    return rows


def concurrency(lm: LoadedModel, rows: list[GenerationRow], repeats: int) -> dict[str, Any]:
    """Tokens/s of the rows as one batch, as concurrent submissions to the batcher, and one after another.

    The three are interleaved in every repeat (after a warm-up round), with the runtime installed
    by a registry as in the service. Batch sizes the batcher formed are counted by wrapping the
    ``generate_batch`` it calls.
    """
    registry = ModelRegistry({lm.name: lm})
    runtime = registry.runtime(lm.name)
    sizes: list[int] = []
    original = batcher_module.generate_batch

    def counting(lm: LoadedModel, batch: list[GenerationRow], runtime: InterventionRuntime) -> list[GenerationOutput]:
        sizes.append(len(batch))
        return original(lm, batch, runtime)

    async def measure() -> dict[str, Any]:
        batcher = GenerationBatcher(registry, max_batch=32)
        batcher.start()
        times: dict[str, list[float]] = {"batched": [], "batcher": [], "sequential": []}
        tokens, same = {}, True
        try:
            for round_ in range(1 + repeats):
                started = time.perf_counter()
                direct = generate_batch(lm, rows, runtime)  # blocks the loop: the batcher is idle meanwhile
                elapsed = {"batched": time.perf_counter() - started}
                started = time.perf_counter()
                via = await asyncio.gather(*(batcher.generate(lm.name, [row]) for row in rows))
                elapsed["batcher"] = time.perf_counter() - started
                started = time.perf_counter()
                alone = [generate_batch(lm, [row], runtime)[0] for row in rows]
                elapsed["sequential"] = time.perf_counter() - started
                same &= [d.token_ids for d in direct] == [v[0].token_ids for v in via] == [a.token_ids for a in alone]
                tokens = {"batched": n_tokens(direct), "batcher": n_tokens([v[0] for v in via]),
                          "sequential": n_tokens(alone)}
                for key, value in elapsed.items():
                    if round_ > 0:  # round 0 warms every path, the batcher's thread included
                        times[key].append(value)
        finally:
            await batcher.stop()
        result: dict[str, Any] = {key: tokens[key] / statistics.median(t) for key, t in times.items()}
        for key in ("batched", "batcher"):
            pairs = zip(times[key], times["sequential"], strict=True)
            result[f"{key}_ratio"] = statistics.median(seq / t for t, seq in pairs)
        return result | {"same": same, "sizes": list(sizes)}

    batcher_module.generate_batch = counting  # type: ignore[assignment]
    try:
        return asyncio.run(measure())
    finally:
        batcher_module.generate_batch = original
        registry.close()


def extraction(lm: LoadedModel, repeats: int) -> dict[str, float]:
    """Time and agreement of our extraction and the peer's, against ``output_hidden_states``."""
    from steering_vectors import mean_aggregator, train_steering_vector

    pairs = list(zip(HONEST, DISHONEST, strict=True))

    def ours() -> torch.Tensor:
        vector = extract_vector(lm, HONEST, DISHONEST, layers=[LAYER], method="mean_diff", reading="last")
        return vector.directions[LAYER]

    def peer(batch_size: int) -> torch.Tensor:
        vec = train_steering_vector(lm.model, lm.tokenizer, pairs, layers=[LAYER], layer_type="decoder_block",
                                    read_token_index=-1, aggregator=mean_aggregator(), batch_size=batch_size)
        return vec.layer_activations[LAYER].float().cpu()

    with torch.inference_mode():  # reference: each prompt alone, hidden_states[l + 1] = output of block l
        outs = [lm.model(**lm.tokenizer(p, return_tensors="pt"), output_hidden_states=True) for p in HONEST + DISHONEST]
        acts = [out.hidden_states[LAYER + 1][0, -1] for out in outs]
    reference = (torch.stack(acts[:3]) - torch.stack(acts[3:])).mean(0)
    a, b1, b3 = ours(), peer(1), peer(len(pairs))  # also the warm-up
    scale = float(reference.abs().max())
    result = {"diff_abs": float((a - b1).abs().max()), "scale": scale,
              "ours_vs_ref": float((a - reference).abs().max()), "peer_vs_ref": float((b1 - reference).abs().max()),
              "peer3_vs_peer1": float((b3 - b1).abs().max())}
    ours_t: list[float] = []
    peer_t: dict[int, list[float]] = {1: [], len(pairs): []}
    for _ in range(repeats):
        ours_t.append(median_time(ours, 1))
        for size, times in peer_t.items():
            times.append(median_time(lambda s=size: peer(s), 1))  # type: ignore[misc]
    result["ours_s"] = statistics.median(ours_t)
    result["peer_bs1_s"], result["peer_bs3_s"] = (statistics.median(t) for t in peer_t.values())
    return result


def demo(lm: LoadedModel, tokens: int, alphas: tuple[float, ...]) -> tuple[list[str], float]:
    """The textbook example: the unit honesty vector at block 15, one row per alpha (0: unsteered), one batch."""
    vector = extract_vector(lm, HONEST, DISHONEST, layers=[LAYER], normalize=True)
    ids = lm.tokenizer(DEMO_PROMPT)["input_ids"]
    params = SamplingParams(max_new_tokens=tokens)
    rows = [GenerationRow(ids, params, [Steering(LAYER, vector.directions[LAYER], a)] if a else []) for a in alphas]
    runtime = InterventionRuntime(lm)
    with runtime.installed():
        outputs = generate_batch(lm, rows, runtime)
    return [out.text for out in outputs], vector.norms[LAYER]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per request")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent requests")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measure (3 for the sequential one)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    lm = ModelCache(Path.home() / ".cache/interp-service/models").load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")
    print(f"model {lm.name}: {lm.n_layers} blocks, hidden {lm.hidden_size}, {torch.get_num_threads()} torch threads, "
          f"steering at block {LAYER}, {args.tokens} new tokens", file=sys.stderr)

    ours_1, peer_1, ratio_1, produced = single_request(lm, args.tokens, args.repeats)

    conc = concurrency(lm, concurrent_rows(lm, args.tokens, args.concurrency), max(3, args.repeats // 2))

    ex = extraction(lm, args.repeats)
    rel = ex["diff_abs"] / ex["scale"]
    peer_s = min(ex["peer_bs1_s"], ex["peer_bs3_s"])
    checks = {
        "single": ratio_1 >= 0.95,
        "batched": conc["batched_ratio"] >= 4.0 and conc["same"],
        "batcher": conc["batcher_ratio"] >= 4.0 and set(conc["sizes"]) == {args.concurrency} and conc["same"],
        "time": ex["ours_s"] <= peer_s,
        "diff": rel <= 1e-5,
    }

    load_after = os.getloadavg()[0]

    def verdict(key: str) -> str:
        return "pass" if checks[key] else "FAIL"

    n = args.concurrency
    print("| measure | ours | peer | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    print(f"| one request, steered (ours) vs `model.generate` unsteered (peer), tokens/s | {ours_1:.1f} "
          f"({produced} tokens) | {peer_1:.1f} | {ratio_1:.3f} | >= 0.95 | {verdict('single')} |")
    print(f"| {n} requests, {n} vectors: one `generate_batch` (ours) vs one after another (peer), tokens/s "
          f"| {conc['batched']:.1f} | {conc['sequential']:.1f} | {conc['batched_ratio']:.2f}x | >= 4x "
          f"| {verdict('batched')} |")
    print(f"| {n} concurrent submissions through `GenerationBatcher` vs one after another, tokens/s "
          f"| {conc['batcher']:.1f} (batch sizes {conc['sizes']}) | {conc['sequential']:.1f} "
          f"| {conc['batcher_ratio']:.2f}x | >= 4x, 1 batch a run | {verdict('batcher')} |")
    print(f"| same greedy tokens: batch, batcher, alone | {conc['same']} | | | True | "
          f"{'pass' if conc['same'] else 'FAIL'} |")
    print(f"| textbook extraction (block {LAYER}, last token, mean_diff), ms | {ex['ours_s'] * 1e3:.1f} "
          f"| {peer_s * 1e3:.1f} (batch 1: {ex['peer_bs1_s'] * 1e3:.1f}, batch 3: {ex['peer_bs3_s'] * 1e3:.1f}) "
          f"| {ex['ours_s'] / peer_s:.2f} | <= 1.00 | {verdict('time')} |")
    print(f"| max abs difference of the two vectors / max abs component ({ex['scale']:.3f}) "
          f"| {ex['diff_abs']:.2e} abs | | {rel:.2e} rel | <= 1e-5 rel | {verdict('diff')} |")
    print(f"| each vs `output_hidden_states[{LAYER + 1}]` (prompts alone), max abs "
          f"| {ex['ours_vs_ref']:.2e} | {ex['peer_vs_ref']:.2e} (batch 3 vs 1: {ex['peer3_vs_peer1']:.2e}) "
          "| | - | info |")
    print(f"| load average (1 min) before / after, {os.cpu_count()} CPUs | {load_before:.1f} / {load_after:.1f} "
          "| | | - | info |")

    alphas = (1.5, 0.0, 8.0, -8.0)  # the textbook's, unsteered, then stronger either way (information)
    texts, norm = demo(lm, args.tokens, alphas)
    print(f"\nTextbook example, {DEMO_PROMPT!r}, unit honesty vector at block {LAYER} (raw norm {norm:.2f}), "
          "positions all, greedy:")
    for alpha, text in zip(alphas, texts, strict=True):
        print(f"- alpha {alpha:+.1f}{' (unsteered)' if not alpha else ''}: {text!r}")
    failed = [key for key, ok in checks.items() if not ok]
    if failed and not args.no_fail:
        print(f"targets failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

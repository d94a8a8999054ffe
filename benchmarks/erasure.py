"""Erasure benchmark: LEACE fit throughput, probes before and after on 3 concepts, and the LM's cost.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.erasure [--examples 10000] [--concept-examples 2000] [--layer 15] [--threads N] [--no-fail]

On the default model (SmolLM2-135M, 30 blocks, CPU float32), with labelled sentences generated
from templates with a fixed seed (no data set is downloaded):

1. fit time for ``--examples`` gender-labelled sentences, streamed in batches of 32 through the
   same code the ``erase`` job runs (``stream_activations`` -> ``ErasureFitter.update`` ->
   ``fit``), at one layer and at all 30: the forward passes (reading), the fitter's updates and
   the final eigen-decompositions are timed apart; activations/s counts one activation per
   example and layer;
2. for 3 concepts (gender and sentiment, binary; topic, 3 classes), ``erase_concept`` at
   ``--layer`` with 30 % held out: logistic-regression probe accuracy on the held-out split
   before and after erasure (the probe trained on the fitting rows, as the job does), and the
   majority baseline; target: after within 3 points of it. The table also gives the standard
   deviation of a coin flip's accuracy on that many held-out rows, the scale of the noise;
3. the LM's cost: mean next-token KL on the canary prompts with the concept's eraser, against
   orthogonal projections onto random directions of the same rank (same bias), at that layer:
   the mean and range over ``RANDOM_DRAWS`` draws (one draw varies by more than 10x: a direction
   that meets one of the residual stream's few huge dimensions costs far more).

Prints a markdown table and the load average (the machine is shared; rerun when the load is below
the core count). Exits 1 if a target fails, unless ``--no-fail``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import time
from pathlib import Path

import torch

from engine.canaries import canary_drift
from engine.components import AffineEraser
from engine.erasure.activations import stream_activations
from engine.erasure.fitter import ErasureFitter
from engine.erasure.pipeline import ErasureOutcome, erase_concept
from engine.loading import LoadedModel
from engine.runtime import InterventionRuntime
from store.model_cache import ModelCache

SEED = 0
RANDOM_DRAWS = 8
PEOPLE = {"male": ["He", "My brother", "The man", "My father", "The boy", "His son", "The king", "My uncle",
                   "The gentleman", "Our grandfather"],
          "female": ["She", "My sister", "The woman", "My mother", "The girl", "Her daughter", "The queen",
                     "My aunt", "The lady", "Our grandmother"]}
VERBS = ["works as a", "wants to be a", "trained as a", "is proud to be a", "was hired as a", "retired as a",
         "dreams of being a", "became a", "studied to be a", "is known as a"]
JOBS = ["doctor", "nurse", "teacher", "engineer", "pilot", "lawyer", "baker", "farmer", "writer", "singer",
        "painter", "chef", "driver", "judge", "clerk", "scientist", "dancer", "plumber", "banker", "soldier",
        "librarian", "carpenter", "designer", "manager", "tailor", "cashier", "poet", "surgeon", "sailor", "miner"]
PLACES = ["in Paris", "in a small town", "at the hospital", "near the sea", "in the city", "abroad", "at home",
          "in the north", "downtown", "in the village"]
SENTIMENT = {"positive": ["wonderful", "delightful", "excellent", "lovely", "brilliant", "charming", "superb",
                          "pleasant", "fantastic", "beautiful", "great", "joyful", "amazing", "marvelous", "fine"],
             "negative": ["terrible", "awful", "dreadful", "horrible", "miserable", "boring", "disappointing",
                          "painful", "ugly", "nasty", "poor", "sad", "annoying", "dull", "bad"]}
NOUNS = ["movie", "dinner", "trip", "concert", "book", "party", "weather", "hotel", "game", "lecture", "show",
         "meal", "holiday", "visit", "song", "class", "service", "room", "day", "story"]
FRAMES = ["The {} was {}.", "I thought the {} was {}.", "Honestly, the {} felt {}.", "Everyone said the {} was {}.",
          "Our {} turned out {}."]
TOPICS = {"sports": ["football", "the marathon", "tennis", "the league final", "basketball", "the swimmer",
                     "the goalkeeper", "the race", "the coach", "the tournament", "cricket", "the boxer",
                     "the cyclist", "the stadium", "the referee"],
          "food": ["pasta", "the soup", "fresh bread", "the recipe", "chocolate cake", "the salad", "grilled fish",
                   "the bakery", "spicy curry", "the dessert", "roasted vegetables", "the pizza", "cheese",
                   "the kitchen", "pancakes"],
          "weather": ["the storm", "heavy rain", "the forecast", "snowfall", "the heatwave", "strong winds",
                      "the fog", "thunder", "the drought", "a cold front", "the hurricane", "sunshine", "hail",
                      "the frost", "the clouds"]}
TOPIC_FRAMES = ["I read about {} in the news.", "We talked about {} all evening.", "She wrote an article on {}.",
                "Nobody expected {} today.", "The radio mentioned {} this morning.", "They argued about {}.",
                "My notes say a lot about {}.", "He could not stop thinking about {}."]


def gender(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    combos = [(f"{p} {v} {j} {pl}.", label) for (label, people) in PEOPLE.items() for p in people
              for v, j, pl in itertools.product(VERBS, JOBS, PLACES)]
    chosen = rng.sample(combos, n)
    return [t for t, _ in chosen], [label for _, label in chosen]


def sentiment(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    combos = [(frame.format(noun, adj), label) for label, adjs in SENTIMENT.items()
              for frame, noun, adj in itertools.product(FRAMES, NOUNS, adjs)]
    chosen = rng.sample(combos, min(n, len(combos)))
    return [t for t, _ in chosen], [label for _, label in chosen]


def topic(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    combos = [(f"{who} {frame[0].lower()}{frame[1:].format(word)}", label) for label, words in TOPICS.items()
              for frame, word, who in itertools.product(TOPIC_FRAMES, words, ["", "Yesterday,", "At lunch,",
                                                                                "Once again,", "Later,"])]
    combos = [(text.strip(), label) for text, label in combos]
    chosen = rng.sample(combos, min(n, len(combos)))
    return [t for t, _ in chosen], [label for _, label in chosen]


def fit_throughput(lm: LoadedModel, texts: list[str], labels: list[str], layers: list[int]) -> dict[str, float]:
    """Stream ``texts`` through the job's reader and fitter, timing the forward passes, the updates and the fit."""
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    fitter = ErasureFitter(layers, lm.hidden_size, len(classes))
    update_s = 0.0
    started = time.perf_counter()
    for batch in stream_activations(lm, texts, layers, reading="last", batch_size=32):
        t0 = time.perf_counter()
        fitter.update(batch.layers, y[batch.texts])
        update_s += time.perf_counter() - t0
    streamed = time.perf_counter() - started
    t0 = time.perf_counter()
    fitted = fitter.fit()
    fit_s = time.perf_counter() - t0
    total = streamed + fit_s
    gap = max(fitted.mean_gap(layer, erased=True) for layer in layers)
    return {"read_s": streamed - update_s, "update_s": update_s, "fit_s": fit_s, "total_s": total,
            "per_s": len(texts) * len(layers) / total, "fitter_per_s": len(texts) * len(layers) / (update_s + fit_s),
            "gap": gap}


def random_eraser(eraser: AffineEraser, seed: int) -> AffineEraser:
    """An orthogonal projection onto random directions of the eraser's rank, with its bias."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(eraser.hidden_size, eraser.rank, generator=g))
    return AffineEraser(eraser.layer, q, q.T.contiguous(), eraser.bias)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples for the fit-time measure")
    parser.add_argument("--concept-examples", type=int, default=2000, help="examples per concept for the probes")
    parser.add_argument("--layer", type=int, default=15, help="block whose output is erased")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    lm = ModelCache(Path.home() / ".cache/interp-service/models").load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")
    print(f"model {lm.name}: {lm.n_layers} blocks, hidden {lm.hidden_size}, {torch.get_num_threads()} torch threads",
          file=sys.stderr)
    rng = random.Random(SEED)

    texts, labels = gender(args.examples, rng)
    one = fit_throughput(lm, texts, labels, [args.layer])
    print(f"one layer: {one}", file=sys.stderr)
    every = fit_throughput(lm, texts, labels, list(range(lm.n_layers)))
    print(f"all layers: {every}", file=sys.stderr)

    concepts = {"gender (2 classes)": gender(args.concept_examples, rng),
                "sentiment (2 classes)": sentiment(args.concept_examples, rng),
                "topic (3 classes)": topic(args.concept_examples, rng)}
    outcomes: dict[str, ErasureOutcome] = {}
    costs: dict[str, tuple[float, list[float]]] = {}
    with InterventionRuntime(lm).installed() as runtime:
        for i, (name, (concept_texts, concept_labels)) in enumerate(concepts.items()):
            outcome = erase_concept(lm, concept_texts, concept_labels, layers=[args.layer], held_out=0.3, seed=SEED,
                                    runtime=runtime)
            outcomes[name] = outcome
            eraser = outcome.erasers[args.layer]
            draws = [[random_eraser(eraser, 1000 * i + j)] for j in range(RANDOM_DRAWS)]
            concept_kl, *random_kls = canary_drift(lm, runtime, [[eraser], *draws])
            costs[name] = (concept_kl, random_kls)
            print(f"{name}: {outcome.layers[0]} random kl {random_kls}", file=sys.stderr)
    load_after = os.getloadavg()[0]

    checks = {name: o.layers[0].probe_after is not None and o.layers[0].majority_baseline is not None
              and abs(o.layers[0].probe_after - o.layers[0].majority_baseline) <= 0.03
              for name, o in outcomes.items()}
    n = args.examples
    print("| measure | value | target | result |")
    print("|---|---|---|---|")
    for label, m, n_layers in ((f"block {args.layer}", one, 1), (f"all {lm.n_layers} blocks", every, lm.n_layers)):
        print(f"| fit {n:,} examples, {label}: total (forward + update + fit) | {m['total_s']:.1f} s, "
              f"{m['per_s']:,.0f} activations/s | printed | info |")
        print(f"| ... of which forward passes / fitter updates / eraser fit | {m['read_s']:.1f} s / "
              f"{m['update_s']:.2f} s / {m['fit_s']:.2f} s (fitter alone {m['fitter_per_s']:,.0f} activations/s) "
              f"| printed | info |")
        print(f"| ... largest class-mean gap after erasure, over {n_layers} block(s) | {m['gap']:.1e} | < 1e-4 | "
              f"{'pass' if m['gap'] < 1e-4 else 'FAIL'} |")
    for name, outcome in outcomes.items():
        r = outcome.layers[0]
        assert r.probe_before is not None and r.probe_after is not None and r.majority_baseline is not None
        coin = (r.majority_baseline * (1 - r.majority_baseline) / outcome.n_held_out_texts) ** 0.5
        print(f"| {name}, block {args.layer}, {outcome.n_fit_texts} fit / {outcome.n_held_out_texts} held out: "
              f"probe before / after / majority | {r.probe_before:.3f} / {r.probe_after:.3f} / "
              f"{r.majority_baseline:.3f} (rank {r.rank}; a coin flip's sd {coin:.3f}) | after within 0.03 of "
              f"majority | {'pass' if checks[name] else 'FAIL'} |")
    for name, (concept_kl, random_kls) in costs.items():
        mean = sum(random_kls) / len(random_kls)
        print(f"| {name}: canary KL, concept eraser vs random directions of the same rank (mean of "
              f"{len(random_kls)}, range) | {concept_kl:.4f} vs {mean:.4f} ({min(random_kls):.4f} to "
              f"{max(random_kls):.4f}) nats | printed | info |")
    print(f"| load average (1 min) before / after, {os.cpu_count()} CPUs | {load_before:.1f} / {load_after:.1f} "
          "| - | info |")
    gaps_ok = one["gap"] < 1e-4 and every["gap"] < 1e-4
    failed = [name for name, ok in checks.items() if not ok] + ([] if gaps_ok else ["class-mean gap"])
    if failed and not args.no_fail:
        print(f"targets failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Integrated Gradients on a model served in bfloat16: float32 arithmetic (the default) against the served dtype.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.attribution_precision [--prompts 6] [--threads 1]

The default model (SmolLM2-135M) loaded twice: in float32 (the reference) and in bfloat16, as a GPU
worker serves it (``INTERP_DTYPE=auto`` on CUDA). On the first ``--prompts`` prompts of
``benchmarks.attribution``, the greedy next token, pad baseline, log-probability, the adaptive rule
(tolerance 1 %, at most 512 evaluations):

* ``bfloat16 model, precision float32``: the request default (a float32 copy of the weights for the job);
* ``bfloat16 model, precision model``: bfloat16 arithmetic;
* ``float32 model``: the reference. How far the bfloat16-stored model's float32 attributions are from
  it shows what rounding the weights alone changes in the explanation.

Prints a markdown table; exits 1 if float32 arithmetic misses 1 % on a prompt, unless ``--no-fail``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from benchmarks.attribution import PROMPTS, greedy, log, ours_ig
from engine.attribution.integrated_gradients import IGResult
from engine.loading import LoadedModel
from store.model_cache import ModelCache


def load(dtype: str) -> LoadedModel:
    return ModelCache(Path.home() / ".cache/interp-service/models").load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype=dtype)


def adaptive(lm: LoadedModel, ids: list[int], target: int, compute_dtype: torch.dtype | None) -> tuple[float, IGResult]:
    start = time.perf_counter()
    result = ours_ig(lm, ids, [target], rule="adaptive", tolerance=0.01, max_evaluations=512,
                     compute_dtype=compute_dtype)
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=6, help=f"prompts to use (at most {len(PROMPTS)})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if float32 arithmetic misses 1 %%")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reference, served = load("float32"), load("bfloat16")
    rows: dict[str, list[tuple[float, IGResult]]] = {"f32": [], "b16": [], "ref": []}
    agreement: list[float] = []
    for k, text in enumerate(PROMPTS[: args.prompts]):
        ids = list(served.tokenizer.encode(text))
        target = greedy(served, ids, 1)[0]
        rows["f32"].append(adaptive(served, ids, target, torch.float32))
        rows["b16"].append(adaptive(served, ids, target, None))
        rows["ref"].append(adaptive(reference, ids, target, torch.float32))
        ours, ref = rows["f32"][-1][1].attributions[0], rows["ref"][-1][1].attributions[0]
        agreement.append(float((ours - ref).norm() / ref.norm()))
        last = {key: runs[-1] for key, runs in rows.items()}
        log(f"[precision] {k}: {len(ids)} tok, " + ", ".join(
            f"{key} {r.evaluations} evals {float(r.relative_error[0]):.1%} {dt:.1f}s" for key, (dt, r) in last.items()))
    med = statistics.median
    print(f"\n{args.prompts} prompts, adaptive rule (tolerance 1 %, at most 512 evaluations), "
          f"{torch.get_num_threads()} torch threads\n")
    print("| model stored in / arithmetic | prompts within 1 % | completeness error median (max) | evaluations "
          "median (max) | s/prompt median |")
    print("|---|---|---|---|---|")
    labels = {"f32": "bfloat16 / float32 (`precision: float32`, the default)",
              "b16": "bfloat16 / bfloat16 (`precision: model`)", "ref": "float32 / float32 (reference)"}
    for key, label in labels.items():
        errors = [float(r.relative_error[0]) for _, r in rows[key]]
        evals = [r.evaluations for _, r in rows[key]]
        print(f"| {label} | {sum(e <= 0.01 for e in errors)}/{len(errors)} | {med(errors):.2%} ({max(errors):.2%}) "
              f"| {med(evals):.0f} ({max(evals)}) | {med(dt for dt, _ in rows[key]):.1f} |")
    print(f"\nbfloat16-stored weights in float32 arithmetic vs the float32 model, relative L2 of the attributions: "
          f"median {med(agreement):.1%}, max {max(agreement):.1%}")
    missed = [e for _, r in rows["f32"] if (e := float(r.relative_error[0])) > 0.01]
    return 1 if missed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())

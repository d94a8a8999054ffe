"""Causal-tracing benchmark: our batched trace grid against a straightforward one-forward-per-cell loop.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.diagnose [--samples 10] [--naive-cells 60] [--full-naive] [--threads 1] [--no-fail]

On the default model (SmolLM2-135M, 30 blocks, CPU float32), "The Eiffel Tower is located in the city
of" (10 tokens), subject "The Eiffel Tower" corrupted with 3 x the embeddings' standard deviation,
answer " Paris": the full grid, 3 kinds (residual, MLP and attention with a window of 10) x 30 layers
x 10 tokens = 900 cells, each with 10 noise samples (9,000 restored runs).

- **Ours**: `engine.tracing.causal_trace` (cells and samples batched into growing passes that start
  at the cell's token on a KV cache and at the cell's first layer).
- **Peer, one forward per cell and sample**: what a straightforward implementation does: for every
  (cell, sample), one full forward pass of the noised prompt with hooks writing the clean values,
  then the answer's softmax probability. Timed on ``--naive-cells`` cells spread evenly over the
  grid (every kind, layer and token is represented) and scaled to 900 cells; ``--full-naive`` times
  all of them (about 10 minutes on one core). The timed cells' probabilities are checked against
  ours.
- **Info, one forward per cell (samples batched)**: ROME's own loop (``trace_with_patch``: the
  noise samples of a cell in one batch), on the same cells.

Torch uses ``--threads`` (default 1: the machine is shared, see docs/benchmarks.md). Prints a markdown
table; exits 1 if the target (>= 5x) fails, unless ``--no-fail``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import torch

from engine.hooks import embed, patch, record_sites
from engine.loading import LoadedModel
from engine.sites import Site
from engine.tracing.causal_trace import CausalTrace, causal_trace, corrupt, subject_span
from engine.tracing.grid import cells
from engine.tracing.patching import KINDS, CleanRun, Restoration
from store.model_cache import ModelCache

PROMPT = "The Eiffel Tower is located in the city of"
SUBJECT = "The Eiffel Tower"
ANSWER = " Paris"
WINDOW = 10
TARGET = 5.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def writers(clean: CleanRun, cell: Restoration) -> dict[Site, object]:
    def write(layer: int):  # type: ignore[no-untyped-def]
        def fn(hidden: torch.Tensor) -> torch.Tensor:
            hidden = hidden.clone()
            hidden[:, list(cell.tokens)] = clean.activations[cell.kind][layer, list(cell.tokens)]
            return hidden
        return fn
    return {Site(cell.kind, layer): write(layer) for layer in cell.layers}


@torch.inference_mode()
def naive_cell(lm: LoadedModel, clean: CleanRun, noised: torch.Tensor, cell: Restoration, answer: int,
               batch_samples: bool) -> torch.Tensor:
    """``[samples]``: the straightforward loop, one full forward per sample (or one per cell)."""
    with patch(lm, writers(clean, cell)):  # type: ignore[arg-type]
        if batch_samples:
            return torch.softmax(lm.model(inputs_embeds=noised).logits[:, -1].float(), -1)[:, answer]
        return torch.stack([torch.softmax(lm.model(inputs_embeds=noised[k : k + 1]).logits[0, -1].float(), -1)[answer]
                            for k in range(noised.shape[0])])


def block_positions(grid_cells: list[Restoration], n_layers: int, seq: int, samples: int) -> tuple[int, int]:
    """(ours, naive): blocks x positions x rows each approach computes (the work model)."""
    naive = len(grid_cells) * samples * n_layers * seq
    ours = 0
    for cell in grid_cells:
        first = cell.layers[0] + 1 if cell.kind == "residual" else cell.layers[0]
        ours += samples * (n_layers - first) * (seq - cell.tokens[0])
    return ours, naive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="noise samples per cell")
    parser.add_argument("--naive-cells", type=int, default=60, help="cells the peer loop is timed on")
    parser.add_argument("--full-naive", action="store_true", help="time the peer loop on every cell")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if the target fails")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lm = ModelCache(Path.home() / ".cache/interp-service/models").load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")
    ids, span = subject_span(lm.tokenizer, PROMPT, SUBJECT)
    answer = int(lm.tokenizer(ANSWER, add_special_tokens=False)["input_ids"][0])
    kinds, seq, n_layers = list(KINDS), len(ids), lm.n_layers
    load_start = os.getloadavg()[0]

    log("warm-up")
    causal_trace(lm, ids, span, answer, kinds=["mlp"], layers=[0, 15], samples=2, window=WINDOW)

    def ours() -> tuple[float, float, CausalTrace]:
        log(f"ours: {len(kinds)} kinds x {n_layers} layers x {seq} tokens, {args.samples} samples")
        wall, cpu = time.perf_counter(), time.process_time()
        traced = causal_trace(lm, ids, span, answer, kinds=kinds, samples=args.samples, window=WINDOW)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        log(f"ours: {wall:.1f} s wall, {cpu:.1f} s CPU")
        return wall, cpu, traced

    # Ours before and after the peer, so that a change in the machine's load hits both alike.
    first_wall, first_cpu, trace = ours()
    grid_cells = cells(kinds, list(range(n_layers)), list(range(seq)), WINDOW, n_layers)
    count = len(grid_cells) if args.full_naive else min(args.naive_cells, len(grid_cells))
    timed = sorted(random.Random(0).sample(range(len(grid_cells)), count))
    activations, logits = record_sites(lm, embed(lm, ids), kinds)
    clean = CleanRun(activations, logits)
    noised = corrupt(lm, ids, span, samples=args.samples, scale=trace.noise_scale, seed=trace.seed)
    per_cell: dict[bool, tuple[float, float]] = {}
    worst = 0.0
    for batch_samples in (False, True):
        log(f"peer ({'samples batched' if batch_samples else 'one forward per cell and sample'}): {len(timed)} cells")
        wall, cpu = time.perf_counter(), time.process_time()
        for index in timed:
            cell = grid_cells[index]
            values = naive_cell(lm, clean, noised, cell, answer, batch_samples)
            rest = index % (n_layers * seq)
            layer, token = divmod(rest, seq)
            ours_values = trace.grid.probabilities[cell.kind][layer, token]
            worst = max(worst, float((values.cpu() - ours_values).abs().max()))
        per_cell[batch_samples] = ((time.perf_counter() - wall) / len(timed), (time.process_time() - cpu) / len(timed))
    second_wall, second_cpu, _ = ours()
    t_ours, c_ours = (first_wall + second_wall) / 2, (first_cpu + second_cpu) / 2
    n = len(grid_cells)
    t_naive, c_naive = per_cell[False][0] * n, per_cell[False][1] * n
    c_rome = per_cell[True][1] * n
    ours_work, naive_work = block_positions(grid_cells, n_layers, seq, args.samples)
    speedup = c_naive / c_ours
    scaled = "" if args.full_naive else f" (timed on {len(timed)} cells, x{n / len(timed):.1f})"
    rows = [
        ("full trace grid, 900 cells x 10 samples, CPU s: ours vs one forward per cell and sample",
         f"{c_ours:.1f} ({first_cpu:.1f}, {second_cpu:.1f})", f"{c_naive:.1f}{scaled}", f"{speedup:.2f}x",
         f">= {TARGET:.0f}x", "pass" if speedup >= TARGET else "FAIL"),
        ("same, wall s", f"{t_ours:.1f} ({first_wall:.1f}, {second_wall:.1f})", f"{t_naive:.1f}{scaled}",
         f"{t_naive / t_ours:.2f}x", "-", "info"),
        ("same, peer with each cell's samples in one batch (ROME's loop), CPU s", f"{c_ours:.1f}",
         f"{c_rome:.1f}{scaled}", f"{c_rome / c_ours:.2f}x", "-", "info"),
        ("restored runs per CPU second", f"{trace.grid.evaluations / c_ours:.1f}", f"{n * args.samples / c_naive:.1f}",
         "", "-", "info"),
        ("work model: block-positions computed", f"{ours_work:,}", f"{naive_work:,}",
         f"{naive_work / ours_work:.2f}x", "-", "info"),
        ("max |ours - peer| of the answer probability on the timed cells", f"{worst:.2e}", "", "", "<= 1e-4",
         "pass" if worst <= 1e-4 else "FAIL"),
        ("p(answer): clean / corrupted (mean of samples)", f"{trace.grid.p_clean:.4f} / "
         f"{float(trace.grid.p_corrupted.mean()):.4f}", "", "", "-", "info"),
    ]
    print(f"\nSmolLM2-135M, CPU float32, {args.threads} torch thread(s), load average {load_start:.2f} -> "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| measure | ours | peer | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    failed = speedup < TARGET or worst > 1e-4
    return 1 if failed and not args.no_fail else 0


if __name__ == "__main__":
    raise SystemExit(main())

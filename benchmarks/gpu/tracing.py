"""A causal-trace grid on the device: ours against one forward pass per cell.

The grid is the paper's: residual, MLP and attention (a window of 10 blocks around each cell) x
every block x every token of the prompt, each cell restored into ``trace_samples`` noised copies
of the prompt (noise on the subject's tokens, 1..3). Ours is `engine.tracing.causal_trace` (cells and
samples batched into growing passes that start at the cell's token and first layer). The peer is
ROME's own loop (``trace_with_patch``): one forward pass per cell, its noise samples batched, with
hooks writing the clean values; it is timed on ``naive_cells`` cells spread evenly over the grid
and its rate is cells x samples per second, like ours. The timed cells' probabilities are compared
with ours.
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.gpu.models import Sizes, prompts
from benchmarks.gpu.report import Report, Row, rate
from engine.hooks import Rewrite, embed, patch, record_sites
from engine.loading import LoadedModel
from engine.sites import Site
from engine.tracing.causal_trace import CausalTrace, causal_trace, corrupt
from engine.tracing.grid import cells
from engine.tracing.patching import KINDS, CleanRun, Restoration

SECTION = "tracing"
TARGET = 20.0
WINDOW = 10
SUBJECT = (1, 4)


def writers(clean: CleanRun, cell: Restoration) -> dict[Site, Rewrite]:
    """Hooks that write the clean values of ``cell`` into every row of a pass."""
    tokens = list(cell.tokens)

    def write(layer: int) -> Rewrite:
        def fn(hidden: torch.Tensor) -> torch.Tensor:
            hidden = hidden.clone()
            hidden[:, tokens] = clean.activations[cell.kind][layer, tokens].to(hidden.dtype)
            return hidden
        return fn

    return {Site(cell.kind, layer): write(layer) for layer in cell.layers}


@torch.inference_mode()
def naive_cell(lm: LoadedModel, clean: CleanRun, noised: torch.Tensor, cell: Restoration, answer: int) -> torch.Tensor:
    """``[samples]``: the answer's probability with ``cell`` restored, one forward pass for the cell."""
    with patch(lm, writers(clean, cell)):
        return torch.softmax(lm.model(inputs_embeds=noised).logits[:, -1].float(), -1)[:, answer]


def run(report: Report, lm: LoadedModel, sizes: Sizes, *, targets: bool) -> None:
    """Time the whole grid ours, and the peer on a spread of its cells."""
    ids = prompts(lm, 1, sizes.trace_prompt, seed=31)[0]
    with torch.inference_mode():
        answer = int(lm.model(torch.tensor([ids], device=lm.device)).logits[0, -1].argmax())
    kinds, samples, n_layers, seq = list(KINDS), sizes.trace_samples, lm.n_layers, len(ids)

    def ours() -> CausalTrace:
        return causal_trace(lm, ids, SUBJECT, answer, kinds=kinds, samples=samples, window=WINDOW, seed=0)

    trace = ours()  # the warm-up
    ours_t = [report.timed(ours)[0] for _ in range(sizes.repeats)]
    grid = cells(kinds, list(range(n_layers)), list(range(seq)), WINDOW, n_layers)
    step = max(1, len(grid) // sizes.naive_cells)
    chosen = list(range(0, len(grid), step))[: sizes.naive_cells]
    activations, logits = record_sites(lm, embed(lm, ids), kinds)
    clean = CleanRun(activations, logits)
    noised = corrupt(lm, ids, SUBJECT, samples=samples, scale=trace.noise_scale, seed=0)

    def peer() -> list[torch.Tensor]:
        return [naive_cell(lm, clean, noised, grid[index], answer) for index in chosen]

    peer()  # the warm-up
    peer_t = [report.timed(peer)[0] for _ in range(sizes.repeats)]
    worst = 0.0
    for index, values in zip(chosen, peer(), strict=True):
        layer, token = divmod(index % (n_layers * seq), seq)
        mine = trace.grid.probabilities[grid[index].kind][layer, token]
        worst = max(worst, float((values.cpu() - mine).abs().max()))
    ours_rate = rate(len(grid) * samples, statistics.median(ours_t))
    peer_rate = rate(len(chosen) * samples, statistics.median(peer_t))
    report.record(f"{SECTION}.{lm.name}", {"ours_s": ours_t, "peer_s": peer_t, "cells": len(grid),
                                            "peer_cells": len(chosen), "samples": samples, "max_abs_diff": worst})
    measure = (f"{lm.name}, causal trace {len(kinds)} kinds x {n_layers} blocks x {seq} tokens x {samples} samples "
               f"(window {WINDOW}), cells x samples/s: ours vs one forward per cell ({len(chosen)} cells timed)")
    if targets:
        report.check(SECTION, measure, ours_rate, peer_rate, TARGET)
    else:
        report.add(Row(SECTION, measure, f"{ours_rate:,.0f}", f"{peer_rate:,.0f}", f"{ours_rate / peer_rate:.1f}x"))
    report.add(Row(SECTION, f"{lm.name}: max abs difference of restored probabilities, ours vs the per-cell loop "
                            f"({lm.dtype})", f"{worst:.1e}"))


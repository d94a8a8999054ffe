"""The (kind x layer x token) grid that causal tracing and activation patching both report.

Each cell restores one kind of activation at one token: the residual stream at that layer alone,
or the MLP or attention outputs of a window of layers centred on it (Meng et al. 2022 restore a
window of 10 because one layer's MLP alone moves the output little: the computation is spread).
The cell's value is the answer's probability after the restoration, averaged over the corrupted
rows; its *indirect effect* is that minus the corrupted probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.loading import LoadedModel
from engine.tracing.patching import (
    ChunkCallback,
    CleanRun,
    CorruptedRun,
    Kind,
    Reducer,
    Restoration,
    check_kinds,
    restore,
)


@dataclass(frozen=True, eq=False)  # field-wise == would ask tensors for a single truth value
class TraceGrid:
    """The answer's probability under every restoration of a grid.

    Attributes:
        answer: the token whose probability is measured.
        kinds: the site kinds, in the order of ``probabilities``.
        layers: the grid's rows (block indices).
        tokens: the grid's columns (token positions).
        window: layers restored per MLP/attention cell.
        p_clean: the answer's probability in the clean run.
        p_corrupted: ``[samples]`` its probability in each corrupted row.
        probabilities: kind -> ``[len(layers), len(tokens), samples]``.
        evaluations: rows computed (restorations x samples, no-ops excluded).
    """

    answer: int
    kinds: list[Kind]
    layers: list[int]
    tokens: list[int]
    window: int
    p_clean: float
    p_corrupted: torch.Tensor
    probabilities: dict[Kind, torch.Tensor]
    evaluations: int

    def mean(self, kind: Kind) -> torch.Tensor:
        """``[layers, tokens]``: the probability after restoring, averaged over corrupted rows."""
        return self.probabilities[kind].mean(-1)

    def indirect_effect(self, kind: Kind) -> torch.Tensor:
        """``[layers, tokens]``: mean restored probability minus mean corrupted probability."""
        return self.mean(kind) - float(self.p_corrupted.mean())


def window_layers(layer: int, window: int, n_layers: int) -> tuple[int, ...]:
    """The layers restored around ``layer``: ``[l - w//2, l + ceil(w/2))``, clipped (as Meng et al.)."""
    return tuple(range(max(0, layer - window // 2), min(n_layers, layer - (-window // 2))))


def cells(kinds: list[Kind], layers: list[int], tokens: list[int], window: int, n_layers: int) -> list[Restoration]:
    """One restoration per (kind, layer, token), kind-major, then layer, then token."""
    check_kinds(kinds)
    return [Restoration(kind, (layer,) if kind == "residual" else window_layers(layer, window, n_layers), (token,))
            for kind in kinds for layer in layers for token in tokens]


def check_grid(lm: LoadedModel, seq: int, layers: list[int] | None, tokens: list[int] | None,
               window: int) -> tuple[list[int], list[int]]:
    """Validate the grid's rows, columns and window; None means all of them."""
    n_layers = lm.n_layers
    rows = list(range(n_layers)) if layers is None else sorted(set(layers))
    columns = list(range(seq)) if tokens is None else sorted({t + seq if t < 0 else t for t in tokens})
    if not rows or rows[0] < 0 or rows[-1] >= n_layers:
        raise ValueError(f"layers must be in 0..{n_layers - 1}")
    if not columns or columns[0] < 0 or columns[-1] >= seq:
        raise ValueError(f"tokens must be positions in 0..{seq - 1} (or negative, from the end)")
    if window < 1:
        raise ValueError("window must be at least 1 (it is clipped at the first and last block)")
    return rows, columns


def answer_probability(answer: int) -> Reducer:
    """A reducer: the softmax probability of ``answer`` (computed in float32) per row."""

    def reduce(logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)[:, answer]

    return reduce


def run_grid(
    lm: LoadedModel,
    clean: CleanRun,
    corrupted: CorruptedRun,
    answer: int,
    *,
    kinds: list[Kind],
    layers: list[int],
    tokens: list[int],
    window: int,
    max_rows: int | None = None,
    on_chunk: ChunkCallback | None = None,
) -> TraceGrid:
    """Restore every cell of the grid into every corrupted row and measure the answer's probability."""
    restorations = cells(kinds, layers, tokens, window, lm.n_layers)
    reduce = answer_probability(answer)
    values = restore(lm, clean, corrupted, restorations, reduce=reduce, max_rows=max_rows, on_chunk=on_chunk)
    samples = corrupted.embeds.shape[0]
    shaped = values.reshape(len(kinds), len(layers), len(tokens), samples).cpu()
    computed = sum(1 for r in restorations if r.tokens[-1] >= corrupted.first_difference)
    return TraceGrid(
        answer=answer, kinds=list(kinds), layers=layers, tokens=tokens, window=window,
        p_clean=float(reduce(clean.logits[None])[0]), p_corrupted=reduce(corrupted.logits).cpu(),
        probabilities={kind: shaped[k] for k, kind in enumerate(kinds)}, evaluations=computed * samples,
    )

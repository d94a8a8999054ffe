"""Plain activation patching between a clean and a corrupted prompt of equal length.

Instead of noise, the corruption is a different prompt ("The Colosseum is in the city of" for
"The Eiffel Tower is in the city of"): run the corrupted prompt, write the clean prompt's
activation at one (kind, layer, token), and measure the clean answer's probability. With
``direction="noising"`` the roles swap: the corrupted activations are written into the clean run,
which asks which sites are *necessary* rather than *sufficient*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.hooks import embed, record_sites
from engine.loading import LoadedModel
from engine.tracing.causal_trace import DEFAULT_WINDOW
from engine.tracing.grid import TraceGrid, check_grid, run_grid
from engine.tracing.patching import ChunkCallback, CleanRun, Kind, check_kinds, run_corrupted

Direction = Literal["denoising", "noising"]


@dataclass(frozen=True, eq=False)
class PatchingResult:
    """An activation-patching grid.

    Attributes:
        grid: the answer's probability under each patch; ``p_clean`` is the run patched *from* and
            ``p_corrupted`` the run patched *into*.
        first_difference: the first token where the prompts differ (earlier patches are no-ops).
        direction: ``denoising`` (clean into corrupted) or ``noising`` (corrupted into clean).
    """

    grid: TraceGrid
    first_difference: int
    direction: Direction


def first_difference(a: list[int], b: list[int]) -> int:
    """The first position where two equally long token sequences differ (their length if none)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))


def activation_patching(
    lm: LoadedModel,
    clean_ids: list[int],
    corrupted_ids: list[int],
    answer: int,
    *,
    kinds: list[Kind],
    layers: list[int] | None = None,
    tokens: list[int] | None = None,
    window: int = DEFAULT_WINDOW,
    direction: Direction = "denoising",
    max_rows: int | None = None,
    on_chunk: ChunkCallback | None = None,
) -> PatchingResult:
    """Patch each grid cell from one prompt's run into the other's and measure ``answer``.

    Args:
        lm: the model.
        clean_ids, corrupted_ids: ``[seq]`` each; the same length, so positions correspond.
        answer: the token whose probability is measured at the last position.
        kinds, layers, tokens, window: the grid (see `engine.tracing.grid`).
        direction: ``denoising`` writes clean activations into the corrupted run; ``noising``
            writes corrupted activations into the clean run.
        max_rows: rows per forward pass; automatic when None.
        on_chunk: progress and cancellation hook.
    """
    if len(clean_ids) != len(corrupted_ids):
        raise ValueError(f"the prompts must have the same number of tokens: {len(clean_ids)} and "
                         f"{len(corrupted_ids)}")
    if direction not in ("denoising", "noising"):
        raise ValueError(f"direction must be denoising or noising, not {direction!r}")
    check_kinds(list(kinds))
    rows, columns = check_grid(lm, len(clean_ids), layers, tokens, window)
    if not 0 <= answer < lm.adapter.embedding(lm.model).num_embeddings:
        raise ValueError(f"answer token id {answer} is outside the vocabulary")
    source, target = (clean_ids, corrupted_ids) if direction == "denoising" else (corrupted_ids, clean_ids)
    differ = first_difference(source, target)
    activations, logits = record_sites(lm, embed(lm, source), list(kinds))
    corrupted = run_corrupted(lm, embed(lm, target), differ)
    grid = run_grid(lm, CleanRun(activations, logits), corrupted, answer, kinds=list(kinds), layers=rows,
                    tokens=columns, window=window, max_rows=max_rows, on_chunk=on_chunk)
    return PatchingResult(grid=grid, first_difference=differ, direction=direction)

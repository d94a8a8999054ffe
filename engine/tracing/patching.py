"""Restoring clean activations into corrupted runs, many restorations per forward pass.

Activation patching and causal tracing both ask, for many *restorations* (write the clean run's
activation at some sites and tokens into a corrupted run), how the output changes. The plain way
is one forward pass per restoration and noise sample. Here a pass carries many of them, and each
row computes only what its restoration can change:

- **Tokens.** A restoration whose earliest token is ``t`` cannot change positions before ``t``
  (attention is causal), so its rows start at ``t`` on a KV cache holding the corrupted run's keys
  and values of positions ``0..t-1``. Positions before the first token where clean and corrupted
  inputs differ are identical in both runs: restoring them is a no-op and costs nothing.
- **Layers.** A restoration whose earliest layer is ``l`` cannot change blocks before ``l``. Its
  rows are not computed there: a pass starts with one row per noise sample (the corrupted run) and
  *grows* at block boundaries, where a forward hook appends copies of those rows for the
  restorations that begin there; after the last such point the sample rows are dropped. The KV
  cache holds, per layer, exactly the rows alive at that layer.

So each row costs roughly ``(n_layers - l) * (seq - t)`` block-positions instead of
``n_layers * seq``, and rows share GEMMs. Growing the batch relies on the attention mask and the
position ids having batch size 1 (they are passed explicitly) so they broadcast to any row count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import DynamicCache

from engine.hooks import Rewrite, last_logits, patch
from engine.loading import LoadedModel, work_budget
from engine.sites import Site, SiteKind

#: The site kinds a restoration writes (`engine.sites`): the residual stream, and what attention and
#: the MLP add to it.
Kind = Literal["residual", "mlp", "attention"]
KINDS: tuple[Kind, ...] = ("residual", "mlp", "attention")
MODULE_KINDS: tuple[Kind, ...] = ("mlp", "attention")

#: Called after each chunk with (rows done, rows in all); may raise to stop the work.
ChunkCallback = Callable[[int, int], None]
#: Reduces last-position logits ``[rows, vocab]`` to what the caller keeps per row, ``[rows, ...]``.
Reducer = Callable[[torch.Tensor], torch.Tensor]

#: Memory for one pass's activations and KV cache when no row count is given (on the CPU; more on a
#: GPU with free memory: `engine.loading.work_budget`).
ROWS_BUDGET_BYTES = 512 * 2**20
MAX_AUTO_ROWS = 1024


def check_kinds(kinds: Sequence[str]) -> None:
    """Refuse an empty list of kinds, or one with a kind no restoration writes."""
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {', '.join(KINDS)}; got {list(kinds)}")


@dataclass(frozen=True)
class Restoration:
    """Write the clean activations of ``kind`` at ``layers`` x ``tokens`` into the corrupted run.

    Attributes:
        kind: ``residual`` (block output), ``mlp`` or ``attention`` (module outputs).
        layers: block indices, sorted.
        tokens: token positions, sorted.
    """

    kind: Kind
    layers: tuple[int, ...]
    tokens: tuple[int, ...]

    def spawn_point(self) -> int:
        """The block after whose output this restoration's rows join the pass (-1: from the start).

        A residual restoration at ``l`` overwrites block ``l``'s output, so its rows can join right
        there; an MLP or attention restoration at ``l`` needs block ``l`` computed on its rows.
        """
        first = self.layers[0]
        return first if self.kind == "residual" else first - 1


@dataclass(frozen=True)
class CleanRun:
    """What is restored: the clean run's activations.

    Attributes:
        activations: kind -> ``[n_layers, seq, hidden]``.
        logits: the clean last-position logits ``[vocab]``.
    """

    activations: dict[SiteKind, torch.Tensor]
    logits: torch.Tensor


@dataclass(frozen=True)
class CorruptedRun:
    """The corrupted run, one row per noise sample (one row for a corrupted prompt).

    Attributes:
        embeds: ``[samples, seq, hidden]`` input token embeddings.
        logits: ``[samples, vocab]`` last-position logits.
        keys, values: per layer ``[samples, kv_heads, seq, head_dim]``: the cache rows start from.
        first_difference: positions before it are identical to the clean run.
    """

    embeds: torch.Tensor
    logits: torch.Tensor
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    first_difference: int


@torch.inference_mode()
def run_corrupted(lm: LoadedModel, embeds: torch.Tensor, first_difference: int) -> CorruptedRun:
    """Run the corrupted inputs once, keeping the KV cache that restorations start from.

    Positions before ``first_difference`` are the same in every row, so they are computed once,
    for one row, and the cache is widened to all rows.
    """
    samples, seq, _ = embeds.shape
    cache: DynamicCache | None = None
    start = first_difference if 0 < first_difference < seq else 0
    if start:
        cache = lm.model.base_model(inputs_embeds=embeds[:1, :start], use_cache=True).past_key_values
        cache.batch_repeat_interleave(samples)
    positions = torch.arange(start, seq, device=lm.device)[None]
    out = lm.model.base_model(inputs_embeds=embeds[:, start:], past_key_values=cache, use_cache=True,
                              position_ids=positions if start else None)
    logits = lm.adapter.unembedding(lm.model)(out.last_hidden_state[:, -1].contiguous())
    keys, values = [], []
    for layer in out.past_key_values.layers:
        if layer.keys is None or layer.keys.shape[-2] != seq:
            raise ValueError("this model's cache does not keep every position (sliding window?): cannot trace")
        keys.append(layer.keys)
        values.append(layer.values)
    return CorruptedRun(embeds=embeds, logits=logits, keys=keys, values=values,
                        first_difference=first_difference)


def auto_rows(lm: LoadedModel, corrupted: CorruptedRun, budget_bytes: int | None = None) -> int:
    """Rows per pass that keep the KV cache and the widest activations within ``budget_bytes``."""
    if budget_bytes is None:
        budget_bytes = work_budget(lm, ROWS_BUDGET_BYTES)
    _, seq, hidden = corrupted.embeds.shape
    kv = corrupted.keys[0].shape[1] * corrupted.keys[0].shape[3]
    per_row = seq * lm.dtype.itemsize * (2 * len(corrupted.keys) * kv + 16 * hidden)
    per_row += 4 * int(lm.model.config.vocab_size)
    return int(max(1, min(MAX_AUTO_ROWS, budget_bytes // per_row)))


def restore(
    lm: LoadedModel,
    clean: CleanRun,
    corrupted: CorruptedRun,
    restorations: list[Restoration],
    *,
    reduce: Reducer,
    max_rows: int | None = None,
    on_chunk: ChunkCallback | None = None,
) -> torch.Tensor:
    """Apply each restoration to every corrupted row and reduce the output logits.

    Args:
        lm: the model (any family whose attention takes a 4D mask and a ``DynamicCache``).
        clean: the activations to restore (every kind the restorations use).
        corrupted: the corrupted run.
        restorations: what to restore, one result each.
        reduce: last-position logits ``[rows, vocab]`` -> ``[rows, ...]``.
        max_rows: rows per forward pass (restorations x samples); from a memory budget when None.
        on_chunk: progress and cancellation hook, called after each pass.

    Returns:
        ``[n_restorations, samples, ...]``: the reduced output of each restoration and sample.
    """
    samples, seq, _ = corrupted.embeds.shape
    n_layers = len(corrupted.keys)
    for r in restorations:
        if r.kind not in clean.activations:
            raise ValueError(f"the clean run recorded no {r.kind} activations")
        if not r.layers or not r.tokens or r.layers[0] < 0 or r.layers[-1] >= n_layers or r.tokens[0] < 0 \
                or r.tokens[-1] >= seq:
            raise ValueError(f"restoration {r} is outside the model's {n_layers} layers x {seq} tokens")
    noop = reduce(corrupted.logits)  # what a restoration of identical activations gives
    results: list[torch.Tensor | None] = [None] * len(restorations)
    pending: dict[int, list[int]] = {}  # first effective token -> restoration indices
    for index, r in enumerate(restorations):
        effective = [t for t in r.tokens if t >= corrupted.first_difference]
        if effective:
            pending.setdefault(effective[0], []).append(index)
        else:
            results[index] = noop
    per_pass = max(1, (max_rows or auto_rows(lm, corrupted)) // samples - 1)
    chunks = []
    for start, indices in sorted(pending.items()):
        indices.sort(key=lambda i: restorations[i].spawn_point())
        chunks += [(start, indices[i : i + per_pass]) for i in range(0, len(indices), per_pass)]
    total, done = len(restorations) * samples, (len(restorations) - sum(len(c) for _, c in chunks)) * samples
    for start, indices in chunks:
        reduced = _run_pass(lm, clean, corrupted, [restorations[i] for i in indices], start, reduce)
        for offset, index in enumerate(indices):
            results[index] = reduced[offset * samples : (offset + 1) * samples]
        done += len(indices) * samples
        if on_chunk is not None:
            on_chunk(done, total)
    return torch.stack([r for r in results if r is not None])


def _run_pass(lm: LoadedModel, clean: CleanRun, corrupted: CorruptedRun, cells: list[Restoration], start: int,
              reduce: Reducer) -> torch.Tensor:
    """One growing-batch pass over positions ``start..seq-1`` for ``cells`` (sorted by spawn point)."""
    samples, seq, _ = corrupted.embeds.shape
    n_layers, device = len(corrupted.keys), lm.device
    spawn = [c.spawn_point() for c in cells]
    last_spawn = max(spawn)
    sample_ids = torch.arange(samples, device=device)

    def layout(j: int) -> tuple[int, int]:
        """(row offset of the first cell, cells alive) at the input of block ``j`` (``n_layers``: the end)."""
        alive = sum(1 for p in spawn if p < j)
        return (samples if j <= last_spawn else 0), alive

    def writer(kind: Kind, j: int, cell_ids: list[int], rows_at: int) -> tuple[torch.Tensor, ...]:
        # Every (row, position) entry this site overwrites, and the clean values for them. The indices
        # are counted here and sent in one transfer (a tensor per cell was a copy per cell and layer).
        offset, _ = layout(rows_at)
        rows, positions, tokens = [], [], []
        for i in cell_ids:
            # Tokens before ``start`` lie before the first difference: restoring them changes nothing.
            kept = [t for t in cells[i].tokens if t >= start]
            for sample in range(samples):
                rows += [offset + i * samples + sample] * len(kept)
                positions += [t - start for t in kept]
                tokens += kept
        index = torch.tensor([rows, positions, tokens]).to(device)
        return index[0], index[1], clean.activations[kind][j].index_select(0, index[2])

    hooks: dict[Site, Rewrite] = {}
    for j in range(n_layers):
        joining = [i for i, p in enumerate(spawn) if p == j]
        residual = [i for i, c in enumerate(cells) if c.kind == "residual" and j in c.layers]
        if joining or residual or j == last_spawn:
            # After block j the layout is that of block j + 1's input, plus the base rows until dropped.
            written = writer("residual", j, residual, j + 1) if residual else None
            hooks[Site("residual", j)] = _grow(samples, len(joining), j == last_spawn, written)
        for kind in MODULE_KINDS:
            inside = [i for i, c in enumerate(cells) if c.kind == kind and j in c.layers]
            if inside:
                hooks[Site(kind, j)] = _overwrite(*writer(kind, j, inside, j))

    initial = sum(1 for p in spawn if p < 0)
    embeds = corrupted.embeds[:, start:]
    base = [embeds] if last_spawn >= 0 else []
    inputs = torch.cat([*base, embeds.repeat(initial, 1, 1)]) if initial else embeds
    kwargs: dict[str, object] = {"use_cache": False}
    if start > 0:
        cache = DynamicCache()
        for j in range(n_layers):
            offset, alive = layout(j)
            rows = torch.cat([sample_ids[:offset], sample_ids.repeat(alive)])
            cache.update(corrupted.keys[j][rows, :, :start], corrupted.values[j][rows, :, :start], j)
        span = seq - start
        # Query i (absolute position start + i) sees keys 0..start + i; batch size 1 broadcasts to any row count.
        blocked = torch.ones(span, seq, dtype=torch.bool, device=device).triu(start + 1)
        mask = torch.zeros(1, 1, span, seq, dtype=lm.dtype, device=device)
        mask = mask.masked_fill(blocked, torch.finfo(lm.dtype).min)
        kwargs = {"use_cache": True, "past_key_values": cache, "attention_mask": mask,
                  "position_ids": torch.arange(start, seq, device=device)[None]}
    with torch.inference_mode(), patch(lm, hooks):
        logits = last_logits(lm, inputs_embeds=inputs, **kwargs)
    if logits.shape[0] != len(cells) * samples:
        raise RuntimeError(f"the pass ended with {logits.shape[0]} rows; expected {len(cells) * samples}")
    return reduce(logits)


def _grow(samples: int, joining: int, drop_base: bool,
          written: tuple[torch.Tensor, ...] | None) -> Rewrite:
    """A block-output hook: append ``joining`` copies of the sample rows, overwrite residual entries,
    and drop the sample rows once no restoration will join later."""

    def fn(hidden: torch.Tensor) -> torch.Tensor:
        if joining:
            hidden = torch.cat([hidden, hidden[:samples].repeat(joining, 1, 1)])
        if drop_base:
            hidden = hidden[samples:]
        if written is not None:  # row indices are in the layout after joining and dropping
            rows, positions, values = written
            hidden = hidden.index_put((rows, positions), values.to(hidden.dtype))
        return hidden

    return fn


def _overwrite(rows: torch.Tensor, positions: torch.Tensor, values: torch.Tensor) -> Rewrite:
    """A module-output hook that writes clean values at the given (row, position) entries."""

    def fn(hidden: torch.Tensor) -> torch.Tensor:
        return hidden.index_put((rows, positions), values.to(hidden.dtype))

    return fn

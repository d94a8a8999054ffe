"""Rows already computed by earlier calls of one explanation, kept so later calls reuse their prefixes.

SHAP's Partition explainer calls the model function several times per explanation, with batches that
grow as it refines the hierarchy (1, 1, 2, 8, 24, 48 rows for a 10-token prompt). Rows of a later
call share prefixes with rows of earlier calls: on the attribution benchmark's prompts the trie of
every row of an explanation is 15 to 35 % smaller than the sum of each call's own trie. A
`PrefixStore` keeps the KV cache and final states of every row computed so far (within a memory
budget), so `~engine.attribution.shared_prefix.forward_shared_prefixes` starts each new row from its
longest stored prefix and serves a row seen before without running the model.

The store is mutable state of one explanation (one prompt, one set of targets): create one per
explanation and drop it after; it is never shared between jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

#: Memory the stored KV caches and states of one explanation may take.
STORE_BUDGET_BYTES = 256 * 2**20


def common_prefix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[rows]``: the length of the common prefix of ``a[i]`` and ``b[i]`` (both ``[rows, n]``)."""
    differs = a != b
    return np.where(differs.any(axis=1), differs.argmax(axis=1), a.shape[1]).astype(np.int64)


@dataclass
class PrefixStore:
    """KV caches and final states of computed rows of one length, added to by each forward call.

    Attributes:
        budget_bytes: rows are added while the store stays within this; later rows are not kept.
        ids: ``[m, n]`` the stored rows' token ids (unordered, distinct).
        keys, values: per layer, ``[m, kv_heads, n, head_dim]``.
        hidden: ``[m, keep_last, hidden]`` final states of each stored row's last positions.
    """

    budget_bytes: int = STORE_BUDGET_BYTES
    ids: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    hidden: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        tensors = [*self.keys, *self.values, *([] if self.hidden is None else [self.hidden])]
        return sum(t.numel() * t.element_size() for t in tensors)

    def match(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The longest stored prefix of each row.

        In lexicographic order, the stored row sharing the longest prefix with a row is the stored
        row just before or just after it, so one sort of stored and new rows together finds it.

        Args:
            rows: ``[r, n]`` token ids.

        Returns:
            ``(length [r], index [r])``: the longest common prefix with any stored row (``n`` when
            the row is stored) and that stored row's index (-1 when the store is empty).
        """
        r = len(rows)
        if self.size == 0 or r == 0:
            return np.zeros(r, dtype=np.int64), np.full(r, -1, dtype=np.int64)
        if rows.shape[1] != self.ids.shape[1]:
            raise ValueError(f"the store holds rows of {self.ids.shape[1]} tokens, not {rows.shape[1]}")
        merged = np.concatenate([self.ids, rows])
        order = np.lexsort(merged.T[::-1])
        stored_at = order < self.size  # [m + r] in sorted order
        slots = np.arange(len(order))
        before = np.maximum.accumulate(np.where(stored_at, slots, -1))
        after = np.minimum.accumulate(np.where(stored_at, slots, len(order))[::-1])[::-1]
        new_slots = np.flatnonzero(~stored_at)
        new_rows = order[new_slots] - self.size  # which input row sits at each new slot
        length = np.full(r, -1, dtype=np.int64)
        index = np.full(r, -1, dtype=np.int64)
        for neighbour in (before[new_slots], after[new_slots]):
            valid = (neighbour >= 0) & (neighbour < len(order))
            stored = order[np.clip(neighbour, 0, len(order) - 1)]
            shared = common_prefix(rows[new_rows], self.ids[np.minimum(stored, self.size - 1)])
            better = valid & (shared > length[new_rows])
            length[new_rows[better]] = shared[better]
            index[new_rows[better]] = stored[better]
        return np.maximum(length, 0), index

    def add(self, ids: np.ndarray, keys: list[torch.Tensor], values: list[torch.Tensor], hidden: torch.Tensor) -> int:
        """Keep as many of these new, distinct rows as the budget allows.

        Args:
            ids: ``[g, n]`` rows not stored yet.
            keys, values: per layer, ``[g, kv_heads, n, head_dim]``.
            hidden: ``[g, keep_last, hidden]``.

        Returns:
            How many rows were kept.
        """
        per_row = sum(t[:1].numel() * t.element_size() for t in [*keys, *values, hidden])
        room = max(0, (self.budget_bytes - self.nbytes) // max(1, per_row))
        kept = min(len(ids), int(room))
        if kept == 0:
            return 0
        if self.size == 0:
            self.ids = ids[:kept].copy()
            self.keys = [k[:kept].clone() for k in keys]
            self.values = [v[:kept].clone() for v in values]
            self.hidden = hidden[:kept].clone()
        else:
            assert self.hidden is not None
            self.ids = np.concatenate([self.ids, ids[:kept]])
            self.keys = [torch.cat([old, new[:kept]]) for old, new in zip(self.keys, keys, strict=True)]
            self.values = [torch.cat([old, new[:kept]]) for old, new in zip(self.values, values, strict=True)]
            self.hidden = torch.cat([self.hidden, hidden[:kept]])
        return kept

"""Forward passes over many sequences that share prefixes, computing each distinct prefix once.

A causal model's hidden states at position ``p`` depend only on tokens ``0..p``. SHAP's masked
inputs are the prompt with some tokens replaced, so rows agree on long prefixes: measured on the
Partition explainer's batches for prompts of 10 to 57 tokens, the distinct prefixes (the nodes of
the rows' trie) are 45 to 55 % of ``rows * length``. Computing only those and extending each with a
KV cache gives the same logits for half the work; with a `~engine.attribution.prefix_store.PrefixStore`
prefixes computed by earlier calls of the same explanation are not computed again either.

How: the rows are sorted, so that rows sharing a prefix are adjacent; the run is cut into levels at
split points ``0 = s_0 < s_1 < ... < s_k = n``; level ``j`` runs positions ``[s_{j-1}, s_j)`` once
per distinct prefix of length ``s_j`` that is not stored, on a KV cache gathered from level
``j-1``'s prefixes or from the store. Cutting at every position would compute exactly the trie, but
each level is a forward call with a fixed cost; the split points are chosen by dynamic programming
to minimise ``sum_j U(s_j) (s_j - s_{j-1}) + LEVEL_COST`` where ``U(p)`` is the number of prefixes
of length ``p`` to compute. Rows that are entirely equal, or stored, are computed once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from transformers import DynamicCache

from engine.attribution.prefix_store import PrefixStore, common_prefix
from engine.loading import LoadedModel

#: The fixed cost of one more forward call (a level), in row-positions. One row-position of a 135M
#: model is about 0.2 GFLOP (2 to 2.5 ms on one CPU core); a forward call streams every weight once
#: whatever its rows (about 40 ms on one core). Measured flat between 8 and 16 on SHAP's batches.
LEVEL_COST = 16.0
#: KV-cache memory one call may hold when the caller does not fix its rows.
CACHE_BUDGET_BYTES = 256 * 2**20

#: Called after each level but the last with the share (0..1) of the call's row-positions computed so far.
LevelCallback = Callable[[float], None]


def auto_rows(lm: LoadedModel, n: int, budget_bytes: int = CACHE_BUDGET_BYTES) -> int:
    """Rows per call so that their KV cache of ``n`` positions stays within ``budget_bytes``."""
    config = lm.model.config
    heads = int(getattr(config, "num_attention_heads", getattr(config, "n_head", 1)) or 1)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or lm.hidden_size // heads)
    per_row = 2 * lm.n_layers * kv_heads * head_dim * lm.dtype.itemsize * n
    return max(1, budget_bytes // per_row)


def first_differences(sorted_ids: np.ndarray) -> np.ndarray:
    """``[rows - 1]``: where each sorted row first differs from the next (``n`` when equal)."""
    if len(sorted_ids) < 2:
        return np.empty(0, dtype=np.int64)
    return common_prefix(sorted_ids[1:], sorted_ids[:-1])


def prefixes_to_compute(differences: np.ndarray, n: int, stored: np.ndarray | None = None) -> np.ndarray:
    """``U(p)`` for ``p = 0..n``: distinct prefixes of length ``p`` of the sorted rows that are not stored.

    A prefix of length ``p`` is stored exactly when the first row of its group has a stored prefix of
    at least ``p`` (the rows of a group share it), so each group is counted at its first row.

    Args:
        differences: ``[rows - 1]`` `first_differences` of the sorted rows.
        n: the rows' length.
        stored: ``[rows]`` each row's longest stored prefix; None when nothing is stored.

    Returns:
        ``[n + 1]`` counts.
    """
    lengths = np.zeros(len(differences) + 1, dtype=np.int64) if stored is None else stored
    return np.asarray([int((np.concatenate([[True], differences < p]) & (lengths < p)).sum()) for p in range(n + 1)],
                      dtype=np.int64)


def plan_levels(to_compute: np.ndarray, n: int, keep_last: int, level_cost: float = LEVEL_COST) -> list[int]:
    """Split points ``[s_1, ..., s_k = n]`` minimising computed row-positions plus level costs.

    Args:
        to_compute: ``[n + 1]`` ``U(p)``, the prefixes of length ``p`` to compute (`prefixes_to_compute`).
        n: sequence length.
        keep_last: positions whose states are needed (the last ones); they must share a level.
        level_cost: cost of a level in row-positions.
    """
    candidates = [*range(0, n - keep_last + 1), n]
    best = {0: (0.0, -1)}
    for end in candidates[1:]:
        best[end] = min((best[start][0] + float(to_compute[end]) * (end - start) + level_cost, start)
                        for start in candidates if start < end and (end < n or start <= n - keep_last))
    splits, point = [], n
    while point > 0:
        splits.append(point)
        point = best[point][1]
    return splits[::-1]


@torch.inference_mode()
def forward_shared_prefixes(lm: LoadedModel, ids: torch.Tensor, keep_last: int,
                            store: PrefixStore | None = None, on_level: LevelCallback | None = None) -> torch.Tensor:
    """Final hidden states of the last ``keep_last`` positions of every row, shared prefixes computed once.

    Args:
        lm: the model (any family with a KV cache; every row has the same length, no padding).
        ids: ``[rows, n]`` token ids.
        keep_last: how many final positions to return (``1 <= keep_last <= n``).
        store: rows computed by earlier calls of the same explanation: read for their prefixes and
            states, and added to (within its budget). None: this call stands alone.
        on_level: progress within the call (a large call is a few levels of very unequal cost), after
            each level but the last; it may raise to stop the work.

    Returns:
        ``[rows, keep_last, hidden]`` contiguous, after the final norm (the input of the LM head),
        in the model's dtype; equal to one plain forward pass per row up to the float error of
        different batch shapes.
    """
    rows, n = ids.shape
    if not 1 <= keep_last <= n:
        raise ValueError(f"keep_last must be in [1, {n}]")
    store = PrefixStore(budget_bytes=0) if store is None else store
    if store.hidden is not None and store.hidden.shape[1] != keep_last:
        raise ValueError(f"the store keeps {store.hidden.shape[1]} final positions, not {keep_last}")
    host = ids.cpu().numpy()
    order = np.lexsort(host.T[::-1])  # lexicographic: the first column is the primary key
    sorted_ids = host[order]
    new_row = np.concatenate([[True], first_differences(sorted_ids) < n])
    unique = sorted_ids[new_row]  # [u, n] distinct rows, still sorted
    row_of = np.cumsum(new_row) - 1  # sorted row -> distinct row
    stored, match = store.match(unique)
    out = torch.empty(len(unique), keep_last, lm.hidden_size, dtype=lm.dtype, device=lm.device)
    seen = np.flatnonzero(stored == n)
    if seen.size:
        assert store.hidden is not None
        out[torch.from_numpy(seen).to(lm.device)] = store.hidden[torch.from_numpy(match[seen]).to(lm.device)]
    todo = np.flatnonzero(stored < n)
    if todo.size:
        keys, values, hidden = _compute(lm, unique[todo], stored[todo], match[todo], keep_last, store, on_level)
        out[torch.from_numpy(todo).to(lm.device)] = hidden
        store.add(unique[todo], keys, values, hidden)
    # Back from distinct rows to every row, then from sorted order to the caller's.
    unsorted = np.empty(rows, dtype=np.int64)
    unsorted[order] = row_of
    return out[torch.from_numpy(unsorted).to(lm.device)].contiguous()


def _compute(lm: LoadedModel, todo: np.ndarray, stored: np.ndarray, match: np.ndarray, keep_last: int,
             store: PrefixStore, on_level: LevelCallback | None) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                                       torch.Tensor]:
    """Run the levels over distinct, sorted rows none of which is stored whole.

    Args:
        todo: ``[r, n]`` the rows.
        stored, match: ``[r]`` each row's longest stored prefix and the stored row holding it.

    Returns:
        Per layer keys and values ``[r, kv_heads, n, head_dim]``, and ``[r, keep_last, hidden]``.
    """
    n = todo.shape[1]
    differences = first_differences(todo)
    device = lm.device
    start = 0
    prev_keys: list[torch.Tensor] = []
    prev_values: list[torch.Tensor] = []
    prev_slot = np.zeros(0, dtype=np.int64)  # group at the previous level -> row of prev_keys (-1: not computed)
    prev_group = np.zeros(len(todo), dtype=np.int64)
    out = None
    counts = prefixes_to_compute(differences, n, stored)
    splits = plan_levels(counts, n, keep_last)
    # A level computes counts[end] prefixes over end - start positions: the share of the work it is.
    costs = np.asarray([counts[end] * (end - begin) for begin, end in zip([0, *splits[:-1]], splits, strict=True)],
                       dtype=np.float64)
    done = np.cumsum(costs) / max(float(costs.sum()), 1.0)
    for level, end in enumerate(splits):
        if on_level is not None and level > 0:
            on_level(float(done[level - 1]))
        starts = np.concatenate([[True], differences < end])
        group = np.cumsum(starts) - 1  # row -> group of its prefix of length `end`
        heads = np.flatnonzero(starts & (stored < end))  # one row per group to compute
        if heads.size == 0:  # every prefix of this length is stored
            prev_slot, prev_group, prev_keys, prev_values, start = np.full(group[-1] + 1, -1), group, [], [], end
            continue
        if start == 0:
            cache = DynamicCache()
            computed = heads
        else:
            # Parents of length `start`: from the store where it holds them, else from the previous level.
            from_store = heads[stored[heads] >= start]
            from_level = heads[stored[heads] < start]
            computed = np.concatenate([from_store, from_level])
            pairs = []
            for layer in range(len(prev_keys) or len(store.keys)):
                parts_k, parts_v = [], []
                if from_store.size:
                    index = torch.from_numpy(match[from_store]).to(device)
                    parts_k.append(store.keys[layer][index, :, :start])
                    parts_v.append(store.values[layer][index, :, :start])
                if from_level.size:
                    index = torch.from_numpy(prev_slot[prev_group[from_level]]).to(device)
                    parts_k.append(prev_keys[layer][index, :, :start])
                    parts_v.append(prev_values[layer][index, :, :start])
                pairs.append((torch.cat(parts_k), torch.cat(parts_v)))
            cache = DynamicCache(ddp_cache_data=pairs)
        chunk = torch.from_numpy(todo[computed, start:end]).to(device)
        positions = torch.arange(start, end, device=device).expand(len(computed), -1)
        mask = torch.ones(len(computed), end, dtype=torch.long, device=device)
        out = lm.model.base_model(input_ids=chunk, position_ids=positions, past_key_values=cache, use_cache=True,
                                  attention_mask=mask)
        prev_keys = [layer.keys for layer in out.past_key_values.layers]
        prev_values = [layer.values for layer in out.past_key_values.layers]
        prev_slot = np.full(group[-1] + 1, -1, dtype=np.int64)
        prev_slot[group[computed]] = np.arange(len(computed))
        prev_group, start = group, end
    # The last level computes every row (none is stored whole), in the order `computed`.
    assert out is not None
    back = torch.from_numpy(prev_slot[prev_group]).to(device)  # row -> its slot in the last level
    hidden = out.last_hidden_state[back, -keep_last:]
    return [k[back] for k in prev_keys], [v[back] for v in prev_values], hidden

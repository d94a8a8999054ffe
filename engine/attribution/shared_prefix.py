"""Forward passes over many sequences that share prefixes, computing each distinct prefix once.

A causal model's hidden states at position ``p`` depend only on tokens ``0..p``. SHAP's masked
inputs are the prompt with some tokens replaced, so rows agree on long prefixes: measured on the
Partition explainer's batches for prompts of 10 to 57 tokens, the distinct prefixes (the nodes of
the rows' trie) are 45 to 55 % of ``rows * length``. Computing only those and extending each with a
KV cache gives the same logits for half the work.

How: the rows are sorted, so that rows sharing a prefix are adjacent; the run is cut into levels at
split points ``0 = s_0 < s_1 < ... < s_k = n``; level ``j`` runs positions ``[s_{j-1}, s_j)`` once
per distinct prefix of length ``s_j``, on a KV cache whose rows were gathered from level ``j-1``'s
distinct prefixes. Cutting at every position would compute exactly the trie, but each level is a
forward call with a fixed cost; the split points are chosen by dynamic programming to minimise
``sum_j U(s_j) (s_j - s_{j-1}) + LEVEL_COST`` where ``U(p)`` is the number of distinct prefixes of
length ``p``. Rows that are entirely equal are computed once.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import DynamicCache

from engine.loading import LoadedModel

#: The fixed cost of one more forward call (a level), in row-positions. One row-position of a 135M
#: model is about 0.2 GFLOP (a couple of milliseconds on one CPU core); a forward call through 30
#: blocks costs about as much in Python and kernel launches.
LEVEL_COST = 8.0
#: KV-cache memory one call may hold when the caller does not fix its rows.
CACHE_BUDGET_BYTES = 256 * 2**20


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
    rows, n = sorted_ids.shape
    if rows < 2:
        return np.empty(0, dtype=np.int64)
    differs = sorted_ids[1:] != sorted_ids[:-1]  # [rows - 1, n]
    return np.where(differs.any(axis=1), differs.argmax(axis=1), n).astype(np.int64)


def plan_levels(differences: np.ndarray, n: int, keep_last: int, level_cost: float = LEVEL_COST) -> list[int]:
    """Split points ``[s_1, ..., s_k = n]`` minimising computed row-positions plus level costs.

    Args:
        differences: `first_differences` of the sorted rows.
        n: sequence length.
        keep_last: positions whose logits are needed (the last ones); they must share a level.
        level_cost: cost of a level in row-positions.
    """
    distinct = 1 + np.array([int((differences < p).sum()) for p in range(n + 1)])  # U(p), p = 0..n
    candidates = [*range(0, n - keep_last + 1), n]
    best = {0: (0.0, -1)}
    for end in candidates[1:]:
        best[end] = min((best[start][0] + distinct[end] * (end - start) + level_cost, start)
                        for start in candidates if start < end and (end < n or start <= n - keep_last))
    splits, point = [], n
    while point > 0:
        splits.append(point)
        point = best[point][1]
    return splits[::-1]


@torch.inference_mode()
def forward_shared_prefixes(lm: LoadedModel, ids: torch.Tensor, keep_last: int) -> torch.Tensor:
    """Final hidden states of the last ``keep_last`` positions of every row, shared prefixes computed once.

    Args:
        lm: the model (any family with a KV cache; every row has the same length, no padding).
        ids: ``[rows, n]`` token ids.
        keep_last: how many final positions to return (``1 <= keep_last <= n``).

    Returns:
        ``[rows, keep_last, hidden]`` contiguous, after the final norm (the input of the LM head),
        in the model's dtype; equal to one plain forward pass per row up to the float error of
        different batch shapes.
    """
    rows, n = ids.shape
    if not 1 <= keep_last <= n:
        raise ValueError(f"keep_last must be in [1, {n}]")
    host = ids.cpu().numpy()
    order = np.lexsort(host.T[::-1])  # lexicographic: the first column is the primary key
    sorted_ids = host[order]
    differences = first_differences(sorted_ids)
    cache = DynamicCache()
    start, parent_group = 0, np.zeros(rows, dtype=np.int64)
    hidden = torch.empty(0)
    for end in plan_levels(differences, n, keep_last):
        # Group of each sorted row at this level: a new group wherever the prefix of length `end` changes.
        group = np.concatenate([[0], np.cumsum(differences < end)])
        representatives = np.flatnonzero(np.concatenate([[True], differences < end]))
        if start > 0:
            parents = torch.from_numpy(parent_group[representatives]).to(lm.device)
            cache.reorder_cache(parents)  # type: ignore[arg-type]  # any int64 index tensor; typed LongTensor
        chunk = torch.from_numpy(sorted_ids[representatives, start:end]).to(lm.device)
        positions = torch.arange(start, end, device=lm.device).expand(len(representatives), -1)
        mask = torch.ones(len(representatives), end, dtype=torch.long, device=lm.device)
        out = lm.model.base_model(input_ids=chunk, position_ids=positions, past_key_values=cache, use_cache=True,
                                  attention_mask=mask)
        cache, hidden = out.past_key_values, out.last_hidden_state
        parent_group, start = group, end
    # Back from distinct rows to every row, then from sorted order to the caller's.
    unsorted = np.empty(rows, dtype=np.int64)
    unsorted[order] = parent_group
    return hidden[torch.from_numpy(unsorted).to(hidden.device), -keep_last:].contiguous()

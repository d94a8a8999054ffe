"""Shared-prefix forward passes: the same states as one plain pass per row, for less work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.attribution.shared_prefix import auto_rows, first_differences, forward_shared_prefixes, plan_levels
from tests.fakes import tiny_gpt2_lm, tiny_lm


def masked_rows(n: int, rows: int, seed: int) -> torch.Tensor:
    """Rows of one prompt with random tokens replaced by a mask id, as SHAP makes them."""
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(5, 100, (n,), generator=generator)
    masked = torch.rand(rows, n, generator=generator) < 0.3
    return torch.where(masked, torch.zeros(rows, n, dtype=torch.long), prompt.expand(rows, -1))


@pytest.mark.parametrize("make", [tiny_lm, tiny_gpt2_lm], ids=["llama", "gpt2"])
@pytest.mark.parametrize("keep_last", [1, 3])
def test_shared_prefix_states_equal_one_plain_pass_per_row(make, keep_last: int) -> None:
    lm = make()
    ids = masked_rows(12, 40, seed=keep_last)
    got = forward_shared_prefixes(lm, ids, keep_last)
    with torch.inference_mode():
        expected = torch.cat([lm.model.base_model(input_ids=row[None]).last_hidden_state[:, -keep_last:]
                              for row in ids])
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_identical_rows_and_a_single_row_are_handled() -> None:
    lm = tiny_lm()
    ids = masked_rows(7, 1, seed=3).expand(5, -1)
    got = forward_shared_prefixes(lm, ids, 2)
    torch.testing.assert_close(got, got[:1].expand(5, -1, -1))


def test_the_plan_ends_at_the_length_and_keeps_the_needed_positions_in_one_level() -> None:
    ids = masked_rows(20, 64, seed=0).numpy()
    differences = first_differences(ids[np.lexsort(ids.T[::-1])])
    for keep_last in (1, 4):
        splits = plan_levels(differences, 20, keep_last)
        assert splits[-1] == 20 and splits == sorted(set(splits))
        assert len(splits) == 1 or splits[-2] <= 20 - keep_last


def test_the_plan_computes_fewer_positions_than_plain_rows_when_prefixes_are_shared() -> None:
    ids = masked_rows(20, 64, seed=1).numpy()
    ids[:, :10] = ids[0, :10]  # the first half is shared by every row
    sorted_ids = ids[np.lexsort(ids.T[::-1])]
    differences = first_differences(sorted_ids)
    distinct = 1 + np.array([int((differences < p).sum()) for p in range(21)])
    splits = plan_levels(differences, 20, 1, level_cost=0.0)
    computed = sum(distinct[end] * (end - start) for start, end in zip([0, *splits[:-1]], splits, strict=True))
    assert computed < 0.6 * ids.size


def test_automatic_rows_keep_the_cache_within_its_budget() -> None:
    lm = tiny_lm()
    rows = auto_rows(lm, 100, budget_bytes=2**20)
    assert rows >= 1
    assert auto_rows(lm, 200, budget_bytes=2**20) <= rows


def test_keep_last_outside_the_sequence_is_refused() -> None:
    with pytest.raises(ValueError, match="keep_last"):
        forward_shared_prefixes(tiny_lm(), masked_rows(4, 2, seed=0), 5)

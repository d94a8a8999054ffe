"""Shared-prefix forward passes: the same states as one plain pass per row, for less work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.attribution.prefix_store import PrefixStore
from engine.attribution.shared_prefix import (
    auto_rows,
    first_differences,
    forward_shared_prefixes,
    plan_levels,
    prefixes_to_compute,
)
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
        splits = plan_levels(prefixes_to_compute(differences, 20), 20, keep_last)
        assert splits[-1] == 20 and splits == sorted(set(splits))
        assert len(splits) == 1 or splits[-2] <= 20 - keep_last


def test_the_plan_computes_fewer_positions_than_plain_rows_when_prefixes_are_shared() -> None:
    ids = masked_rows(20, 64, seed=1).numpy()
    ids[:, :10] = ids[0, :10]  # the first half is shared by every row
    sorted_ids = ids[np.lexsort(ids.T[::-1])]
    differences = first_differences(sorted_ids)
    distinct = prefixes_to_compute(differences, 20)
    assert list(distinct[1:]) == [1 + int((differences < p).sum()) for p in range(1, 21)]
    splits = plan_levels(distinct, 20, 1, level_cost=0.0)
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


def plain_states(lm, ids: torch.Tensor, keep_last: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return torch.cat([lm.model.base_model(input_ids=row[None]).last_hidden_state[:, -keep_last:] for row in ids])


@pytest.mark.parametrize("make", [tiny_lm, tiny_gpt2_lm], ids=["llama", "gpt2"])
def test_calls_that_reuse_stored_prefixes_give_the_states_of_plain_passes(make) -> None:  # type: ignore[no-untyped-def]
    lm = make()
    store = PrefixStore()
    calls = [masked_rows(12, rows, seed=7) for rows in (1, 3, 9, 30)]  # one prompt, growing batches
    calls.append(torch.cat([calls[2][:4], masked_rows(12, 6, seed=8)]))  # rows seen before, and new ones
    for ids in calls:
        got = forward_shared_prefixes(lm, ids, 2, store=store)
        torch.testing.assert_close(got, plain_states(lm, ids, 2), rtol=1e-5, atol=1e-5)
    assert store.size == len({tuple(row.tolist()) for row in torch.cat(calls)})


def test_a_stored_row_is_served_without_running_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_lm()
    store = PrefixStore()
    ids = masked_rows(9, 5, seed=4)
    first = forward_shared_prefixes(lm, ids, 1, store=store)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran for a stored row")

    monkeypatch.setattr(lm.model.base_model, "forward", refuse)
    again = forward_shared_prefixes(lm, ids.flip(0), 1, store=store)
    torch.testing.assert_close(again, first.flip(0), rtol=0, atol=0)


def test_the_store_finds_each_rows_longest_stored_prefix() -> None:
    rows = masked_rows(10, 20, seed=5).numpy()
    store = PrefixStore()
    store.ids = rows[:12]
    length, index = store.match(rows[8:])
    for row, got, at in zip(rows[8:], length, index, strict=True):
        shared = [next((p for p in range(10) if row[p] != other[p]), 10) for other in rows[:12]]
        assert got == max(shared) and shared[at] == got


def test_the_store_keeps_no_more_rows_than_its_budget_allows() -> None:
    lm = tiny_lm()
    store = PrefixStore(budget_bytes=0)
    forward_shared_prefixes(lm, masked_rows(8, 6, seed=2), 1, store=store)
    assert store.size == 0
    small = PrefixStore(budget_bytes=3 * 2**10)
    forward_shared_prefixes(lm, masked_rows(8, 40, seed=2), 1, store=small)
    assert 0 < small.size < 40 and small.nbytes <= small.budget_bytes


def test_a_call_reports_its_progress_level_by_level_and_computes_the_same_states() -> None:
    lm = tiny_lm()
    ids = masked_rows(16, 64, seed=5)
    shares: list[float] = []
    got = forward_shared_prefixes(lm, ids, 2, on_level=shares.append)
    differences = first_differences(np.unique(ids.numpy(), axis=0))
    levels = plan_levels(prefixes_to_compute(differences, 16), 16, 2)
    assert len(shares) == len(levels) - 1 >= 2  # after every level but the last: the caller reports the end
    assert shares == sorted(shares) and 0 < shares[0] < shares[-1] < 1
    torch.testing.assert_close(got, forward_shared_prefixes(lm, ids, 2))

"""The masks SHAP's Partition explainer asks for are known ahead when its budget covers the tree,
and evaluating them up front changes nothing but the number of forward passes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from engine.attribution.masked_objective import MaskedObjective
from engine.attribution.partition_plan import leaf_sets, partition_masks
from engine.attribution.shap_text import shap_attribution
from tests.fakes import tiny_lm

SENTENCE = "One, two, three."  # 10 tokens under the tiny tokenizer


def record_calls(monkeypatch: pytest.MonkeyPatch, *, prefetch: bool) -> dict[str, Any]:
    """Record the rows the explainer asks for and the forward passes run while it asks."""
    seen: dict[str, Any] = {"asked": [], "passes_while_asked": 0, "prefetched": None}
    call, forward, ahead = MaskedObjective.__call__, MaskedObjective._forward, MaskedObjective.prefetch
    inside = [False]

    def asked(self: MaskedObjective, masked: np.ndarray) -> np.ndarray:
        seen["asked"].append(np.asarray(masked, dtype=np.int64).copy())
        inside[0] = True
        try:
            return call(self, masked)
        finally:
            inside[0] = False

    def counted(self: MaskedObjective, masked: torch.Tensor, *rest: Any) -> Any:
        seen["passes_while_asked"] += inside[0]
        return forward(self, masked, *rest)

    def recorded_prefetch(self: MaskedObjective, masked: np.ndarray) -> None:
        seen["prefetched"] = np.asarray(masked).copy()
        if prefetch:
            ahead(self, masked)

    monkeypatch.setattr(MaskedObjective, "__call__", asked)
    monkeypatch.setattr(MaskedObjective, "_forward", counted)
    monkeypatch.setattr(MaskedObjective, "prefetch", recorded_prefetch)
    return seen


def test_leaf_sets_follow_the_linkage() -> None:
    # Leaves 0..3; node 4 = {0, 1}, node 5 = {2, 3}, node 6 = everything.
    sets = leaf_sets(np.array([[0, 1, 1.0, 2], [2, 3, 1.0, 2], [4, 5, 2.0, 4]]))
    assert [list(np.flatnonzero(s)) for s in sets[4:]] == [[0, 1], [2, 3], [0, 1, 2, 3]]


def test_the_predicted_masks_are_exactly_those_the_explainer_asks_for(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_lm()
    ids = list(lm.tokenizer(SENTENCE)["input_ids"])
    seen = record_calls(monkeypatch, prefetch=False)
    result = shap_attribution(lm, ids, [42], attributable=[True] * len(ids), max_evals=500)
    asked = np.concatenate(seen["asked"])
    assert seen["prefetched"] is not None, "a 10-token tree fits in 500 evaluations"
    assert len(asked) == len(seen["prefetched"]) == result.evaluations
    assert {r.tobytes() for r in asked} == {r.tobytes() for r in seen["prefetched"]}


def test_with_the_masks_known_ahead_the_explainer_runs_no_forward_pass_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_lm()
    ids = list(lm.tokenizer(SENTENCE)["input_ids"])
    plain = shap_attribution(lm, ids, [42, 7], attributable=[True] * len(ids), max_evals=500, batch_size=8)
    seen = record_calls(monkeypatch, prefetch=True)
    ahead = shap_attribution(lm, ids, [42, 7], attributable=[True] * len(ids), max_evals=500, batch_size=8)
    assert seen["passes_while_asked"] == 0
    torch.testing.assert_close(ahead.attributions, plain.attributions, rtol=1e-5, atol=1e-6)
    assert ahead.evaluations == plain.evaluations


def test_a_budget_smaller_than_the_tree_predicts_nothing() -> None:
    m = 12
    clustering = np.array([[2 * i, 2 * i + 1, 1.0, 2] for i in range(m // 2)]
                          + [[m + 2 * i, m + 2 * i + 1, 2.0, 4] for i in range(3)]
                          + [[m + 6, m + 7, 3.0, 8], [m + 9, m + 8, 4.0, 12]], dtype=np.float64)
    full = partition_masks(clustering, 10_000)
    assert full is not None
    assert partition_masks(clustering, len(full) + 1) is not None
    assert partition_masks(clustering, len(full) - 1) is None
    assert not full[0].any() and full[1].all()

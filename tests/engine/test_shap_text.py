"""SHAP over input tokens: local accuracy, exact Shapley values, masking, batching, sharing.

References are computed here from plain forward passes (full logits, no ``logits_to_keep``, one
sequence at a time) and brute-force coalitions, never from the code under test.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from engine.attribution import masked_objective
from engine.attribution.shap_text import ShapResult, shap_attribution
from engine.loading import LoadedModel
from tests.fakes import tiny_gpt2_lm, tiny_lm

MODELS = {"llama": tiny_lm, "gpt2": tiny_gpt2_lm}
SENTENCE = "One, two, three."  # 10 tokens under the tiny tokenizer
LONG_SENTENCE = "The capital of France is Paris."  # 17 tokens
TARGETS = [42, 7, 100]


def encode(lm: LoadedModel, text: str) -> list[int]:
    return list(lm.tokenizer(text)["input_ids"])


def reference_objective(lm: LoadedModel, input_ids: list[int], target_ids: list[int], objective: str) -> torch.Tensor:
    """``[n_targets]`` objective from one plain forward pass over ``input + targets[:-1]``."""
    seq = torch.tensor([[*input_ids, *target_ids[:-1]]])
    with torch.no_grad():
        logits = lm.model(seq).logits[0].double()
    rows = logits[len(input_ids) - 1 : len(input_ids) - 1 + len(target_ids)]
    picked = torch.tensor(target_ids)[:, None]
    if objective == "logit":
        return rows.gather(-1, picked)[:, 0]
    log_probs = rows.log_softmax(-1).gather(-1, picked)[:, 0]
    return log_probs if objective == "log_prob" else log_probs.exp()


def masked(input_ids: list[int], hide: set[int], mask_id: int) -> list[int]:
    return [mask_id if i in hide else t for i, t in enumerate(input_ids)]


def brute_force_shapley(lm: LoadedModel, input_ids: list[int], target_ids: list[int], players: list[int],
                        mask_id: int, objective: str) -> torch.Tensor:
    """``[n_targets, n_players]`` exact Shapley values over every coalition of ``players``."""
    n = len(players)
    value = {}
    for size in range(n + 1):
        for coalition in itertools.combinations(players, size):
            hidden = set(players) - set(coalition)
            value[frozenset(coalition)] = reference_objective(lm, masked(input_ids, hidden, mask_id), target_ids,
                                                              objective)
    phi = torch.zeros(len(target_ids), n, dtype=torch.float64)
    for j, player in enumerate(players):
        others = [p for p in players if p != player]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                phi[:, j] += weight * (value[s | {player}] - value[s])
    return phi


@contextmanager
def recorded_forwards(lm: LoadedModel) -> Iterator[list[torch.Tensor]]:
    """Record the full ``[rows, seq]`` token ids of every batch the model function evaluates."""
    seen: list[torch.Tensor] = []
    original = masked_objective.forward_shared_prefixes

    def recording(model: LoadedModel, ids: torch.Tensor, keep_last: int, **kwargs: Any) -> torch.Tensor:
        assert model is lm
        seen.append(ids.detach().clone())
        return original(model, ids, keep_last, **kwargs)

    masked_objective.forward_shared_prefixes = recording  # type: ignore[assignment]
    try:
        yield seen
    finally:
        masked_objective.forward_shared_prefixes = original  # type: ignore[assignment]


def assert_local_accuracy(result: ShapResult) -> None:
    assert torch.allclose(result.base_values + result.attributions.sum(-1), result.f_input, atol=1e-5, rtol=0)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("objective", ["logit", "log_prob", "prob"])
def test_local_accuracy_and_end_points_match_independent_forwards(model: str, objective: str) -> None:
    lm = MODELS[model]()
    ids = encode(lm, LONG_SENTENCE)
    result = shap_attribution(lm, ids, TARGETS, attributable=[True] * len(ids), objective=objective,  # type: ignore[arg-type]
                              max_evals=80)

    assert result.attributions.shape == (len(TARGETS), len(ids))
    assert result.attributions.dtype == torch.float64
    assert_local_accuracy(result)
    assert torch.allclose(result.f_input, reference_objective(lm, ids, TARGETS, objective), atol=1e-5, rtol=0)
    pad = lm.tokenizer.pad_token_id  # the tiny tokenizer has no mask or unk token
    all_masked = masked(ids, set(range(len(ids))), pad)
    assert torch.allclose(result.base_values, reference_objective(lm, all_masked, TARGETS, objective), atol=1e-5,
                          rtol=0)
    assert torch.allclose(result.probability, reference_objective(lm, ids, TARGETS, "prob"), atol=1e-6, rtol=0)
    assert 2 < result.evaluations <= 80 + 64  # the explainer may fill its last batch past the budget


@pytest.mark.parametrize("model", MODELS)
def test_two_players_get_their_exact_shapley_values(model: str) -> None:
    # A whole sentence, but only two tokens attributable: a two-player game, where the Owen values
    # of the Partition explainer are the Shapley values.
    lm = MODELS[model]()
    ids = encode(lm, SENTENCE)
    players = [2, 6]
    mask_id = 5
    result = shap_attribution(lm, ids, TARGETS, attributable=[i in players for i in range(len(ids))],
                              mask_token_id=mask_id, max_evals=50)

    expected = brute_force_shapley(lm, ids, TARGETS, players, mask_id, "log_prob")
    assert torch.allclose(result.attributions[:, players], expected, atol=1e-5, rtol=0)
    assert_local_accuracy(result)


@pytest.mark.parametrize("model", MODELS)
def test_three_tokens_satisfy_local_accuracy(model: str) -> None:
    lm = MODELS[model]()
    ids = encode(lm, "Hi, you")[:3]
    result = shap_attribution(lm, ids, TARGETS, attributable=[True] * 3, max_evals=100)
    assert_local_accuracy(result)
    assert torch.allclose(result.f_input, reference_objective(lm, ids, TARGETS, "log_prob"), atol=1e-5, rtol=0)


def test_one_attributable_token_gets_its_whole_marginal_contribution() -> None:
    lm = tiny_lm()
    ids = encode(lm, SENTENCE)
    result = shap_attribution(lm, ids, TARGETS, attributable=[i == 4 for i in range(len(ids))], mask_token_id=9)
    expected = reference_objective(lm, ids, TARGETS, "log_prob") - reference_objective(
        lm, masked(ids, {4}, 9), TARGETS, "log_prob")
    assert torch.allclose(result.attributions[:, 4], expected, atol=1e-5, rtol=0)
    assert result.attributions[:, [i for i in range(len(ids)) if i != 4]].eq(0).all()
    assert result.evaluations == 2
    assert_local_accuracy(result)


@pytest.mark.parametrize("model", MODELS)
def test_non_attributable_tokens_are_never_masked_and_get_exactly_zero(model: str) -> None:
    lm = MODELS[model]()
    ids = encode(lm, LONG_SENTENCE)
    fixed = {0, 1, 2, 7, 8, len(ids) - 1}  # as a chat template's tokens would be
    mask_id = 3
    with recorded_forwards(lm) as seen:
        result = shap_attribution(lm, ids, TARGETS, attributable=[i not in fixed for i in range(len(ids))],
                                  mask_token_id=mask_id, max_evals=150, batch_size=16)

    rows = torch.cat(seen)
    assert rows.shape == (result.evaluations, len(ids) + len(TARGETS) - 1)
    original = torch.tensor([*ids, *TARGETS[:-1]])
    for i in sorted(fixed):
        assert rows[:, i].eq(original[i]).all(), f"non-attributable token {i} was masked"
    assert rows[:, len(ids):].eq(original[len(ids):]).all()  # the teacher-forced targets too
    attributable = [i for i in range(len(ids)) if i not in fixed]
    # Attributable tokens are either themselves or the mask token, and are masked somewhere.
    is_kept, is_masked = rows[:, attributable].eq(original[attributable]), rows[:, attributable].eq(mask_id)
    assert (is_kept | is_masked).all()
    assert is_masked.any(0).all()
    assert result.attributions[:, sorted(fixed)].eq(0).all()
    assert result.attributions[:, attributable].ne(0).any()
    assert_local_accuracy(result)


@pytest.mark.parametrize("model", MODELS)
def test_batched_evaluation_equals_one_row_at_a_time(model: str) -> None:
    lm = MODELS[model]()
    ids = encode(lm, SENTENCE)
    # A budget below full exploration (84 masked inputs here), where the explored coalitions
    # would change if the explainer's batches followed batch_size.
    runs = [shap_attribution(lm, ids, TARGETS, attributable=[True] * len(ids), max_evals=50, batch_size=b)
            for b in (1, 7, 32)]
    for other in runs[1:]:
        assert other.evaluations == runs[0].evaluations
        for field in ("attributions", "base_values", "f_input", "probability"):
            assert torch.allclose(getattr(other, field), getattr(runs[0], field), atol=1e-6, rtol=0), field


@pytest.mark.parametrize("model", MODELS)
def test_one_masked_forward_serves_every_target(model: str) -> None:
    lm = MODELS[model]()
    ids = encode(lm, "Hi, you.")
    budget = 2000  # enough to explore every coalition of the hierarchy, whatever the outputs
    forwards: dict[int, int] = {}
    results: dict[int, ShapResult] = {}
    for n_targets in (1, 3):
        with recorded_forwards(lm) as seen:
            results[n_targets] = shap_attribution(lm, ids, TARGETS[:n_targets], attributable=[True] * len(ids),
                                                  max_evals=budget, batch_size=8)
        forwards[n_targets] = len(seen)
    assert results[3].evaluations < budget  # fully explored, so the count cannot depend on the outputs
    assert forwards[3] == forwards[1]
    assert results[3].evaluations == results[1].evaluations
    # The first target's values do not change when others ride along.
    assert torch.allclose(results[3].attributions[:1], results[1].attributions, atol=1e-6, rtol=0)


def test_the_same_seed_gives_the_same_values_and_the_global_generator_is_left_alone() -> None:
    lm = tiny_lm()
    ids = encode(lm, LONG_SENTENCE)
    np.random.seed(123)
    expected_draw = np.random.random()
    np.random.seed(123)
    first = shap_attribution(lm, ids, TARGETS, attributable=[True] * len(ids), max_evals=80, seed=7)
    second = shap_attribution(lm, ids, TARGETS, attributable=[True] * len(ids), max_evals=80, seed=7)
    assert np.random.random() == expected_draw  # the caller's generator state was restored
    assert torch.equal(first.attributions, second.attributions)
    assert torch.equal(first.base_values, second.base_values)
    assert first.evaluations == second.evaluations


def test_progress_is_reported_after_each_forward_and_a_raising_callback_stops_the_work() -> None:
    lm = tiny_lm()
    ids = encode(lm, LONG_SENTENCE)
    calls: list[tuple[int, int]] = []
    result = shap_attribution(lm, ids, TARGETS, attributable=[True] * len(ids), max_evals=60, batch_size=16,
                              on_batch=lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == result.evaluations
    assert all(total == max(60, d) for d, total in calls)

    class StopError(Exception):
        pass

    def cancel(done: int, _total: int) -> None:
        if done > 10:
            raise StopError

    with pytest.raises(StopError):
        shap_attribution(lm, ids, TARGETS, attributable=[True] * len(ids), max_evals=60, on_batch=cancel)


@pytest.mark.parametrize(
    ("input_ids", "target_ids", "attributable", "kwargs", "message"),
    [
        ([], [1], [], {}, "input_ids is empty"),
        ([5, 6], [], [True, True], {}, "target_ids is empty"),
        ([5, 6], [1], [True], {}, "attributable has 1"),
        ([5, 6], [1], [False, False], {}, "no input token"),
        ([5, 6], [1], [True, True], {"objective": "odds"}, "unknown objective"),
        ([5, 10**6], [1], [True, True], {}, "outside the vocabulary"),
        ([5, 6], [1], [True, True], {"batch_size": 0}, "batch_size"),
        ([5, 6], [1], [True, True], {"max_evals": 1}, "max_evals"),
    ],
)
def test_invalid_inputs_are_refused(input_ids: list[int], target_ids: list[int], attributable: list[bool],
                                    kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shap_attribution(tiny_lm(), input_ids, target_ids, attributable=attributable, **kwargs)

"""Integrated Gradients: equal to a slow textbook loop, complete, batch-invariant, and honest about its error."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch

from engine.attribution.integrated_gradients import BaselineError, IGResult, auto_batch_size, integrated_gradients
from engine.loading import LoadedModel
from tests.fakes import tiny_gpt2_lm, tiny_lm

MODELS: dict[str, Callable[[], LoadedModel]] = {"llama": tiny_lm, "gpt2": tiny_gpt2_lm}
PROMPT = "The capital of France is"
CONTINUATION = " Paris."
EOS = 1  # a token baseline whose path is smooth on both tiny models
PAD = 0  # on the tiny Llama, the pad row is the zero vector: a near-jump at alpha ~ 0 (hard for fixed rules)


@pytest.fixture(params=list(MODELS))
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return MODELS[request.param]()


def encode(lm: LoadedModel, text: str) -> list[int]:
    return list(lm.tokenizer(text)["input_ids"])


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def completeness_error(result: IGResult) -> torch.Tensor:
    """``[n_targets]`` relative completeness error, computed here from the result's own figures."""
    change = result.f_input - result.f_baseline
    return (result.attributions.sum(-1) - change).abs() / change.abs()


def reference_ig(lm: LoadedModel, input_ids: list[int], target: int, attributable: list[bool], baseline: int,
                 n_steps: int) -> torch.Tensor:
    """Textbook IG: one plain forward and backward per alpha over full logits, trapezoid weights.

    Returns:
        ``[n_inputs]`` attributions of the next token ``target``.
    """
    embedding = lm.adapter.embedding(lm.model)
    x = embedding(torch.tensor(input_ids)).detach()
    b = embedding(torch.tensor([baseline])).detach().expand_as(x)
    moving = torch.tensor(attributable)[:, None]
    total = torch.zeros(len(input_ids), dtype=torch.float64)
    for step in range(n_steps + 1):
        alpha = step / n_steps
        embeds = torch.where(moving, b + alpha * (x - b), x).requires_grad_(True)
        logits = lm.model(inputs_embeds=embeds[None]).logits[0, -1]
        objective = torch.log_softmax(logits.float(), dim=-1)[target]
        (grad,) = torch.autograd.grad(objective, embeds)
        weight = 0.5 if step in (0, n_steps) else 1.0
        total += weight / n_steps * (grad * torch.where(moving, x - b, 0.0)).sum(-1).double()
    return total


def run(lm: LoadedModel, **overrides: Any) -> IGResult:
    """IG of the first continuation token (EOS baseline, every input attributable), with overrides."""
    input_ids = encode(lm, PROMPT)
    arguments: dict[str, Any] = {
        "target_ids": encode(lm, CONTINUATION)[:1],
        "attributable": [True] * len(input_ids),
        "baseline": EOS,
        **overrides,
    }
    return integrated_gradients(lm, input_ids, **arguments)


def test_many_trapezoid_steps_match_a_slow_textbook_reference(lm: LoadedModel) -> None:
    input_ids = encode(lm, PROMPT)
    target = encode(lm, CONTINUATION)[0]
    attributable = [i != 2 for i in range(len(input_ids))]  # one input held at its real embedding
    result = integrated_gradients(lm, input_ids, [target], attributable=attributable, baseline=EOS,
                                  rule="riemann_trapezoid", n_steps=256)
    reference = reference_ig(lm, input_ids, target, attributable, EOS, n_steps=256)
    assert result.attributions.dtype == torch.float64 and result.attributions.shape == (1, len(input_ids))
    assert relative_difference(result.attributions[0], reference) < 1e-4
    assert float(completeness_error(result)[0]) < 1e-4  # 256 steps: the integral itself, not a coarse sum
    with torch.no_grad():
        probs = torch.softmax(lm.model(torch.tensor([input_ids])).logits[0, -1].float(), -1)
    assert float(result.probability[0]) == pytest.approx(float(probs[target]), rel=1e-5)
    assert float(result.f_input[0]) == pytest.approx(float(probs[target].log()), rel=1e-5, abs=1e-6)


def test_completeness_error_shrinks_as_steps_grow(lm: LoadedModel) -> None:
    errors = [float(completeness_error(run(lm, baseline=PAD, rule="riemann_trapezoid", n_steps=n)).max())
              for n in (8, 64, 512)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("objective", ["logit", "log_prob", "prob"])
def test_every_objective_satisfies_completeness_with_many_steps(lm: LoadedModel, objective: str) -> None:
    result = run(lm, objective=objective, rule="riemann_trapezoid", n_steps=256)
    assert float(completeness_error(result).max()) < 1e-3


@pytest.mark.parametrize("rule", ["riemann_trapezoid", "gauss_legendre", "adaptive"])
def test_results_do_not_depend_on_the_internal_batch_size(lm: LoadedModel, rule: str) -> None:
    targets = encode(lm, CONTINUATION)[:3]
    results = [run(lm, target_ids=targets, baseline=PAD, rule=rule, n_steps=24, internal_batch_size=size)
               for size in (1, 3, 7, None)]
    for result in results[1:]:
        assert result.evaluations == results[0].evaluations
        assert relative_difference(result.attributions, results[0].attributions) < 1e-4


def test_multi_token_targets_equal_separate_runs_and_share_forward_passes(lm: LoadedModel) -> None:
    input_ids = encode(lm, PROMPT)
    targets = encode(lm, CONTINUATION)[:3]
    forwards = 0

    def count(*_: Any) -> None:
        nonlocal forwards
        forwards += 1

    hook = lm.model.base_model.register_forward_hook(count)
    try:
        joint = integrated_gradients(lm, input_ids, targets, attributable=[True] * len(input_ids), baseline=EOS,
                                     rule="riemann_trapezoid", n_steps=15, internal_batch_size=4)
        assert forwards == 4  # 16 alphas in chunks of 4, one forward each, whatever the number of targets
        forwards = 0
        for t, target in enumerate(targets):
            # Target t alone, with the earlier targets as context that is not attributed.
            alone = integrated_gradients(lm, input_ids + targets[:t], [target],
                                         attributable=[True] * len(input_ids) + [False] * t, baseline=EOS,
                                         rule="riemann_trapezoid", n_steps=15, internal_batch_size=4)
            assert torch.all(alone.attributions[0, len(input_ids):] == 0)
            assert relative_difference(joint.attributions[t], alone.attributions[0, : len(input_ids)]) < 1e-4
            assert float(joint.f_input[t]) == pytest.approx(float(alone.f_input[0]), rel=1e-5)
        assert forwards == 4 * len(targets)
    finally:
        hook.remove()


def test_adaptive_reaches_the_tolerance_within_budget_and_says_so(lm: LoadedModel) -> None:
    result = run(lm, target_ids=encode(lm, CONTINUATION)[:3], baseline=PAD, tolerance=0.01, max_evaluations=512)
    assert result.rule == "adaptive" and result.evaluations <= 512
    assert float(completeness_error(result).max()) <= 0.01
    assert torch.allclose(result.relative_error, completeness_error(result))
    assert result.attribution_change is not None
    assert result.attribution_change.shape == (3,) and torch.isfinite(result.attribution_change).all()


def test_adaptive_beats_a_uniform_grid_of_the_same_size_on_a_near_jump() -> None:
    lm = tiny_lm()  # pad = zero embedding under RMSNorm: the integrand spikes just after alpha = 0
    adaptive = run(lm, baseline=PAD, tolerance=0.01)
    uniform = run(lm, baseline=PAD, rule="riemann_trapezoid", n_steps=adaptive.evaluations - 1)
    assert float(completeness_error(adaptive)[0]) <= 0.01 < float(completeness_error(uniform)[0])


def test_adaptive_stops_at_a_tiny_budget_and_reports_the_error_it_has(lm: LoadedModel) -> None:
    result = run(lm, baseline=PAD, tolerance=1e-9, max_evaluations=5)
    assert result.evaluations == 5
    assert float(result.relative_error[0]) > 1e-9
    assert float(result.relative_error[0]) == pytest.approx(float(completeness_error(result)[0]))
    assert result.attribution_change is not None and torch.isfinite(result.attribution_change).all()


def test_zero_baseline_is_refused_on_rmsnorm_models_with_the_reason() -> None:
    with pytest.raises(BaselineError, match="RMSNorm"):
        run(tiny_lm(), baseline="zero")


def test_zero_baseline_works_on_layernorm_models() -> None:
    result = run(tiny_gpt2_lm(), baseline="zero", rule="riemann_trapezoid", n_steps=128)
    for tensor in (result.attributions, result.f_input, result.f_baseline, result.probability):
        assert torch.isfinite(tensor).all()
    assert float(completeness_error(result)[0]) < 1e-2


def test_non_attributable_inputs_get_exactly_zero(lm: LoadedModel) -> None:
    n_inputs = len(encode(lm, PROMPT))
    attributable = [i % 3 != 0 for i in range(n_inputs)]
    for rule in ("riemann_trapezoid", "gauss_legendre", "adaptive"):
        result = run(lm, target_ids=encode(lm, CONTINUATION)[:2], attributable=attributable, rule=rule, n_steps=16)
        held = torch.tensor([not a for a in attributable])
        assert torch.all(result.attributions[:, held] == 0)
        assert torch.all(result.attributions[:, ~held] != 0)


def test_a_nan_in_the_model_is_an_error_not_a_result() -> None:
    original = tiny_gpt2_lm()
    broken = LoadedModel(name="broken", source="test:broken", model=copy.deepcopy(original.model),
                         tokenizer=original.tokenizer, adapter=original.adapter)
    with torch.no_grad():
        broken.adapter.embedding(broken.model).weight[EOS] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        run(broken, rule="riemann_trapezoid", n_steps=4)


def test_a_raising_progress_callback_cancels_and_leaves_nothing_behind(lm: LoadedModel) -> None:
    calls: list[tuple[int, int]] = []

    def cancel_on_second_chunk(done: int, budget: int) -> None:
        calls.append((done, budget))
        if len(calls) == 2:
            raise InterruptedError("canceled")

    with pytest.raises(InterruptedError):
        run(lm, rule="riemann_trapezoid", n_steps=11, internal_batch_size=4, on_chunk=cancel_on_second_chunk)
    assert calls == [(4, 12), (8, 12)]
    again = run(lm, rule="riemann_trapezoid", n_steps=11, internal_batch_size=4)
    fresh = run(lm, rule="riemann_trapezoid", n_steps=11, internal_batch_size=12)
    assert relative_difference(again.attributions, fresh.attributions) < 1e-4
    assert not any(p.requires_grad for p in lm.model.parameters())


def test_it_works_when_the_caller_is_in_inference_mode(lm: LoadedModel) -> None:
    expected = run(lm, rule="riemann_trapezoid", n_steps=8)
    with torch.inference_mode():
        result = run(lm, rule="riemann_trapezoid", n_steps=8)
    assert relative_difference(result.attributions, expected.attributions) < 1e-6


def test_the_automatic_batch_size_shrinks_with_the_sequence_and_stays_in_bounds(lm: LoadedModel) -> None:
    sizes = [auto_batch_size(lm, seq_len, 1, budget_bytes=2**20) for seq_len in (4, 32, 128)]
    assert sizes[0] >= sizes[1] >= sizes[2] >= 1 and sizes[0] <= 64
    assert auto_batch_size(lm, 10_000, 1, budget_bytes=1) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target_ids": []}, "target_ids is empty"),
        ({"attributable": [True]}, "attributable has 1 entries"),
        ({"attributable": [False] * 12}, "no input is attributable"),
        ({"baseline": 10**6}, "outside the vocabulary"),
    ],
)
def test_invalid_arguments_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(tiny_gpt2_lm(), **overrides)


def test_an_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="input_ids is empty"):
        integrated_gradients(tiny_gpt2_lm(), [], [5], attributable=[], baseline=EOS)

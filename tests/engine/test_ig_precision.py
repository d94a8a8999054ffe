"""Integrated Gradients on a model stored in bfloat16: float32 arithmetic by default, the resident model untouched."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from engine.attribution.compute_weights import ComputeWeights
from engine.attribution.integrated_gradients import IGResult, integrated_gradients
from engine.loading import LoadedModel
from tests.fakes import tiny_gpt2_lm, tiny_lm

MODELS: dict[str, Callable[[], LoadedModel]] = {"llama": tiny_lm, "gpt2": tiny_gpt2_lm}
EOS = 1


def stored_in(lm: LoadedModel, dtype: torch.dtype) -> LoadedModel:
    """A deep copy of ``lm`` with its weights stored in ``dtype``."""
    return LoadedModel(name=lm.name, source=lm.source, model=copy.deepcopy(lm.model).to(dtype),
                       tokenizer=lm.tokenizer, adapter=lm.adapter)


def explain(lm: LoadedModel, **kwargs: object) -> IGResult:
    input_ids = list(lm.tokenizer("The capital of France is")["input_ids"])
    return integrated_gradients(lm, input_ids, [5, 9], attributable=[True] * len(input_ids), baseline=EOS,
                                rule="riemann_trapezoid", n_steps=64, **kwargs)  # type: ignore[arg-type]


def hook_counts(model: torch.nn.Module) -> list[tuple[int, int]]:
    return [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]


@pytest.fixture(params=list(MODELS))
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return MODELS[request.param]()


def test_a_bfloat16_model_is_explained_in_float32_exactly_as_its_weights_upcast(lm: LoadedModel) -> None:
    served = stored_in(lm, torch.bfloat16)
    # The independent reference: the same bfloat16 weights, stored as float32.
    upcast = stored_in(served, torch.float32)
    ours, reference = explain(served), explain(upcast)
    assert ours.compute_dtype == torch.float32
    torch.testing.assert_close(ours.attributions, reference.attributions, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ours.f_input, reference.f_input, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.f_baseline, reference.f_baseline, rtol=1e-6, atol=1e-7)


def test_explaining_leaves_the_resident_model_in_its_own_dtype_without_hooks(lm: LoadedModel) -> None:
    served = stored_in(lm, torch.bfloat16)
    before = {name: p.clone() for name, p in served.model.named_parameters()}
    hooks_before = hook_counts(served.model)  # other tests' runtimes may have left theirs on the shared model
    explain(served)
    for name, p in served.model.named_parameters():
        assert p.dtype == torch.bfloat16, name
        assert torch.equal(p, before[name]), name
    assert hook_counts(served.model) == hooks_before


def test_the_model_dtype_can_be_asked_for_and_is_reported(lm: LoadedModel) -> None:
    served = stored_in(lm, torch.bfloat16)
    result = explain(served, compute_dtype=None)
    assert result.compute_dtype == torch.bfloat16
    assert torch.isfinite(result.attributions).all()
    # bfloat16 arithmetic differs from the float32 answer (it is what the option costs).
    assert not torch.allclose(result.attributions, explain(served).attributions, rtol=1e-4, atol=1e-6)


def test_a_float32_model_needs_no_copy(lm: LoadedModel) -> None:
    weights = ComputeWeights(torch.float32).add(lm.model)
    assert weights.nbytes == 0


def test_tied_weights_are_copied_once_and_calls_match_an_upcast_module() -> None:
    first, second = torch.nn.Linear(4, 3).bfloat16(), torch.nn.Linear(4, 3).bfloat16()
    second.weight = first.weight  # tied, as an LM head and its input embedding often are
    weights = ComputeWeights(torch.float32).add(first).add(second)
    assert weights.nbytes == 4 * (12 + 3 + 3)  # one weight, two biases
    x = torch.randn(2, 4)
    expected = torch.nn.functional.linear(x, second.weight.float(), second.bias.float())
    torch.testing.assert_close(weights.call(second, x), expected)
    assert second.weight.dtype == torch.bfloat16


def test_a_module_that_was_not_added_is_refused() -> None:
    with pytest.raises(KeyError):
        ComputeWeights(torch.float32).call(torch.nn.Linear(2, 2), torch.zeros(1, 2))

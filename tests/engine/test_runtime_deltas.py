"""Weight deltas served through the runtime's module hooks equal a merged copy of the weights."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
import torch

from engine.adapters import linear_dims
from engine.components import Component, LowRankDelta
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.runtime import InterventionRuntime, editable_modules
from tests.fakes import tiny_gpt2_lm, tiny_lm

FAMILIES: dict[str, Callable[[], LoadedModel]] = {"llama": tiny_lm, "gpt2": tiny_gpt2_lm}
PROMPTS = ["The capital of France is", "One, two, three,", "Hi", "The quick brown fox jumps over the lazy"]


@pytest.fixture(params=sorted(FAMILIES))
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return FAMILIES[request.param]()


@pytest.fixture
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


def random_delta(lm: LoadedModel, layer: int, seed: int, rank: int = 2, scale: float = 0.5) -> LowRankDelta:
    name = list(editable_modules(lm))[layer]
    n_in, n_out = linear_dims(editable_modules(lm)[name])
    g = torch.Generator().manual_seed(seed)
    return LowRankDelta(name, scale * torch.randn(rank, n_in, generator=g), torch.randn(n_out, rank, generator=g))


def merged_copy(lm: LoadedModel, deltas: list[LowRankDelta]) -> LoadedModel:
    """The independent reference: a deep copy whose weights have ``B A`` added (Conv1D stores ``W`` transposed)."""
    model = copy.deepcopy(lm.model)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for delta in deltas:
            weight = modules[delta.module].weight
            update = delta.b @ delta.a  # [out, in]
            weight += update if weight.shape == update.shape else update.T
    return LoadedModel(lm.name, lm.source, model, lm.tokenizer, lm.adapter)


def ids_of(lm: LoadedModel, text: str) -> list[int]:
    return list(lm.tokenizer(text)["input_ids"])


def test_the_editable_modules_are_each_blocks_mlp_output_projection(lm: LoadedModel) -> None:
    names = list(editable_modules(lm))
    assert len(names) == lm.n_layers
    assert all(n.endswith(("mlp.down_proj", "mlp.c_proj")) for n in names)


def test_a_served_delta_equals_the_merged_weights(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    deltas = [random_delta(lm, 0, 1), random_delta(lm, 1, 2), random_delta(lm, 1, 3, rank=1)]
    ids = torch.tensor([ids_of(lm, PROMPTS[3])])
    with torch.no_grad():
        base = lm.model(input_ids=ids).logits
        with runtime.active(PassPlan.of_variant(deltas)):
            served = lm.model(input_ids=ids).logits
        merged = merged_copy(lm, deltas).model(input_ids=ids).logits
    assert torch.allclose(served, merged, atol=1e-4)
    assert not torch.allclose(served, base, atol=1e-2)  # the delta really changes the model


def test_greedy_generation_on_an_edited_variant_equals_the_merged_copy(lm: LoadedModel,
                                                                        runtime: InterventionRuntime) -> None:
    deltas = [random_delta(lm, 0, 4, scale=2.0)]
    reference = merged_copy(lm, deltas)
    prompt = ids_of(lm, PROMPTS[0])
    row = GenerationRow(prompt, SamplingParams(max_new_tokens=8), variant=list(deltas))
    served = generate_batch(lm, [row], runtime)[0].token_ids
    with InterventionRuntime(reference).installed() as plain:
        expected = generate_batch(reference, [GenerationRow(prompt, SamplingParams(max_new_tokens=8))], plain)[0]
    assert served == expected.token_ids


def test_rows_on_different_edited_variants_share_a_batch(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    variants: list[list[Component]] = [[], [random_delta(lm, 0, 5, scale=2.0)], [random_delta(lm, 1, 6, scale=2.0)]]
    rows = [GenerationRow(ids_of(lm, PROMPTS[i % len(PROMPTS)]), SamplingParams(max_new_tokens=4),
                          variant=variants[i % len(variants)]) for i in range(9)]
    batched = generate_batch(lm, rows, runtime)
    alone = [generate_batch(lm, [row], runtime)[0] for row in rows]
    assert [b.token_ids for b in batched] == [a.token_ids for a in alone]


def test_a_delta_of_the_wrong_shape_or_module_is_refused_before_the_pass(lm: LoadedModel,
                                                                         runtime: InterventionRuntime) -> None:
    good = random_delta(lm, 0, 7)
    wrong_shape = LowRankDelta(good.module, torch.zeros(1, good.a.shape[1] + 1), torch.zeros(good.b.shape[0], 1))
    with pytest.raises(ValueError, match="maps"), runtime.active(PassPlan.of_variant([wrong_shape])):
        pass
    elsewhere = LowRankDelta("lm_head", torch.zeros(1, 4), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"module\.lm_head"), runtime.active(PassPlan.of_variant([elsewhere])):
        pass


def test_the_hooks_leave_the_base_model_alone_without_a_plan(lm: LoadedModel) -> None:
    ids = torch.tensor([ids_of(lm, PROMPTS[1])])
    with torch.no_grad():
        before = lm.model(input_ids=ids).logits
        with InterventionRuntime(lm).installed() as runtime:
            during = lm.model(input_ids=ids).logits
            hooks = runtime.hook_count
    assert torch.equal(before, during)
    assert hooks == 2 * lm.n_layers

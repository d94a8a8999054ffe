"""Variants through the intervention runtime: per row, in order, under the KV cache, beside steering."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import pytest
import torch
from concept_erasure import LeaceEraser

from engine.components import AffineEraser, Component, LowRankDelta
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan, Steering, SteeringTable, VariantTable
from engine.runtime import InterventionRuntime
from engine.scoring import score_batch
from tests.fakes import tiny_gpt2_lm, tiny_lm

FAMILIES: dict[str, Callable[[], LoadedModel]] = {"llama": tiny_lm, "gpt2": tiny_gpt2_lm}
PROMPTS = ["The capital of France is", "One, two, three,", "Hi", "The quick brown fox jumps over the lazy",
           "Interpretability asks what", "Transformers are"]


@pytest.fixture(params=sorted(FAMILIES))
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return FAMILIES[request.param]()


@pytest.fixture
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


def random_eraser(lm: LoadedModel, layer: int, seed: int, rank: int = 2, scale: float = 1.0) -> AffineEraser:
    """An affine map of the eraser's form that visibly changes the model (not a fitted one)."""
    g = torch.Generator().manual_seed(seed)
    d = lm.hidden_size
    return AffineEraser(layer, scale * torch.randn(d, rank, generator=g), torch.randn(rank, d, generator=g) / d**0.5,
                        torch.randn(d, generator=g))


@contextmanager
def reference_hooks(lm: LoadedModel, components: Sequence[AffineEraser]) -> Iterator[None]:
    """The independent reference: plain hooks that apply each eraser with the concept-erasure package."""
    blocks = lm.adapter.blocks(lm.model)
    with ExitStack() as stack:
        for eraser in components:
            package = LeaceEraser(eraser.proj_left, eraser.proj_right, eraser.bias)

            def hook(module: torch.nn.Module, args: object, output: object, package: LeaceEraser = package) -> object:
                hidden = output[0] if isinstance(output, tuple) else output
                erased = package(hidden)
                return (erased, *output[1:]) if isinstance(output, tuple) else erased

            handle = blocks[eraser.layer].register_forward_hook(hook)
            stack.callback(handle.remove)
        yield


def encode(lm: LoadedModel, text: str) -> list[int]:
    return list(lm.tokenizer(text)["input_ids"])


def greedy_recompute(lm: LoadedModel, prompt: list[int], n: int, components: Sequence[AffineEraser]) -> list[int]:
    """Greedy tokens without a KV cache, every step recomputed under the reference hooks."""
    ids = list(prompt)
    with torch.no_grad(), reference_hooks(lm, components):
        for _ in range(n):
            ids.append(int(lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt):]


def test_a_variant_under_the_kv_cache_equals_recomputing_with_plain_hooks(lm: LoadedModel,
                                                                          runtime: InterventionRuntime) -> None:
    variant = [random_eraser(lm, 0, 1, scale=3.0), random_eraser(lm, 1, 2, scale=3.0)]
    prompt = encode(lm, PROMPTS[0])
    out = generate_batch(lm, [GenerationRow(prompt, SamplingParams(max_new_tokens=8), variant=variant)], runtime)[0]
    plain = generate_batch(lm, [GenerationRow(prompt, SamplingParams(max_new_tokens=8))], runtime)[0]
    assert out.token_ids == greedy_recompute(lm, prompt, len(out.token_ids), variant)
    assert out.token_ids != plain.token_ids  # the variant really changes the model


def test_rows_on_different_variants_share_a_batch_and_each_equals_itself_alone(lm: LoadedModel,
                                                                               runtime: InterventionRuntime) -> None:
    variants: list[list[Component]] = [[], [random_eraser(lm, 0, 3, scale=3.0)], [random_eraser(lm, 1, 4, scale=3.0)],
                                       [random_eraser(lm, 0, 5, scale=3.0), random_eraser(lm, 1, 6, scale=3.0)]]
    rows = [GenerationRow(encode(lm, PROMPTS[i % len(PROMPTS)]), SamplingParams(max_new_tokens=3 + i % 4),
                          steering=[Steering(1, torch.randn(lm.hidden_size), 2.0)] if i % 5 == 0 else [],
                          variant=variants[i % len(variants)]) for i in range(12)]
    batched = generate_batch(lm, rows, runtime)
    alone = [generate_batch(lm, [row], runtime)[0] for row in rows]
    assert [b.token_ids for b in batched] == [a.token_ids for a in alone]
    assert len({tuple(b.token_ids) for b in batched}) > 4


def test_rows_without_a_variant_are_left_exactly_as_the_base_model_computes_them(lm: LoadedModel,
                                                                                  runtime: InterventionRuntime) -> None:
    ids = torch.tensor([encode(lm, PROMPTS[1])] * 3)
    table = VariantTable.build([[], [random_eraser(lm, 0, 7, scale=3.0)], []], device=lm.device)
    none = torch.zeros_like(ids, dtype=torch.bool)
    with torch.no_grad():
        base = lm.model(input_ids=ids).logits
        with runtime.active(PassPlan(SteeringTable(additions={}), none, none, table)):
            mixed = lm.model(input_ids=ids).logits
    assert torch.equal(mixed[0], base[0]) and torch.equal(mixed[2], base[2])
    assert not torch.allclose(mixed[1], base[1], atol=1e-3)


def test_components_at_one_site_apply_in_the_variants_order(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    first, second = random_eraser(lm, 1, 8, scale=3.0), random_eraser(lm, 1, 9, scale=3.0)
    ids = torch.tensor([encode(lm, PROMPTS[3])])
    with torch.no_grad():
        with runtime.active(PassPlan.of_variant([first, second])):
            served = lm.model(input_ids=ids).logits
        with reference_hooks(lm, [first, second]):
            in_order = lm.model(input_ids=ids).logits
        with reference_hooks(lm, [second, first]):
            reversed_order = lm.model(input_ids=ids).logits
    assert torch.allclose(served, in_order, atol=1e-5)
    assert not torch.allclose(served, reversed_order, atol=1e-3)


def test_a_variant_plan_serves_any_batch_shape_for_a_job(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    variant = [random_eraser(lm, 0, 10, scale=3.0)]
    batch = [encode(lm, p) for p in PROMPTS]
    with runtime.active(PassPlan.of_variant(variant)):
        served = score_batch(lm, batch)
    with reference_hooks(lm, variant):
        expected = score_batch(lm, batch)
    for a, b in zip(served, expected, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_steering_acts_on_the_variant_after_its_eraser(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    eraser, vector = random_eraser(lm, 1, 11, scale=3.0), 5.0 * torch.randn(lm.hidden_size)
    ids = torch.tensor([encode(lm, PROMPTS[0])])
    table = VariantTable.uniform([eraser])
    steering = SteeringTable.build([[Steering(1, vector, 1.0)]], hidden=lm.hidden_size, dtype=lm.dtype,
                                   device=lm.device)
    every = torch.ones_like(ids, dtype=torch.bool)

    def erase_then_add(module: torch.nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        return LeaceEraser(eraser.proj_left, eraser.proj_right, eraser.bias)(output) + vector

    with torch.no_grad():
        with runtime.active(PassPlan(steering, every, ~every, table)):
            served = lm.model(input_ids=ids).logits
        handle = lm.adapter.blocks(lm.model)[1].register_forward_hook(erase_then_add)
        try:
            expected = lm.model(input_ids=ids).logits
        finally:
            handle.remove()
    assert torch.allclose(served, expected, atol=1e-5)


def test_an_eraser_keeps_a_half_precision_stream_in_its_dtype_and_computes_in_float32() -> None:
    lm = tiny_lm()
    eraser = random_eraser(lm, 0, 12, scale=3.0)
    x = torch.randn(2, 5, lm.hidden_size)
    for dtype in (torch.float16, torch.bfloat16):
        out = eraser.erase(x.to(dtype))
        assert out.dtype == dtype
        exact = LeaceEraser(eraser.proj_left.double(), eraser.proj_right.double(), eraser.bias.double())(
            x.to(dtype).double())
        assert torch.allclose(out.double(), exact, rtol=1e-2, atol=1e-2)


def test_a_low_rank_delta_is_the_merged_weights_output() -> None:
    # The editing issue serves these through module hooks; the component already computes W x + B (A x).
    g = torch.Generator().manual_seed(13)
    linear = torch.nn.Linear(6, 4)
    delta = LowRankDelta("mlp.down_proj", torch.randn(1, 6, generator=g), torch.randn(4, 1, generator=g))
    x = torch.randn(3, 6, generator=g)
    merged = torch.nn.functional.linear(x, linear.weight + delta.b @ delta.a, linear.bias)
    with torch.no_grad():
        assert torch.allclose(delta.apply(linear(x), x), merged, atol=1e-5)
    assert delta.site == "module.mlp.down_proj" and delta.rank == 1


def test_a_component_at_a_site_without_a_hook_is_refused_not_silently_skipped(lm: LoadedModel,
                                                                            runtime: InterventionRuntime) -> None:
    delta = LowRankDelta("model.layers.0.mlp.up_proj", torch.zeros(1, 4), torch.zeros(lm.hidden_size, 1))
    with pytest.raises(ValueError, match=r"module\.model\.layers\.0\.mlp\.up_proj"), \
            runtime.active(PassPlan.of_variant([random_eraser(lm, 0, 14), delta])):
        pass
    with pytest.raises(ValueError, match=r"block\.9"), runtime.active(PassPlan.of_variant([random_eraser(lm, 9, 15)])):
        pass
    with runtime.active(PassPlan.of_variant([])):  # the refusals took no lock
        pass

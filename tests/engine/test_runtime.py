"""The intervention runtime: per-row steering, isolated, batched, correct under the KV cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch

from engine.generation import GenerationRow, SamplingParams, generate, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan, Positions, Steering, SteeringTable
from engine.runtime import InterventionRuntime
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


def encode(lm: LoadedModel, text: str) -> list[int]:
    return list(lm.tokenizer(text)["input_ids"])


def random_vector(lm: LoadedModel, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(lm.hidden_size, generator=torch.Generator().manual_seed(seed))


@contextmanager
def manual_hook(lm: LoadedModel, layer: int, vector: torch.Tensor, alpha: float, positions: slice) -> Iterator[None]:
    """The textbook way, as an independent reference: a hook that adds at fixed positions."""

    def hook(module: torch.nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        out = output.clone()
        out[:, positions] += alpha * vector
        return out

    handle = lm.adapter.blocks(lm.model)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def greedy_full_recompute(lm: LoadedModel, prompt: list[int], n: int, layer: int, vector: torch.Tensor,
                          alpha: float, kind: Positions) -> list[int]:
    """Reference without a KV cache: every step recomputes the whole sequence with the hook."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            where = {"all": slice(None), "prompt": slice(0, len(prompt)), "generated": slice(len(prompt), None)}[kind]
            with manual_hook(lm, layer, vector, alpha, where):
                ids.append(int(lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("kind", ["all", "prompt", "generated"])
def test_steering_under_the_kv_cache_equals_recomputing_with_a_plain_hook(
    lm: LoadedModel, runtime: InterventionRuntime, kind: Positions
) -> None:
    prompt, vector = encode(lm, PROMPTS[0]), random_vector(lm, 0)
    out = generate(lm, prompt, SamplingParams(max_new_tokens=8), runtime=runtime,
                   steering=[Steering(layer=1, vector=vector, alpha=4.0, positions=kind)])
    assert out.token_ids == greedy_full_recompute(lm, prompt, len(out.token_ids), 1, vector, 4.0, kind)


def test_steering_changes_the_output_and_alpha_zero_does_not(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    prompt, params = encode(lm, PROMPTS[0]), SamplingParams(max_new_tokens=8)
    plain = generate(lm, prompt, params).token_ids
    zero = generate(lm, prompt, params, runtime=runtime,
                    steering=[Steering(layer=0, vector=random_vector(lm, 1), alpha=0.0)]).token_ids
    strong = generate(lm, prompt, params, runtime=runtime,
                      steering=[Steering(layer=0, vector=random_vector(lm, 1), alpha=50.0)]).token_ids
    assert zero == plain
    assert strong != plain


def test_a_row_alone_and_inside_a_batch_of_16_with_other_vectors_gives_the_same_tokens(
    lm: LoadedModel, runtime: InterventionRuntime
) -> None:
    rows = []
    for i in range(16):
        kind: Positions = ("all", "prompt", "generated")[i % 3]
        steering = [] if i % 4 == 0 else [Steering(i % 2, random_vector(lm, i), float(i % 5), kind)]
        rows.append(GenerationRow(encode(lm, PROMPTS[i % len(PROMPTS)]), SamplingParams(max_new_tokens=4 + i % 5),
                                  steering))
    batched = generate_batch(lm, rows, runtime)
    alone = [generate_batch(lm, [row], runtime)[0] for row in rows]
    assert [b.token_ids for b in batched] == [a.token_ids for a in alone]
    assert len({tuple(b.token_ids) for b in batched}) > 4  # the rows really differ


def test_seeded_sampling_in_a_batch_matches_the_same_row_alone(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    rows = [GenerationRow(encode(lm, p), SamplingParams(max_new_tokens=6, temperature=1.0, seed=i)) for i, p in
            enumerate(PROMPTS)]
    assert [o.token_ids for o in generate_batch(lm, rows, runtime)] == [
        generate_batch(lm, [r], runtime)[0].token_ids for r in rows]


def test_a_pass_that_raises_leaves_no_plan_and_no_extra_hook(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    hooks_before = runtime.hook_count
    blocks = lm.adapter.blocks(lm.model)
    registered_before = sum(len(b._forward_hooks) for b in blocks)
    table = SteeringTable.build([[Steering(0, random_vector(lm, 3), 100.0)]], hidden=lm.hidden_size,
                                dtype=lm.dtype, device=lm.device)
    ids = torch.tensor([encode(lm, PROMPTS[0])])
    plan = PassPlan(table, torch.ones_like(ids, dtype=torch.bool), torch.zeros_like(ids, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="boom"), runtime.active(plan):
        raise RuntimeError("boom")
    assert runtime.hook_count == hooks_before
    assert sum(len(b._forward_hooks) for b in blocks) == registered_before
    # The next pass, with no plan, is the plain model: the failed request left nothing behind.
    prompt = encode(lm, PROMPTS[0])
    assert generate(lm, prompt, SamplingParams(max_new_tokens=5), runtime=runtime).token_ids == \
        greedy_full_recompute(lm, prompt, 5, 0, torch.zeros(lm.hidden_size), 0.0, "all")


def test_uninstalling_removes_every_hook(lm: LoadedModel) -> None:
    modules = list(lm.model.modules())
    before = sum(len(m._forward_hooks) for m in modules)
    with InterventionRuntime(lm).installed() as runtime:
        # One hook per block output and one per block's MLP output projection (the editable module).
        assert runtime.hook_count == 2 * lm.n_layers
        assert sum(len(m._forward_hooks) for m in modules) == before + 2 * lm.n_layers
    assert sum(len(m._forward_hooks) for m in modules) == before


def test_two_passes_cannot_share_one_runtime_at_once(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    table = SteeringTable.build([[]], hidden=lm.hidden_size, dtype=lm.dtype, device=lm.device)
    mask = torch.ones((1, 1), dtype=torch.bool)
    plan = PassPlan(table, mask, ~mask)
    with runtime.active(plan), pytest.raises(RuntimeError, match="in flight"), runtime.active(plan):
        pass


def test_a_vector_of_the_wrong_size_is_refused(lm: LoadedModel) -> None:
    with pytest.raises(ValueError, match="shape"):
        SteeringTable.build([[Steering(0, torch.zeros(lm.hidden_size + 1), 1.0)]], hidden=lm.hidden_size,
                            dtype=lm.dtype, device=lm.device)

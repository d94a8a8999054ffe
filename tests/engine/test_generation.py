"""Generation: our KV-cached loop agrees with a plain full-recompute loop and honours its params."""

from __future__ import annotations

import pytest
import torch

from engine.generation import SamplingParams, generate
from engine.prompts import EmptyPromptError, PromptTooLongError, encode_prompt
from tests.fakes import tiny_lm


def greedy_without_cache(prompt_ids: list[int], n: int) -> list[int]:
    """Reference: recompute the whole sequence for every token, take the argmax."""
    lm = tiny_lm()
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt_ids):]


def prompt() -> list[int]:
    return encode_prompt(tiny_lm().tokenizer, prompt="The capital of France is", max_tokens=64)


def test_greedy_generation_with_the_kv_cache_equals_recomputing_everything() -> None:
    out = generate(tiny_lm(), prompt(), SamplingParams(max_new_tokens=12))
    expected = greedy_without_cache(prompt(), len(out.token_ids))
    assert out.token_ids == expected
    assert out.finish_reason == ("stop" if len(out.token_ids) < 12 else "length")


def test_sampling_with_a_seed_is_reproducible_and_different_seeds_differ() -> None:
    def params(seed: int) -> SamplingParams:
        return SamplingParams(max_new_tokens=16, temperature=1.5, seed=seed)

    first = generate(tiny_lm(), prompt(), params(7)).token_ids
    again = generate(tiny_lm(), prompt(), params(7)).token_ids
    others = {tuple(generate(tiny_lm(), prompt(), params(s)).token_ids) for s in range(5)}
    assert first == again
    assert len(others) > 1


def test_top_p_near_zero_is_greedy() -> None:
    greedy = generate(tiny_lm(), prompt(), SamplingParams(max_new_tokens=8)).token_ids
    nucleus = generate(tiny_lm(), prompt(), SamplingParams(max_new_tokens=8, temperature=1.0, top_p=1e-6, seed=3))
    assert nucleus.token_ids == greedy


def test_generation_stops_at_a_stop_token_and_includes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    greedy = generate(tiny_lm(), prompt(), SamplingParams(max_new_tokens=8)).token_ids
    stop = greedy[2]
    first_stop = greedy.index(stop)  # the stop may also occur earlier in the greedy run
    monkeypatch.setattr("engine.generation.stop_token_ids", lambda lm: {stop})
    out = generate(tiny_lm(), prompt(), SamplingParams(max_new_tokens=8))
    assert out.token_ids == greedy[: first_stop + 1]
    assert out.finish_reason == "stop"


def test_the_tokenizers_eos_is_a_stop_token() -> None:
    from engine.generation import stop_token_ids

    assert tiny_lm().tokenizer.eos_token_id in stop_token_ids(tiny_lm())


def test_prompts_over_the_token_limit_and_empty_prompts_are_refused() -> None:
    tokenizer = tiny_lm().tokenizer
    with pytest.raises(PromptTooLongError) as info:
        encode_prompt(tokenizer, prompt="word " * 100, max_tokens=10)
    assert info.value.limit == 10 and info.value.n_tokens > 10
    with pytest.raises(EmptyPromptError):
        encode_prompt(tokenizer, prompt="", max_tokens=10)

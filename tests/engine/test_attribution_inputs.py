"""Attribution inputs: what is attributable, which token is the target, words keep sums."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.attribution.inputs import (
    aggregate,
    baseline_id,
    prepare_input,
    resolve_continuation,
    resolve_next_token,
    token_units,
    word_units,
)
from engine.loading import LoadedModel
from tests.fakes import tiny_gpt2_lm, tiny_lm

TEMPLATE = ("{% for m in messages %}<|pad|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}")


def chat_lm() -> LoadedModel:
    lm = copy.copy(tiny_lm())
    tokenizer = copy.deepcopy(lm.tokenizer)
    tokenizer.chat_template = TEMPLATE
    lm.tokenizer = tokenizer
    return lm


def test_every_token_of_a_plain_prompt_is_attributable_with_its_character_span() -> None:
    text = "The capital of France is"
    prepared = prepare_input(tiny_lm().tokenizer, prompt=text, max_tokens=64)
    assert all(prepared.attributable)
    assert "".join(text[a:b] for a, b in prepared.offsets) == text


def test_only_message_contents_are_attributable_in_a_chat_prompt() -> None:
    lm = chat_lm()
    messages = [{"role": "user", "content": "The quick brown fox"}]
    prepared = prepare_input(lm.tokenizer, messages=messages, max_tokens=128)
    attributed = "".join(prepared.text[a:b] for (a, b), ok in zip(prepared.offsets, prepared.attributable,
                                                                   strict=True) if ok)
    assert attributed == "The quick brown fox"
    assert not all(prepared.attributable)  # template and role tokens are not


def test_a_prompt_without_attributable_tokens_or_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        prepare_input(tiny_lm().tokenizer, prompt="word " * 50, max_tokens=5)
    with pytest.raises(ValueError):
        prepare_input(tiny_lm().tokenizer, prompt="", max_tokens=5)


def test_the_default_target_is_the_models_top_prediction() -> None:
    lm = tiny_lm()
    ids = list(lm.tokenizer("The capital of France is")["input_ids"])
    with torch.no_grad():
        top = int(lm.model(torch.tensor([ids])).logits[0, -1].argmax())
    assert resolve_next_token(lm, ids, None) == top
    assert resolve_next_token(lm, ids, 7) == 7
    with pytest.raises(ValueError, match="tokens"):
        resolve_next_token(lm, ids, "The capital of")
    assert resolve_continuation(lm, " Paris.") == list(lm.tokenizer(" Paris.", add_special_tokens=False)["input_ids"])


def test_words_sum_token_attributions_and_keep_each_targets_total() -> None:
    lm = tiny_lm()
    prepared = prepare_input(lm.tokenizer, prompt="Interpretability asks what a model computes.", max_tokens=64)
    tokens, words = token_units(lm, prepared), word_units(lm, prepared)
    assert len(words) < len(tokens)
    assert [w.text for w in words] == ["Interpretability", " asks", " what", " a", " model", " computes."]
    matrix = torch.randn(2, len(tokens), dtype=torch.float64)
    summed = aggregate(matrix, words)
    assert torch.allclose(summed.sum(-1), matrix.sum(-1))


def test_the_zero_baseline_is_refused_on_rmsnorm_models_and_allowed_on_layernorm_ones() -> None:
    with pytest.raises(ValueError, match="RMSNorm"):
        baseline_id(tiny_lm(), "zero")
    assert baseline_id(tiny_gpt2_lm(), "zero") == "zero"
    assert baseline_id(tiny_lm(), "pad") == tiny_lm().tokenizer.pad_token_id
    with pytest.raises(ValueError, match="no mask token"):
        baseline_id(tiny_lm(), "mask")

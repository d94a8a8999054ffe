"""Turning a request's prompt or chat messages into token ids, within the token limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from transformers import PreTrainedTokenizerBase


class PromptTooLongError(ValueError):
    """The prompt has more tokens than the configured limit allows."""

    def __init__(self, n_tokens: int, limit: int) -> None:
        super().__init__(f"the prompt has {n_tokens} tokens; the limit is {limit}")
        self.n_tokens = n_tokens
        self.limit = limit


class EmptyPromptError(ValueError):
    """The prompt encodes to no tokens at all, so there is nothing to condition on."""


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    *,
    prompt: str | None = None,
    messages: Sequence[dict[str, str]] | None = None,
    max_tokens: int,
) -> list[int]:
    """Encode a raw prompt, or chat messages through the model's chat template.

    Args:
        tokenizer: the model's tokenizer.
        prompt: raw text, encoded as is (plus whatever special tokens the tokenizer adds).
        messages: ``[{"role": ..., "content": ...}]``; the generation prompt is appended.
        max_tokens: the limit; longer prompts raise `PromptTooLongError`.

    Returns:
        Token ids, ``[n_tokens]``.
    """
    if messages is not None:
        if tokenizer.chat_template is None:
            raise ValueError("this model has no chat template; send a plain prompt instead")
        encoded = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=True
        )
        ids = list(cast(dict[str, Any], encoded)["input_ids"])
    else:
        ids = list(tokenizer(prompt or "")["input_ids"])
    if not ids:
        raise EmptyPromptError("the prompt encodes to no tokens")
    if len(ids) > max_tokens:
        raise PromptTooLongError(len(ids), max_tokens)
    return ids


def decode(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
    """Decode token ids to text (typed: ``decode`` of a list always returns one string)."""
    text = tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
    assert isinstance(text, str)
    return text

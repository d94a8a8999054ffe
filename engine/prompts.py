"""Turning a request's prompt or chat messages into token ids, within the token limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from transformers import PreTrainedTokenizerBase

from engine.loading import LoadedModel


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


def vocabulary_size(lm: LoadedModel) -> int:
    """How many token ids the model has real tokens for: the tokenizer's vocabulary, within the embedding
    matrix (which may be padded beyond it, with rows no tokenizer ever produces)."""
    return min(int(lm.model.config.vocab_size), int(lm.adapter.embedding(lm.model).num_embeddings))


def one_token(lm: LoadedModel, ref: str | int) -> int:
    """A token id as given, or the one token a text encodes to (without special tokens).

    Raises:
        ValueError: an id outside the vocabulary, or a text that is not exactly one token.
    """
    if isinstance(ref, int):
        vocab = vocabulary_size(lm)
        if not 0 <= ref < vocab:
            raise ValueError(f"token id {ref} is outside the vocabulary (0..{vocab - 1})")
        return ref
    encoded = list(lm.tokenizer(ref, add_special_tokens=False)["input_ids"])
    if len(encoded) != 1:
        raise ValueError(f"{ref!r} encodes to {len(encoded)} tokens; give one token (mind the leading space) or a "
                         "token id")
    return int(encoded[0])

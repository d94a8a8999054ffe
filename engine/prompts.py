"""Turning a request's prompt or chat messages into token ids, within the token limit.

Text a caller writes is text: special-token text inside a prompt or a message (``<|endoftext|>``,
``<|im_end|>``) is encoded as ordinary tokens unless the request opts in (``allow_special_tokens``),
so a message cannot close its own turn and open a system one. The chat template's own special tokens
stay special: messages holding such text are encoded apart from the template (`encode_chat_apart`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


NO_TEMPLATE = "this model has no chat template; send a plain prompt instead"
#: Stands in for message ``i``'s content while the template is rendered. Private-use characters: no
#: template writes them, and a message's own text never enters that rendering.
_MARK = "\ue000interp-content-{}\ue001"


@dataclass(frozen=True)
class Encoding:
    """A prompt as the model sees it.

    Attributes:
        text: the text the model saw (the prompt, or the rendered chat template).
        ids: ``[n_tokens]``.
        offsets: ``(start, end)`` character span of each token in ``text``.
        contents: character spans of the caller's own text in ``text`` (the prompt, or each message's content).

    ``offsets`` and ``contents`` are empty when they were not asked for (`encode_input`'s ``offsets``).
    """

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]
    contents: list[tuple[int, int]]


def tokenize(tokenizer: PreTrainedTokenizerBase, text: str, *, allow_special_tokens: bool = False,
             add_special_tokens: bool = True) -> list[int]:
    """``text``'s token ids. Special-token text in it (``<|endoftext|>``) is read as plain text unless
    ``allow_special_tokens``; the special tokens the tokenizer adds itself (a BOS) are added either way."""
    return _encode(tokenizer, text, allow_special_tokens, add_special_tokens, False)[0]


def _encode(tokenizer: PreTrainedTokenizerBase, text: str, allow_special_tokens: bool, add_special_tokens: bool,
            offsets: bool) -> tuple[list[int], list[tuple[int, int]]]:
    # Offsets only when asked: a slow (Python) tokenizer has none to give.
    encoded = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=offsets,
                        split_special_tokens=not allow_special_tokens)
    spans = [(int(a), int(b)) for a, b in encoded["offset_mapping"]] if offsets else []
    return list(encoded["input_ids"]), spans


def holds_special_text(tokenizer: PreTrainedTokenizerBase, text: str) -> bool:
    """Whether ``text`` contains the text of a special token (the tokenizer itself is asked)."""
    return tokenize(tokenizer, text, allow_special_tokens=True, add_special_tokens=False) != \
        tokenize(tokenizer, text, add_special_tokens=False)


def render_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]]) -> str:
    """The chat template rendered as text, with the generation prompt."""
    if tokenizer.chat_template is None:
        raise ValueError(NO_TEMPLATE)
    return str(tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                             add_generation_prompt=True))


def chat_segments(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]]) -> list[tuple[str, bool]]:
    """The rendered chat template cut into its own text (False) and each message's content (True), in order.

    The template is rendered with a unique mark for each content, so a content is found where the
    template put it, never where its words happen to occur (a message saying ``user``).

    Raises:
        ValueError: the template drops, repeats or rewrites a content (``| trim``), so its text cannot be
            told apart from the template's.
    """
    marks = [_MARK.format(i) for i in range(len(messages))]
    marked = render_chat(tokenizer, [{**m, "content": mark} for m, mark in zip(messages, marks, strict=True)])
    segments, cursor = [], 0
    for message, mark in zip(messages, marks, strict=True):
        at = marked.find(mark, cursor)
        if at < 0 or marked.count(mark) != 1:
            raise ValueError("this model's chat template does not render each message's content once as written")
        segments += [(marked[cursor:at], False), (message["content"], True)]
        cursor = at + len(mark)
    segments.append((marked[cursor:], False))
    if "".join(text for text, _ in segments) != render_chat(tokenizer, messages):
        raise ValueError("this model's chat template rewrites message contents")
    return segments


def encode_chat_apart(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]], *,
                      offsets: bool = True) -> Encoding:
    """The chat template's text with its special tokens, each content with special-token text as text.

    Encoded piece by piece; for contents that hold no special-token text this equals the template's
    own encoding (tested on the default model's and the tiny test tokenizers).
    """
    segments = chat_segments(tokenizer, messages)
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    at = 0
    for piece, content in segments:
        piece_ids, piece_spans = _encode(tokenizer, piece, not content, False, offsets)
        ids += piece_ids
        spans += [(a + at, b + at) for a, b in piece_spans]
        at += len(piece)
    return Encoding(text="".join(piece for piece, _ in segments), ids=ids, offsets=spans,
                    contents=_spans(segments) if offsets else [])


def _spans(segments: list[tuple[str, bool]]) -> list[tuple[int, int]]:
    """The character spans of the content segments in the joined text."""
    spans, at = [], 0
    for piece, content in segments:
        if content:
            spans.append((at, at + len(piece)))
        at += len(piece)
    return spans


def _found_contents(text: str, messages: Sequence[Mapping[str, str]]) -> list[tuple[int, int]]:
    """The contents' spans by search, for a template that rewrites them (a rewritten one may be missed)."""
    spans, cursor = [], 0
    for message in messages:
        start = text.find(message["content"], cursor)
        if start >= 0:
            spans.append((start, start + len(message["content"])))
            cursor = start + len(message["content"])
    return spans


def encode_input(tokenizer: PreTrainedTokenizerBase, *, prompt: str | None = None,
                 messages: Sequence[Mapping[str, str]] | None = None, allow_special_tokens: bool = False,
                 offsets: bool = True) -> Encoding:
    """Encode a raw prompt, or chat messages through the model's chat template.

    Special-token text in the prompt or in a message's content is plain text unless
    ``allow_special_tokens``, so a message cannot close its turn and open a system one; the
    template's own special tokens are special either way. ``offsets`` False: the ids alone.

    Raises:
        ValueError: messages for a model without a chat template, or special-token text in messages
            whose template rewrites contents (so it cannot be kept as text).
    """
    if messages is None:
        text = prompt or ""
        ids, spans = _encode(tokenizer, text, allow_special_tokens, True, offsets)
        return Encoding(text=text, ids=ids, offsets=spans, contents=[(0, len(text))] if offsets else [])
    text = render_chat(tokenizer, messages)
    if not allow_special_tokens and any(holds_special_text(tokenizer, m["content"]) for m in messages):
        try:
            return encode_chat_apart(tokenizer, messages, offsets=offsets)
        except ValueError as exc:
            raise ValueError(f"{exc}, so special-token text in a message cannot be kept as text: remove it, or "
                             "set `allow_special_tokens`") from exc
    ids, spans = _encode(tokenizer, text, True, False, offsets)  # as the template means it: its tokens are special
    if not offsets:
        return Encoding(text=text, ids=ids, offsets=[], contents=[])
    try:
        contents = _spans(chat_segments(tokenizer, messages))
    except ValueError:
        contents = _found_contents(text, messages)
    return Encoding(text=text, ids=ids, offsets=spans, contents=contents)


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    *,
    prompt: str | None = None,
    messages: Sequence[Mapping[str, str]] | None = None,
    max_tokens: int,
    allow_special_tokens: bool = False,
) -> list[int]:
    """Encode a raw prompt, or chat messages through the model's chat template (see `encode_input`).

    Args:
        tokenizer: the model's tokenizer.
        prompt: raw text, encoded as is (plus whatever special tokens the tokenizer adds).
        messages: ``[{"role": ..., "content": ...}]``; the generation prompt is appended.
        max_tokens: the limit; longer prompts raise `PromptTooLongError`.
        allow_special_tokens: read special-token text in the prompt or contents as control tokens.

    Returns:
        Token ids, ``[n_tokens]``.
    """
    ids = encode_input(tokenizer, prompt=prompt, messages=messages, allow_special_tokens=allow_special_tokens,
                       offsets=False).ids
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

"""The rules requests share, each worded one way: counts, limits, token counts, layers, prompts, tokens.

A job that fails on a limit fails minutes later; the same check at submission answers at once and
names the field the client wrote. Operations call these from ``check`` (in the API and again in
the worker, with the same words) and, for rules that need the model, from ``run``. The details and
fields are part of the API (clients match on them): tests pin them word for word.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from engine.loading import LoadedModel
from engine.prompts import encode_prompt, one_token, tokenize
from ops.context import Facts
from ops.errors import FieldError
from schemas.generation import ChatMessage
from store.integrity import NonFiniteError

#: Texts to tokenize, by the field they came from (``texts.0``): (what the detail calls it, the text).
LabelledTexts = Mapping[str, tuple[str, str]]


@contextmanager
def as_field(field: str) -> Iterator[None]:
    """Inside the block, a ``ValueError`` (the engine refusing a value) becomes a 422 naming ``field``."""
    try:
        yield
    except FieldError:
        raise
    except ValueError as exc:
        raise FieldError(str(exc), field) from exc


@contextmanager
def finite_output(field: str, advice: str) -> Iterator[None]:
    """Inside the block, an artifact refused for a NaN or an infinity becomes a 422 naming the input that
    produced it (``field``), with ``advice`` on what to change: nothing non-finite is ever stored."""
    try:
        yield
    except NonFiniteError as exc:
        raise FieldError(f"{exc}; {advice}", field) from exc


def check_count(count: int, limit: int, field: str, *, noun: str | None = None, rule: str | None = None) -> None:
    """Refuse more items than a setting allows: ``"{count} {noun}; {rule}"``.

    Args:
        count: how many items the request has.
        limit: the most allowed.
        field: the list's field.
        noun: what the detail calls the items; the field's name by default.
        rule: the limit as the detail states it; ``"the limit is {limit}"`` by default.

    Raises:
        FieldError: naming ``field`` when ``count`` is over ``limit``.
    """
    if count > limit:
        raise FieldError(f"{count} {noun or field}; {rule or f'the limit is {limit}'}", field)


def check_at_most(value: int, limit: int, field: str) -> None:
    """Refuse a number over a setting: ``"{field} is {value}; the limit is {limit}"``."""
    if value > limit:
        raise FieldError(f"{field} is {value}; the limit is {limit}", field)


def check_batch_size(batch_size: int | None, limit: int) -> None:
    """Refuse a ``batch_size`` over ``settings.max_batch_size`` (None: the worker chooses, always allowed)."""
    if batch_size is not None and batch_size > limit:
        raise FieldError(f"batch_size {batch_size} exceeds the limit {limit}", "batch_size")


def check_token_counts(facts: Facts, texts: LabelledTexts, *, minimum: int, add_special_tokens: bool,
                       allow_special_tokens: bool = False) -> None:
    """Refuse the first text, in order, with fewer than ``minimum`` or more than ``max_prompt_tokens`` tokens.

    Only a process that holds the model has its tokenizer; elsewhere the worker's check counts.

    Args:
        facts: what is known about the model.
        texts: the texts by field, each with what the detail calls it.
        minimum: the fewest tokens allowed; 0 leaves out the lower bound (and words the detail as a limit).
        add_special_tokens: tokenize as the run will: with the model's special tokens, or the bare text.
        allow_special_tokens: as the run will, special-token text in the texts read as control tokens or as text.
    """
    tokenizer, limit = facts.tokenizer, facts.settings.max_prompt_tokens
    if tokenizer is None:
        return
    allowed = f"the limit is {limit}" if minimum <= 0 else f"{minimum} to {limit} are allowed"
    for field, (label, text) in texts.items():
        n_tokens = len(tokenize(tokenizer, text, add_special_tokens=add_special_tokens,
                                allow_special_tokens=allow_special_tokens))
        if not minimum <= n_tokens <= limit:
            raise FieldError(f"{label} has {n_tokens} tokens; {allowed}", field)


def check_layers(facts: Facts, layers: Sequence[int], field: str) -> None:
    """Refuse layers outside the model's blocks (unchecked while its depth is unknown: the worker checks).

    Raises:
        FieldError: naming ``field`` and listing every layer out of range.
    """
    n_layers = facts.n_layers
    if n_layers is not None and (bad := [layer for layer in layers if not 0 <= layer < n_layers]):
        raise FieldError(f"layers {bad} are out of range: {facts.model} has blocks 0..{n_layers - 1}", field)


def check_distinct_layers(layers: Sequence[int], field: str, *, rule: str) -> None:
    """Refuse an empty or repeated list of layers, with the operation's ``rule`` as the detail."""
    if not layers or len(set(layers)) != len(layers):
        raise FieldError(rule, field)


def prompt_field(messages: Sequence[ChatMessage] | None) -> str:
    """The field a prompt problem names: ``messages`` for chat requests, else ``prompt``."""
    return "messages" if messages is not None else "prompt"


def encode(lm: LoadedModel, prompt: str | None, messages: Sequence[ChatMessage] | None, limit: int, *,
           allow_special_tokens: bool = False) -> list[int]:
    """The request's prompt (or chat messages through the template) as token ids, within ``limit``.

    Special-token text in the prompt or the contents is plain text unless ``allow_special_tokens``.

    Raises:
        FieldError: naming ``prompt`` or ``messages``: no tokens, too many, or no chat template.
    """
    with as_field(prompt_field(messages)):
        return encode_prompt(lm.tokenizer, prompt=prompt,
                             messages=[m.model_dump() for m in messages] if messages is not None else None,
                             max_tokens=limit, allow_special_tokens=allow_special_tokens)


def token(lm: LoadedModel, ref: str | int, field: str) -> int:
    """A token id, or the one token a text encodes to; a 422 naming ``field`` otherwise."""
    with as_field(field):
        return one_token(lm, ref)

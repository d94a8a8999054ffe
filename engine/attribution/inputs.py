"""What attribution explains: the input tokens (and which are attributable), the targets, words.

A chat prompt is rendered through the model's chat template and tokenised with character
offsets (`engine.prompts.encode_input`); only tokens inside a message's content are attributable,
template and role tokens are not. Targets are the next token (top prediction or given), a given
continuation, or greedily generated tokens. The objective of a target (logit, log-probability or
probability) is read from logits one way for both methods (`target_objective`). Word aggregation
sums token attributions per word, which keeps each target's sum, and so its completeness, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import PreTrainedTokenizerBase

from engine.generation import SamplingParams, generate
from engine.loading import LoadedModel
from engine.prompts import EmptyPromptError, PromptTooLongError, decode, encode_input, one_token, tokenize

Objective = Literal["logit", "log_prob", "prob"]
OBJECTIVES: tuple[Objective, ...] = ("logit", "log_prob", "prob")


@dataclass(frozen=True)
class AttributionInput:
    """The prompt as the model sees it.

    Attributes:
        text: the text the model saw (the prompt, or the rendered chat template).
        input_ids: ``[n_inputs]``.
        offsets: ``(start, end)`` character span of each token in ``text``.
        attributable: per token, whether attribution is computed for it.
    """

    text: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    attributable: list[bool]


@dataclass(frozen=True)
class Unit:
    """A token or a word, with the token positions it covers."""

    text: str
    id: int | None
    start: int
    end: int
    attributable: bool
    positions: list[int]


def prepare_input(
    tokenizer: PreTrainedTokenizerBase,
    *,
    prompt: str | None = None,
    messages: Sequence[dict[str, str]] | None = None,
    max_tokens: int,
    allow_special_tokens: bool = False,
) -> AttributionInput:
    """Tokenise a prompt (every token attributable) or chat messages (only content tokens are).

    Special-token text in the prompt or a content is plain text, and attributable, unless
    ``allow_special_tokens`` (see `engine.prompts.encode_input`).
    """
    encoded = encode_input(tokenizer, prompt=prompt, messages=messages, allow_special_tokens=allow_special_tokens)
    ids, offsets, spans = encoded.ids, encoded.offsets, encoded.contents
    special = set(tokenizer.all_special_ids)
    attributable = [
        t not in special and b > a and any(a < e and b > s for s, e in spans)
        for t, (a, b) in zip(ids, offsets, strict=True)
    ]
    if not ids:
        raise EmptyPromptError("the prompt encodes to no tokens")
    if len(ids) > max_tokens:
        raise PromptTooLongError(len(ids), max_tokens)
    if not any(attributable):
        raise ValueError("the prompt has no attributable token")
    return AttributionInput(text=encoded.text, input_ids=ids, offsets=offsets, attributable=attributable)


def target_objective(logits: torch.Tensor, targets: torch.Tensor,
                     objective: Objective) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's objective for each target, and the target's log-probability beside it.

    Args:
        logits: ``[rows, n_targets, vocab]`` float32 at least, at the targets' positions.
        targets: ``[n_targets]`` target token ids.
        objective: what is explained.

    Returns:
        ``(objective, log_prob)``, each ``[rows, n_targets]``; differentiable. ``logsumexp`` rather
        than a full ``log_softmax``: no second vocabulary-sized tensor per row.
    """
    target_logit = logits.gather(-1, targets.expand(logits.shape[0], -1)[..., None])[..., 0]
    log_prob = target_logit - torch.logsumexp(logits, dim=-1)
    if objective == "logit":
        return target_logit, log_prob
    return (log_prob if objective == "log_prob" else log_prob.exp()), log_prob


def uses_rmsnorm(lm: LoadedModel) -> bool:
    """Whether the model normalises with RMSNorm (Llama, Qwen2, SmolLM2), where a zero input is 0/0."""
    return any("RMSNorm" in type(module).__name__ for module in lm.model.modules())


def baseline_id(lm: LoadedModel, baseline: str | int) -> int | Literal["zero"]:
    """The baseline token id for a named baseline (``zero`` stays symbolic).

    Raises:
        ValueError: the tokenizer lacks that token, the id is outside the vocabulary, or ``zero`` was
            asked of an RMSNorm model (RMSNorm of the zero vector divides 0 by 0: IG would be NaN).
    """
    if isinstance(baseline, int):
        if baseline >= int(lm.model.config.vocab_size):
            raise ValueError(f"baseline token id {baseline} is outside the vocabulary")
        return baseline
    if baseline == "zero":
        if uses_rmsnorm(lm):
            raise ValueError("the zero-embedding baseline gives NaN on this RMSNorm model (RMSNorm of a zero "
                             "vector is 0/0); use pad, unk, mask or a token id")
        return "zero"
    token_id = {"pad": lm.tokenizer.pad_token_id, "unk": lm.tokenizer.unk_token_id,
                "mask": lm.tokenizer.mask_token_id}[baseline]
    if token_id is None:
        raise ValueError(f"this model's tokenizer has no {baseline} token; use another baseline or a token id")
    return int(token_id)


def resolve_next_token(lm: LoadedModel, input_ids: list[int], token: str | int | None) -> int:
    """The target id: the model's top prediction, a given id, or text that encodes to one token."""
    if token is not None:
        return one_token(lm, token)
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([input_ids], device=lm.device)).logits[0, -1]
    return int(logits.argmax())


def resolve_continuation(lm: LoadedModel, text: str, *, allow_special_tokens: bool = False) -> list[int]:
    """The continuation's token ids (special-token text in it is text unless allowed)."""
    ids = tokenize(lm.tokenizer, text, allow_special_tokens=allow_special_tokens, add_special_tokens=False)
    if not ids:
        raise ValueError("the continuation encodes to no tokens")
    return ids


def resolve_generated(lm: LoadedModel, input_ids: list[int], n_tokens: int) -> list[int]:
    """Greedy continuation of up to ``n_tokens`` (stops early at the end-of-sequence token)."""
    return generate(lm, input_ids, SamplingParams(max_new_tokens=n_tokens)).token_ids


def token_units(lm: LoadedModel, prepared: AttributionInput) -> list[Unit]:
    return [
        Unit(text=prepared.text[a:b] if b > a else decode(lm.tokenizer, [t]), id=t, start=a, end=b,
             attributable=ok, positions=[i])
        for i, (t, (a, b), ok) in enumerate(zip(prepared.input_ids, prepared.offsets, prepared.attributable,
                                                strict=True))
    ]


def word_units(lm: LoadedModel, prepared: AttributionInput) -> list[Unit]:
    """Merge attributable tokens into words: a word starts at whitespace or after a non-word unit."""
    words: list[Unit] = []
    for unit in token_units(lm, prepared):
        previous = words[-1] if words else None
        joins = (
            previous is not None and unit.attributable and previous.attributable
            and not unit.text[:1].isspace() and previous.end == unit.start
        )
        if joins and previous is not None:
            words[-1] = Unit(text=previous.text + unit.text, id=None, start=previous.start, end=unit.end,
                             attributable=True, positions=[*previous.positions, *unit.positions])
        else:
            words.append(Unit(text=unit.text, id=None, start=unit.start, end=unit.end,
                              attributable=unit.attributable, positions=unit.positions))
    return words


def aggregate(attributions: torch.Tensor, units: list[Unit]) -> torch.Tensor:
    """Sum ``[n_targets, n_tokens]`` attributions into ``[n_targets, n_units]``."""
    return torch.stack([attributions[:, u.positions].sum(-1) for u in units], dim=-1)

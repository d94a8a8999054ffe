"""Per-token log-probabilities of texts, computed in padded batches.

This is the job type that proves the job machinery end to end, and a building block of later
evaluations (edit efficacy, KL on canary prompts). Texts are sorted by length before batching so
a batch wastes little on padding; results come back in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from engine.loading import LoadedModel
from engine.prompts import decode, tokenize

#: Called after each batch with (texts done, texts in all); may raise to stop the work.
BatchCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class TextScore:
    """Log-probabilities of one text under the model.

    Attributes:
        token_ids: ``[n_tokens]``.
        tokens: the text of each token.
        logprobs: ``[n_tokens]``; the first entry is None (nothing conditions the first token).
        total_logprob: sum of the defined log-probabilities.
    """

    token_ids: list[int]
    tokens: list[str]
    logprobs: list[float | None]
    total_logprob: float


def encode_texts(lm: LoadedModel, texts: Sequence[str], *, allow_special_tokens: bool = False) -> list[list[int]]:
    """Tokenise each text as the model would see it at the start of a sequence (special-token text in it
    is text unless ``allow_special_tokens``)."""
    return [tokenize(lm.tokenizer, text, allow_special_tokens=allow_special_tokens) for text in texts]


@torch.inference_mode()
def score_batch(lm: LoadedModel, batch: Sequence[Sequence[int]]) -> list[list[float]]:
    """Log-probabilities of tokens 1..n of each sequence, one padded forward pass.

    Args:
        lm: the resident model.
        batch: token ids per sequence, ragged.

    Returns:
        Per sequence, ``[len(seq) - 1]`` log-probabilities (float32 softmax).
    """
    width = max(len(seq) for seq in batch)
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(list(seq))
        mask[row, : len(seq)] = 1  # right padding: causal attention never reads the pads
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    logits = lm.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    return [logprobs[row, : len(seq) - 1].tolist() for row, seq in enumerate(batch)]


def score_texts(
    lm: LoadedModel,
    texts: Sequence[str],
    *,
    batch_size: int,
    on_batch: BatchCallback | None = None,
    allow_special_tokens: bool = False,
) -> list[TextScore]:
    """Score every text, ``batch_size`` at a time, reporting after each batch.

    Args:
        lm: the resident model.
        texts: the texts, each non-empty.
        batch_size: texts per forward pass.
        on_batch: progress and cancellation hook, called between batches.
        allow_special_tokens: read special-token text in the texts as control tokens.
    """
    encoded = encode_texts(lm, texts, allow_special_tokens=allow_special_tokens)
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    results: dict[int, TextScore] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        scored = score_batch(lm, [encoded[i] for i in chunk])
        for i, values in zip(chunk, scored, strict=True):
            ids = encoded[i]
            results[i] = TextScore(
                token_ids=ids,
                tokens=[decode(lm.tokenizer, [t]) for t in ids],
                logprobs=[None, *values],
                total_logprob=float(sum(values)),
            )
        if on_batch is not None:
            on_batch(len(results), len(texts))
    return [results[i] for i in range(len(texts))]

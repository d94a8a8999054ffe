"""How much a variant changes the model: mean KL of next-token distributions on canary prompts.

Canary prompts are a small fixed set of ordinary texts unrelated to any particular edit. At every
token of every canary the model predicts the next token; the drift of a variant is
``KL(p_reference || p_variant)`` averaged over those positions (nats). Erasure and editing both
report it, against the model the variant was derived from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from engine.components import Component
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.runtime import InterventionRuntime
from engine.scoring import encode_texts

CANARY_PROMPTS: tuple[str, ...] = (
    "The capital of France is",
    "Water boils at a temperature of",
    "Once upon a time, in a small village,",
    "To make a cup of tea, first",
    "The best way to learn a new language is",
    "In 1969, the first humans landed on",
    "def add(a, b):\n    return",
    "My favourite season of the year is",
)


@torch.inference_mode()
def next_token_logprobs(lm: LoadedModel, prompts: Sequence[str], *, runtime: InterventionRuntime | None = None,
                        variant: Sequence[Component] = ()) -> torch.Tensor:
    """Log-probabilities of the next token at every real position of every prompt.

    Returns:
        ``[n_positions, vocab]`` float32 on the model's device, prompts concatenated in order.
    """
    if variant and runtime is None:
        raise ValueError("running a variant needs the model's intervention runtime")
    encoded = encode_texts(lm, prompts)
    if not encoded or any(not ids for ids in encoded):
        raise ValueError("every canary prompt must encode to at least one token")
    width = max(len(ids) for ids in encoded)
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)  # right padding: causal attention never reads the pads
    mask = torch.arange(width)[None, :] < torch.tensor([len(seq) for seq in encoded])[:, None]
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    with runtime.active(PassPlan.of_variant(variant)) if (variant and runtime) else contextlib.nullcontext():
        logits = lm.model(input_ids=ids, attention_mask=mask.long(), use_cache=False).logits
    return torch.log_softmax(logits[mask].float(), dim=-1)


def mean_kl(reference: torch.Tensor, variant: torch.Tensor) -> float:
    """``KL(p_reference || p_variant)`` averaged over positions, from log-probabilities ``[n, vocab]``."""
    return float((reference.exp() * (reference - variant)).sum(-1).mean())


def canary_drift(lm: LoadedModel, runtime: InterventionRuntime | None, variants: Sequence[Sequence[Component]], *,
                 reference: Sequence[Component] = (), prompts: Sequence[str] = CANARY_PROMPTS) -> list[float]:
    """Mean next-token KL of each variant against ``reference`` (the base model when empty).

    The reference distributions are computed once and shared by every variant.
    """
    base = next_token_logprobs(lm, prompts, runtime=runtime, variant=reference)
    return [mean_kl(base, next_token_logprobs(lm, prompts, runtime=runtime, variant=v)) for v in variants]

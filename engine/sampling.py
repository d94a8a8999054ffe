"""Choosing the next token: each row's sampling parameters, and the batch's greedy tokens at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How to pick the next token.

    Attributes:
        max_new_tokens: upper bound on generated tokens.
        temperature: 0 means greedy (argmax); otherwise logits are divided by it.
        top_p: nucleus sampling mass, 1.0 keeps the whole distribution.
        seed: seeds this request's own generator; None draws a fresh one.
    """

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


def pick_next_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> int:
    """Choose the next token from logits ``[vocab]`` (finite: `generate_batch` checks them first).

    Raises:
        ValueError: the sampling distribution is not finite (finite logits over a tiny temperature
            overflow); checked here because ``torch.multinomial`` on such probabilities raises on the
            CPU and may trip a device-side assert, which ends the whole process, on a GPU.
    """
    if params.temperature <= 0.0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if not bool(torch.isfinite(probs).all()):
        raise ValueError(f"the logits divided by temperature {params.temperature:g} overflow float32, so the "
                         "sampling distribution is not finite")
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < params.top_p
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[choice].item())
    return int(torch.multinomial(probs, 1, generator=generator).item())


def scan_logits(logits: torch.Tensor) -> tuple[list[bool], list[int]]:
    """Per row of ``[batch, vocab]`` logits: whether they are finite, and their argmax (the greedy token).

    Both come back in one transfer, the step's one synchronisation with the device: picking each
    row's token with its own ``.item()`` waited on a GPU once per row.
    """
    finite, greedy = torch.stack([torch.isfinite(logits).all(dim=-1).long(), logits.argmax(dim=-1)]).tolist()
    return [bool(f) for f in finite], greedy

"""Plain autoregressive generation with a KV cache: greedy, or sampled with a seeded generator.

The decode loop is our own rather than ``model.generate`` so that each request owns its random
generator (reproducible with ``seed`` whatever else runs) and so that later interventions can
see exactly which positions each step computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from engine.loading import LoadedModel
from engine.prompts import decode


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


@dataclass(frozen=True)
class GenerationOutput:
    """What one generation produced.

    Attributes:
        token_ids: generated ids, ``[n_generated]`` (the stop token included when hit).
        text: the decoded continuation, special tokens removed.
        finish_reason: ``stop`` when a stop token ended it, ``length`` at the token limit.
    """

    token_ids: list[int]
    text: str
    finish_reason: Literal["stop", "length"]


def pick_next_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> int:
    """Choose the next token from logits ``[vocab]``."""
    if params.temperature <= 0.0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < params.top_p
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[choice].item())
    return int(torch.multinomial(probs, 1, generator=generator).item())


def stop_token_ids(lm: LoadedModel) -> set[int]:
    """The ids that end a generation: the tokenizer's EOS and the model's configured EOS ids."""
    ids: set[int] = set()
    eos = lm.model.generation_config.eos_token_id if lm.model.generation_config else None
    for value in (lm.tokenizer.eos_token_id, eos):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    return ids


@torch.inference_mode()
def generate(lm: LoadedModel, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationOutput:
    """Continue ``prompt_ids`` for up to ``params.max_new_tokens`` tokens.

    Args:
        lm: the resident model.
        prompt_ids: the encoded prompt, ``[n_prompt]``.
        params: sampling parameters.
    """
    generator: torch.Generator | None = None
    if params.temperature > 0.0:
        generator = torch.Generator(device=lm.device)
        generator.manual_seed(params.seed if params.seed is not None else int(torch.seed() % 2**63))
    stops = stop_token_ids(lm)
    input_ids = torch.tensor([list(prompt_ids)], device=lm.device)
    out = lm.model(input_ids=input_ids, use_cache=True)
    generated: list[int] = []
    finish: Literal["stop", "length"] = "length"
    for _ in range(params.max_new_tokens):
        next_id = pick_next_token(out.logits[0, -1], params, generator)
        generated.append(next_id)
        if next_id in stops:
            finish = "stop"
            break
        if len(generated) == params.max_new_tokens:
            break  # no forward pass for a token nobody will read
        step = torch.tensor([[next_id]], device=lm.device)
        out = lm.model(input_ids=step, past_key_values=out.past_key_values, use_cache=True)
    text = decode(lm.tokenizer, generated, skip_special_tokens=True)
    return GenerationOutput(token_ids=generated, text=text, finish_reason=finish)

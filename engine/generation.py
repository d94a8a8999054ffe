"""Autoregressive generation for a batch of independent requests, with a KV cache.

Rows are left-padded to a common length and decoded together; each row has its own sampling
parameters, seeded generator, stop condition, steering and model variant. Positions are explicit per row
(``position_ids``), so a row's numbers do not depend on how much padding its neighbours needed,
and a row alone and the same row in a batch give the same greedy tokens. Steering is applied by
the intervention runtime at the positions each row asked for, which under the KV cache means:
the prompt tokens in the prefill pass, then the one token fed back at each decode step. A row's
variant components (an eraser, say) apply to every one of its tokens, so rows on different
variants share the batch too.

Failure is per row. Nothing in a forward pass mixes rows (attention, norms and matmuls all act row
by row), so NaN or inf in one row's activations never reaches another's; what could is the loop
itself, where one row's bad logits or bad seed used to raise for the whole batch. A row whose
generator cannot be seeded, whose logits are not finite, whose sampling fails or whose ``on_token``
raises ends alone with a `RowError`; the others go on and produce exactly the tokens they would
produce alone.

A decode step synchronises with the device once: every row's finiteness and greedy token come
back in one transfer (`engine.sampling.scan_logits`); only sampling rows are drawn one by one,
each from its own generator. The prompt pass computes the last position's logits only, and one
pass plan serves every decode step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from engine.components import Component
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan, Steering, SteeringTable, VariantTable
from engine.prompts import decode
from engine.runtime import InterventionRuntime
from engine.sampling import SamplingParams, pick_next_token, scan_logits


@dataclass
class GenerationRow:
    """One request's share of a batch.

    Attributes:
        prompt_ids: the encoded prompt, ``[n_prompt]``.
        params: its sampling parameters.
        steering: its steering entries (empty: unsteered).
        on_token: called with each generated id as soon as it is chosen (streaming).
        variant: the components of its model variant, in order (empty: the base model).
    """

    prompt_ids: Sequence[int]
    params: SamplingParams = field(default_factory=SamplingParams)
    steering: list[Steering] = field(default_factory=list)
    on_token: Callable[[int], None] | None = None
    variant: Sequence[Component] = ()


FinishReason = Literal["stop", "length", "error"]
#: What ended a row early: its ``seed``, its ``logits`` (not finite), its ``sampling``, its ``callback``.
Cause = Literal["seed", "logits", "sampling", "callback"]


@dataclass(frozen=True)
class RowError:
    """Why one row ended early; the other rows of its batch went on.

    Attributes:
        cause: ``seed``: its generator could not be seeded; ``logits``: its logits were not finite
            (NaN or inf from its steering, its variant or the model); ``sampling``: its logits were
            finite but its sampling distribution was not (a tiny temperature), or sampling raised;
            ``callback``: its ``on_token`` raised.
        step: the tokens it had generated when it failed (0: right after the prompt).
        message: what happened, for a person.
    """

    cause: Cause
    step: int
    message: str


@dataclass(frozen=True)
class GenerationOutput:
    """What one row produced.

    Attributes:
        token_ids: generated ids, ``[n_generated]`` (the stop token included when hit; with an
            error, the tokens chosen before it).
        text: the decoded continuation, special tokens removed.
        finish_reason: ``stop`` when a stop token ended it, ``length`` at the token limit,
            ``error`` when it failed (see ``error``).
        error: why it failed; None when it did not.
    """

    token_ids: list[int]
    text: str
    finish_reason: FinishReason
    error: RowError | None = None


def _last_only(lm: LoadedModel) -> dict[str, int]:
    """``logits_to_keep=1`` where the model takes it: the prompt pass needs the last position's logits only
    (``[batch, prompt, vocab]`` of them cost a vocabulary-sized matmul per prompt token)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(lm.model.forward).parameters else {}


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


def _generator(params: SamplingParams, device: torch.device) -> torch.Generator | RowError | None:
    """A sampling row's own generator (None for a greedy row), or why it cannot have one."""
    if params.temperature <= 0.0:
        return None
    generator = torch.Generator(device=device)
    try:
        generator.manual_seed(params.seed if params.seed is not None else int(torch.seed() % 2**63))
    except (RuntimeError, ValueError, OverflowError) as exc:  # torch takes 64-bit seeds only
        return RowError("seed", 0, f"seed {params.seed} cannot seed a random generator ({exc})")
    return generator


def _not_finite(logits: torch.Tensor, step: int) -> RowError:
    """The error of a row whose logits ``[vocab]`` hold NaN or inf (argmax or sampling of them is meaningless)."""
    nan, inf = int(torch.isnan(logits).sum()), int(torch.isinf(logits).sum())
    return RowError("logits", step, f"the logits were not finite ({nan} NaN and {inf} infinite of {logits.numel()})")


@torch.inference_mode()
def generate_batch(
    lm: LoadedModel, rows: Sequence[GenerationRow], runtime: InterventionRuntime | None = None
) -> list[GenerationOutput]:
    """Decode every row to its own end, sharing each forward pass.

    Args:
        lm: the resident model.
        rows: the requests; each keeps its own parameters and steering.
        runtime: the model's intervention runtime; required when any row steers or runs a variant.

    Returns:
        One output per row, in order; a row that failed has ``finish_reason`` ``error`` and its
        ``error``, and did not disturb the others.

    Raises:
        ValueError: a steering vector of the wrong size, or steering without a runtime (the batch
            cannot be formed; the batcher reruns its requests one by one to find whose it is).
    """
    device, n = lm.device, len(rows)
    place = runtime.place if runtime is not None else None
    table = SteeringTable.build([r.steering for r in rows], hidden=lm.hidden_size, dtype=lm.dtype, device=device,
                                place=place)
    variants = VariantTable.build([r.variant for r in rows], device=device, place=place)
    plain = table.empty and variants.empty
    if not plain and runtime is None:
        raise ValueError("steering and variants need the model's intervention runtime")
    width = max(len(r.prompt_ids) for r in rows)
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row.prompt_ids):] = torch.tensor(list(row.prompt_ids))  # left padding
        mask[i, width - len(row.prompt_ids):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    stops = stop_token_ids(lm)
    generated: list[list[int]] = [[] for _ in rows]
    finish: list[FinishReason | None] = [None] * n
    errors: list[RowError | None] = [None] * n
    generators: list[torch.Generator | None] = []
    for i, row in enumerate(rows):
        made = _generator(row.params, device)
        if isinstance(made, RowError):  # the row ends before its first token; it rides along as padding
            errors[i], finish[i], made = made, "error", None
        generators.append(made)
    out_past: object | None = None
    last_only = _last_only(lm)

    def plan_of(prompt_mask: torch.Tensor, generated_mask: torch.Tensor) -> PassPlan | None:
        return None if plain else PassPlan(table, prompt_mask, generated_mask, variants)

    def forward(step_ids: torch.Tensor, plan: PassPlan | None) -> torch.Tensor:
        nonlocal out_past
        kwargs = {"attention_mask": mask, "position_ids": positions, "use_cache": True, "past_key_values": out_past,
                  **last_only}
        if plan is None or runtime is None:
            out = lm.model(input_ids=step_ids, **kwargs)
        else:
            with runtime.active(plan):
                out = lm.model(input_ids=step_ids, **kwargs)
        out_past = out.past_key_values
        return out.logits[:, -1]

    def choose(i: int, row_logits: torch.Tensor, finite: bool, greedy: int) -> int | RowError:
        """Row ``i``'s next token, delivered to its ``on_token``; or why the row ends here."""
        step, params = len(generated[i]), rows[i].params
        if not finite:
            return _not_finite(row_logits, step)
        try:
            token = greedy if params.temperature <= 0.0 else pick_next_token(row_logits, params, generators[i])
        except (RuntimeError, ValueError) as exc:
            return RowError("sampling", step, f"sampling failed at step {step}: {exc}")
        generated[i].append(token)
        if (sink := rows[i].on_token) is not None:
            try:
                sink(token)
            except Exception as exc:  # the caller's code (a stream): its failure is its row's alone
                return RowError("callback", step, f"delivering the token of step {step} failed: {exc}")
        return token

    # Prefill: every non-pad token is a prompt token.
    logits = forward(ids, plan_of(mask.bool(), torch.zeros_like(mask, dtype=torch.bool)))
    # Decode: the one token fed back is a generated token (one plan for every step).
    decode_plan = plan_of(torch.zeros((n, 1), dtype=torch.bool, device=device),
                          torch.ones((n, 1), dtype=torch.bool, device=device))
    while True:
        finite, greedy = scan_logits(logits)
        next_ids = []
        for i, row in enumerate(rows):
            if finish[i] is not None:
                next_ids.append(pad)  # finished and failed rows ride along; their tokens are ignored
                continue
            token = choose(i, logits[i], finite[i], greedy[i])
            if isinstance(token, RowError):
                errors[i], finish[i] = token, "error"
                next_ids.append(pad)
                continue
            if token in stops:
                finish[i] = "stop"
            elif len(generated[i]) >= row.params.max_new_tokens:
                finish[i] = "length"
            next_ids.append(token)
        if all(f is not None for f in finish):
            break  # no forward pass for tokens nobody will read
        step = torch.tensor(next_ids, device=device)[:, None]
        mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
        positions = positions[:, -1:] + 1
        logits = forward(step, decode_plan)
    return [
        GenerationOutput(g, decode(lm.tokenizer, g, skip_special_tokens=True), f or "length", e)
        for g, f, e in zip(generated, finish, errors, strict=True)
    ]


def generate(
    lm: LoadedModel,
    prompt_ids: Sequence[int],
    params: SamplingParams,
    *,
    steering: list[Steering] | None = None,
    runtime: InterventionRuntime | None = None,
    variant: Sequence[Component] = (),
) -> GenerationOutput:
    """Continue one prompt: a batch of one."""
    return generate_batch(lm, [GenerationRow(prompt_ids, params, steering or [], variant=variant)], runtime)[0]

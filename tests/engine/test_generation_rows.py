"""Failure is per row: a row that cannot go on ends alone, and its neighbours get the tokens they get alone.

Each poison below used to raise out of `generate_batch` and take every row of its batch with it (or,
greedy, decode NaN logits into token 0 as if nothing were wrong).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from engine.components import AffineEraser
from engine.generation import GenerationOutput, GenerationRow, SamplingParams, generate_batch
from engine.pass_plan import Steering
from engine.prompts import encode_prompt
from engine.runtime import InterventionRuntime
from tests.fakes import TINY_MODEL, tiny_gpt2_lm, tiny_lm, tiny_registry

PROMPTS = ["The capital of France is", "One, two, three,", "The quick brown fox jumps over the lazy",
           "Interpretability asks"]


def ids(text: str) -> list[int]:
    return encode_prompt(tiny_lm().tokenizer, prompt=text, max_tokens=64)


def run(rows: list[GenerationRow]) -> list[GenerationOutput]:
    return generate_batch(tiny_lm(), rows, tiny_registry().runtime(TINY_MODEL))


def ordinary() -> list[GenerationRow]:
    """Neighbours of every kind: greedy and seeded sampling, steered and not, on a variant and not."""
    hidden = tiny_lm().hidden_size
    vector = torch.randn(hidden, generator=torch.Generator().manual_seed(5))
    return [
        GenerationRow(ids(PROMPTS[0]), SamplingParams(max_new_tokens=8)),
        GenerationRow(ids(PROMPTS[1]), SamplingParams(max_new_tokens=6, temperature=1.0, seed=11)),
        GenerationRow(ids(PROMPTS[2]), SamplingParams(max_new_tokens=8), [Steering(1, vector, 8.0)]),
        GenerationRow(ids(PROMPTS[3]), SamplingParams(max_new_tokens=7, temperature=0.7, top_p=0.9, seed=3),
                      variant=[eraser(finite=True)]),
    ]


def eraser(*, finite: bool) -> AffineEraser:
    g = torch.Generator().manual_seed(2)
    hidden = tiny_lm().hidden_size
    left = torch.randn(hidden, 2, generator=g)
    if not finite:
        left[3, 1] = float("nan")  # one bad weight is enough
    return AffineEraser(1, left, torch.randn(2, hidden, generator=g), torch.zeros(hidden))


def raising(token: int) -> None:
    raise ConnectionError("the client went away")


SAMPLED = SamplingParams(max_new_tokens=8, temperature=1.0, seed=1)
NAN = torch.full((32,), float("nan"))
HUGE = torch.full((32,), 2e38)  # finite alone; two of them sum to inf in float32

POISONS: dict[str, tuple[Callable[[], GenerationRow], str]] = {
    "NaN steering, sampled": (lambda: GenerationRow(ids(PROMPTS[0]), SAMPLED, [Steering(1, NAN, 1.0)]), "logits"),
    "NaN steering, greedy": (lambda: GenerationRow(ids(PROMPTS[0]), SamplingParams(8), [Steering(0, NAN, 1.0)]),
                             "logits"),
    "two finite vectors that overflow together": (
        lambda: GenerationRow(ids(PROMPTS[1]), SAMPLED, [Steering(1, HUGE, 1.0), Steering(1, HUGE, 1.0)]), "logits"),
    "a variant with a NaN weight": (lambda: GenerationRow(ids(PROMPTS[2]), SAMPLED, variant=[eraser(finite=False)]),
                                    "logits"),
    "a seed of 2**64": (lambda: GenerationRow(ids(PROMPTS[0]), SamplingParams(8, temperature=1.0, seed=2**64)),
                        "seed"),
    "a temperature so small the distribution overflows": (
        lambda: GenerationRow(ids(PROMPTS[3]), SamplingParams(8, temperature=1e-45, seed=1)), "sampling"),
    "an on_token that raises": (lambda: GenerationRow(ids(PROMPTS[1]), SAMPLED, on_token=raising), "callback"),
}


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_row_ends_alone_with_its_cause_and_its_neighbours_get_their_tokens_alone(poison: str) -> None:
    make, cause = POISONS[poison]
    neighbours = ordinary()
    outputs = run([*neighbours[:2], make(), *neighbours[2:]])
    failed = outputs.pop(2)
    assert failed.finish_reason == "error" and failed.error is not None
    assert failed.error.cause == cause, failed.error
    assert outputs == [run([row])[0] for row in neighbours]
    assert all(o.error is None and o.token_ids for o in outputs)


def test_on_gpt2_too_a_nan_steered_row_leaves_its_neighbours_tokens_as_they_are_alone() -> None:
    # Another family (LayerNorm, learned positions, Conv1D): rows stay independent under left padding.
    lm = tiny_gpt2_lm()
    rows = [GenerationRow(ids(PROMPTS[i]), SamplingParams(max_new_tokens=6, temperature=0.9 * (i % 2), seed=i))
            for i in range(3)]
    poison = GenerationRow(ids(PROMPTS[3]), SamplingParams(6, temperature=1.0, seed=1), [Steering(1, NAN, 1.0)])
    with InterventionRuntime(lm).installed() as runtime:
        *outputs, failed = generate_batch(lm, [*rows, poison], runtime)
        assert outputs == [generate_batch(lm, [row], runtime)[0] for row in rows]
    assert failed.error is not None and failed.error.cause == "logits"


def test_greedy_rows_refuse_nan_logits_instead_of_decoding_them_as_token_zero() -> None:
    (out,) = run([GenerationRow(ids(PROMPTS[0]), SamplingParams(8), [Steering(1, NAN, 1.0)])])
    assert (out.token_ids, out.finish_reason) == ([], "error")
    vocab = len(tiny_lm().tokenizer)
    assert out.error is not None and (out.error.cause, out.error.step) == ("logits", 0)
    assert out.error.message == f"the logits were not finite ({vocab} NaN and 0 infinite of {vocab})"


def test_a_row_that_fails_mid_generation_keeps_the_tokens_before_and_names_the_step() -> None:
    # Steering only the tokens fed back leaves the prompt pass clean: the first token is the plain one.
    # (Finite additions that overflow together: a NaN addition would reach the prompt through its zero mask.)
    plain = run([GenerationRow(ids(PROMPTS[0]), SamplingParams(8))])[0]
    late = [Steering(0, HUGE, 1.0, "generated"), Steering(1, HUGE, 1.0, "generated")]
    (out,) = run([GenerationRow(ids(PROMPTS[0]), SamplingParams(8), late)])
    assert out.token_ids == plain.token_ids[:1]
    assert out.error is not None and (out.error.cause, out.error.step) == ("logits", 1)


def test_a_batch_of_only_failing_rows_ends_without_decoding() -> None:
    outputs = run([GenerationRow(ids(p), SamplingParams(8, temperature=1.0, seed=2**64)) for p in PROMPTS])
    assert [(o.token_ids, o.finish_reason) for o in outputs] == [([], "error")] * len(PROMPTS)

"""The shared value optimisation: its cached passes equal plain ones, it reaches the target, it stays bounded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import torch

from engine.editing.hparams import EditHyperparams, default_hparams, with_overrides
from engine.editing.keys import subject_prompt, target_ids
from engine.editing.request import EditRequest
from engine.editing.values import KL_PROMPT, ValueTarget, optimize_values
from engine.loading import LoadedModel
from engine.progress import CanceledError, Progress
from engine.runtime import InterventionRuntime
from tests.engine.editing_support import TINY_TEMPLATES, editable_lm, hook_total, merged, random_delta

REQUESTS = [EditRequest("The capital of {}", "France", " fox"),  # the subject ends the prompt
            EditRequest("{} is", "One", " ten"),  # a one-token subject at the start: an empty prefix
            EditRequest("The quick brown {} jumps over the", "fox", " capital")]
LAYER = 0


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return editable_lm(request.param)


@pytest.fixture
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


def hparams(**overrides: object) -> EditHyperparams:
    return with_overrides(default_hparams("llama", "memit", 2), {"layers": [LAYER], **overrides})


def reference(lm: LoadedModel) -> torch.Tensor:
    return torch.full((len(REQUESTS), lm.hidden_size), 10.0)


def plain_nll(lm: LoadedModel, request: EditRequest, delta: torch.Tensor) -> float:
    """Independent reference: full unpadded passes, delta added by a plain hook at the subject's last token."""
    block = lm.adapter.blocks(lm.model)[LAYER]
    bare = subject_prompt(lm.tokenizer, "{}", request.prompt, request.subject)
    target = target_ids(lm.tokenizer, bare.ids, request.text, request.target_new)
    total = 0.0
    for template in TINY_TEMPLATES:
        p = subject_prompt(lm.tokenizer, template, request.prompt, request.subject)

        def add(module: torch.nn.Module, args: object, output: Any, at: int = p.subject_last) -> Any:
            hidden = (output[0] if isinstance(output, tuple) else output).clone()
            hidden[0, at] += delta
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        handle = block.register_forward_hook(add)
        try:
            with torch.no_grad():
                logits = lm.model(torch.tensor([p.ids + target[:-1]])).logits[0].float()
        finally:
            handle.remove()
        logprobs = torch.log_softmax(logits[len(p.ids) - 1:], dim=-1)
        total += float(-logprobs[torch.arange(len(target)), torch.tensor(target)].mean())
    return total / len(TINY_TEMPLATES)


def run(lm: LoadedModel, runtime: InterventionRuntime, requests: Sequence[EditRequest] = tuple(REQUESTS),
        **overrides: object) -> list[ValueTarget]:
    return optimize_values(lm, runtime, requests, hparams(**overrides), TINY_TEMPLATES, layer=LAYER,
                           reference=reference(lm)[: len(requests)])


def test_before_any_step_the_loss_is_the_plain_nll_of_the_target(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    for request, target in zip(REQUESTS, run(lm, runtime, v_steps=1), strict=True):
        assert target.steps == 1 and torch.equal(target.delta, torch.zeros(lm.hidden_size))
        assert target.nll == pytest.approx(plain_nll(lm, request, target.delta), abs=1e-4)
        assert target.loss == pytest.approx(target.nll, abs=1e-6)  # no KL and no decay at delta = 0


def test_the_optimised_delta_lowers_the_nll_as_plain_passes_measure_it(lm: LoadedModel,
                                                                       runtime: InterventionRuntime) -> None:
    targets = run(lm, runtime, v_steps=8, v_stop_loss=1e-9, kl_factor=0.0, v_lr=5.0)
    for request, target in zip(REQUESTS, targets, strict=True):
        before = plain_nll(lm, request, torch.zeros(lm.hidden_size))
        after = plain_nll(lm, request, target.delta)
        assert after == pytest.approx(target.nll, abs=1e-4)  # the cached suffix passes are exact
        # A tiny random model's later tokens hardly attend to the subject; where the subject ends the
        # prompt, the delta reaches the prediction directly.
        assert after < before - (2.0 if request.prompt.endswith("{}") else 0.2)


def test_the_delta_is_clamped_to_a_multiple_of_the_original_values_norm(lm: LoadedModel,
                                                                        runtime: InterventionRuntime) -> None:
    targets = run(lm, runtime, v_steps=5, v_lr=5.0, clamp_norm_factor=0.01, v_stop_loss=1e-9)
    limit = 0.01 * float(reference(lm)[0].norm())
    assert all(0 < float(t.delta.norm()) <= limit * (1 + 1e-5) for t in targets)


def test_facts_optimised_together_equal_each_alone(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    together = run(lm, runtime, v_steps=4, v_stop_loss=1e-9)
    for i, request in enumerate(REQUESTS):
        (alone,) = run(lm, runtime, [request], v_steps=4, v_stop_loss=1e-9)
        assert torch.allclose(alone.delta, together[i].delta, atol=1e-4, rtol=1e-4)
    chunked = run(lm, runtime, v_steps=4, v_stop_loss=1e-9, v_batch_facts=2)
    assert all(torch.allclose(a.delta, b.delta, atol=1e-4, rtol=1e-4) for a, b in zip(together, chunked, strict=True))


def test_a_fact_that_reaches_the_target_leaves_the_batch_and_the_others_go_on_as_alone(
        lm: LoadedModel, runtime: InterventionRuntime) -> None:
    # Stop where the fact whose subject ends its prompt gets early and the others late or never.
    first = run(lm, runtime, v_steps=12, v_stop_loss=1e-9, v_lr=5.0)
    stop = sorted(t.loss for t in first)[1] + 1e-3
    together = run(lm, runtime, v_steps=12, v_stop_loss=stop, v_lr=5.0)
    assert len({t.steps for t in together}) > 1  # they did stop at different steps
    for request, target in zip(REQUESTS, together, strict=True):
        (alone,) = run(lm, runtime, [request], v_steps=12, v_stop_loss=stop, v_lr=5.0)
        assert alone.steps == target.steps
        assert torch.allclose(alone.delta, target.delta, atol=1e-3, rtol=1e-3)


def test_a_fact_below_the_stop_loss_stops_moving(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    targets = run(lm, runtime, v_steps=6, v_stop_loss=1e9)
    assert all(t.steps == 1 and float(t.delta.norm()) == 0.0 for t in targets)


def test_the_same_request_twice_gives_bit_identical_deltas(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    first, second = run(lm, runtime, v_steps=4), run(lm, runtime, v_steps=4)
    assert all(torch.equal(a.delta, b.delta) for a, b in zip(first, second, strict=True))


def test_passes_run_on_the_parent_variant(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    parent = random_delta(lm, 1, rank=2, seed=3, scale=0.5)
    hp = hparams(v_steps=1)
    (on_parent,) = optimize_values(lm, runtime, REQUESTS[:1], hp, TINY_TEMPLATES, layer=LAYER,
                                   reference=reference(lm)[:1], components=[parent])
    with merged(lm, [parent]):
        expected = plain_nll(lm, REQUESTS[0], torch.zeros(lm.hidden_size))
    assert on_parent.nll == pytest.approx(expected, abs=1e-4)
    assert on_parent.nll != pytest.approx(plain_nll(lm, REQUESTS[0], torch.zeros(lm.hidden_size)), abs=1e-3)


def test_progress_is_reported_and_a_stop_request_ends_the_optimisation(lm: LoadedModel,
                                                                       runtime: InterventionRuntime) -> None:
    hooks = hook_total(lm)
    seen: list[float] = []
    hp = hparams(v_steps=3, v_stop_loss=1e-9)
    optimize_values(lm, runtime, REQUESTS, hp, TINY_TEMPLATES, layer=LAYER, reference=reference(lm),
                    progress=Progress(lambda f, m: seen.append(f)))
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) == 3
    calls = iter(range(100))
    with pytest.raises(CanceledError):
        optimize_values(lm, runtime, REQUESTS, hp, TINY_TEMPLATES, layer=LAYER, reference=reference(lm),
                        progress=Progress(should_stop=lambda: next(calls) >= 1))
    assert hook_total(lm) == hooks  # nothing of ours left behind


def test_the_kl_prompt_has_the_papers_form() -> None:
    assert KL_PROMPT == "{} is a"
    assert dataclasses.is_dataclass(ValueTarget)

"""The batcher driven directly: poisons the API cannot send (NaN steering, a variant with a NaN weight, a seed
torch cannot take, a bug) beside eight ordinary requests of another tenant, all in one batch.

The ordinary requests get the tokens each gets alone; the poison one gets its own problem, naming its field;
a batch that raises all the same is run again request by request, so only its culprit fails, and a streamed
request whose batch failed half-way sends each of its tokens exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from engine.components import AffineEraser
from engine.generation import GenerationOutput, GenerationRow, SamplingParams, generate_batch
from engine.pass_plan import Steering
from ops.context import Resident, Stores
from ops.errors import ProblemError, classify
from ops.generate import OPERATION as GENERATE
from ops.generate import Prepared
from schemas.generation import GenerateRequest
from service.batcher import GenerationBatcher, StreamDivergedError, Tap
from tests.fakes import TINY_MODEL, tiny_lm, tiny_registry, tiny_settings

HIDDEN = tiny_lm().hidden_size
ORDINARY = [GenerateRequest(prompt=f"The capital of France is{' and' * (i % 3)}", max_new_tokens=4 + i % 4,
                            **({"temperature": 0.8, "seed": 100 + i} if i % 2 else {})) for i in range(8)]


def resident(tmp_path: Path, tenant: str) -> Resident:
    settings = tiny_settings(tmp_path, api_keys="key-a-000000001:team-a,key-b-000000002:team-b")
    return Resident(lm=tiny_lm(), runtime=tiny_registry().runtime(TINY_MODEL), settings=settings,
                    stores=Stores.of(settings, tenant))


def nan_steering(prepared: Prepared) -> None:
    (entry,) = prepared.rows[0].steering
    prepared.rows[0].steering[0] = dataclasses.replace(entry, vector=torch.full((HIDDEN,), float("nan")))


def nan_variant(prepared: Prepared) -> None:
    g = torch.Generator().manual_seed(2)
    left = torch.randn(HIDDEN, 2, generator=g)
    left[5, 0] = float("nan")
    prepared.rows[0].variant = [AffineEraser(1, left, torch.randn(2, HIDDEN, generator=g), torch.zeros(HIDDEN))]
    prepared.variant = "broken@1"


def bad_seed(prepared: Prepared) -> None:
    prepared.rows[0].params = dataclasses.replace(prepared.rows[0].params, seed=2**64)


#: name -> (how the poison request's row is spoiled after its checks, the field its problem names).
POISONS: dict[str, tuple[Callable[[Prepared], None], str]] = {
    "NaN steering values": (nan_steering, "steering.0.values"),
    "a variant with a NaN weight": (nan_variant, "variant"),
    "a seed torch cannot take": (bad_seed, "seed"),
}


def poison_request() -> GenerateRequest:
    return GenerateRequest(prompt="Hi there", temperature=1.0, seed=1,
                           steering=[{"values": [0.5] * HIDDEN, "layers": [1], "alpha": 1.0}])


def alone(rows: list[GenerationRow]) -> list[GenerationOutput]:
    return generate_batch(tiny_lm(), rows, tiny_registry().runtime(TINY_MODEL))


async def in_one_batch(batcher: GenerationBatcher, requests: list[list[GenerationRow]]) -> list[Any]:
    """Submit every request at once (they are queued before the batcher's loop wakes) and gather the answers."""
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.generate(TINY_MODEL, rows) for rows in requests),
                                    return_exceptions=True)
    finally:
        await batcher.stop()


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_row_beside_eight_requests_of_another_tenant_fails_alone_with_its_field(
    tmp_path: Path, poison: str
) -> None:
    spoil, field = POISONS[poison]
    team_a, team_b = resident(tmp_path, "team-a"), resident(tmp_path, "team-b")
    ordinary = [GENERATE.prepare(request, team_a) for request in ORDINARY]
    bad = GENERATE.prepare(poison_request(), team_b)
    spoil(bad)
    batcher = GenerationBatcher(tiny_registry(), max_batch=32)
    *outputs, bad_outputs = asyncio.run(in_one_batch(batcher, [p.rows for p in [*ordinary, bad]]))
    assert [o for o in outputs if isinstance(o, BaseException)] == []
    responses = [GENERATE.respond(p, team_a, o) for p, o in zip(ordinary, outputs, strict=True)]
    assert [[t.id for t in r.tokens] for r in responses] == [alone(p.rows)[0].token_ids for p in ordinary]
    with pytest.raises(ProblemError) as refused:
        GENERATE.respond(bad, team_b, bad_outputs)
    assert (refused.value.status, refused.value.field) == (422, field), refused.value.detail
    assert (batcher.batches, batcher.reruns) == (1, 0)  # one shared batch, and nothing to run again


def test_a_batch_that_raises_is_run_again_request_by_request_so_only_its_culprit_fails(tmp_path: Path) -> None:
    team_a, team_b = resident(tmp_path, "team-a"), resident(tmp_path, "team-b")
    ordinary = [GENERATE.prepare(request, team_a) for request in ORDINARY]
    bad = GENERATE.prepare(poison_request(), team_b)
    bad.rows[0].steering[0] = Steering(1, torch.ones(HIDDEN + 1), 1.0)  # the table cannot be built: the batch raises
    batcher = GenerationBatcher(tiny_registry(), max_batch=32)
    *outputs, failure = asyncio.run(in_one_batch(batcher, [p.rows for p in [*ordinary, bad]]))
    assert [o for o in outputs if isinstance(o, BaseException)] == []
    assert [o[0].token_ids for o in outputs] == [alone(p.rows)[0].token_ids for p in ordinary]
    assert isinstance(failure, ValueError) and "steering vector has shape" in str(failure)
    problem = classify(failure)  # what the route answers: this request's 422
    assert problem is not None and problem.status == 422
    assert (batcher.batches, batcher.reruns) == (1, 9)


@dataclasses.dataclass(frozen=True, eq=False)
class FailsWhileDecoding:
    """A component with a bug that shows only in decode steps: its whole batch raises after the first token."""

    kind: ClassVar[str] = "fails_while_decoding"
    site: str = "block.0"

    def apply(self, output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor:
        if output.shape[1] == 1:
            raise RuntimeError("a bug in a component")
        return output

    def tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "site": self.site}

    def to(self, device: torch.device | str) -> FailsWhileDecoding:
        return self


def test_streamed_requests_whose_batch_failed_half_way_send_each_token_once_and_finish() -> None:
    ids = tiny_lm().tokenizer("The capital of France is")["input_ids"]
    params = [SamplingParams(max_new_tokens=6), SamplingParams(max_new_tokens=6, temperature=0.9, seed=4),
              SamplingParams(max_new_tokens=6, temperature=0.9)]  # the last one unseeded
    streamed: list[list[int]] = [[] for _ in params]
    rows = [GenerationRow(ids, p, on_token=sent.append) for p, sent in zip(params, streamed, strict=True)]
    culprit = GenerationRow(ids, SamplingParams(max_new_tokens=6), variant=[FailsWhileDecoding()])
    batcher = GenerationBatcher(tiny_registry(), max_batch=32)
    *outputs, failure = asyncio.run(in_one_batch(batcher, [[row] for row in rows] + [[culprit]]))
    assert [o for o in outputs if isinstance(o, BaseException)] == []
    assert streamed == [o[0].token_ids for o in outputs]  # sent once each, nothing twice, nothing lost
    assert [o[0].token_ids for o in outputs[:2]] == [alone([dataclasses.replace(r, on_token=None)])[0].token_ids
                                                     for r in rows[:2]]
    assert all(o[0].finish_reason in ("stop", "length") for o in outputs)
    assert isinstance(failure, RuntimeError) and str(failure) == "a bug in a component"
    assert batcher.reruns == 4  # every streamed row had sent its first token when the batch raised


def test_a_rerun_that_chooses_another_token_than_the_one_sent_is_refused_not_sent() -> None:
    sent: list[int] = []
    tap = Tap(sent.append)
    for token in (5, 6, 7):
        tap(token)
    tap.rewind()
    tap(5)
    with pytest.raises(StreamDivergedError, match="after 3 of its tokens were streamed"):
        tap(9)
    assert sent == [5, 6, 7]

"""Small deltas of many variants at one module apply in one stacked step, each row as its own delta would."""

from __future__ import annotations

import torch

from engine.components import LowRankDelta
from engine.delta_stack import STACK_MAX_RANK, DeltaStack
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.pass_plan import PassPlan, SteeringTable, VariantTable
from engine.runtime import InterventionRuntime, editable_modules
from tests.fakes import tiny_lm

CPU = torch.device("cpu")


def deltas(module: str, count: int, rank: int = 1, seed: int = 0) -> list[LowRankDelta]:
    g = torch.Generator().manual_seed(seed)
    ranks = [rank + k % 2 for k in range(count)]
    return [LowRankDelta(module, torch.randn(r, 64, generator=g), 2 * torch.randn(32, r, generator=g)) for r in ranks]


def test_a_stack_gives_each_row_what_its_own_delta_gives() -> None:
    made = deltas("m", 5)
    per_row = [made[k % 5] for k in range(12)]  # rows share deltas, ranks 1 and 2 mixed
    x, out = torch.randn(12, 3, 64), torch.randn(12, 3, 32)
    stacked = DeltaStack(per_row, CPU).apply(out, x)
    alone = torch.cat([d.apply(out[i : i + 1], x[i : i + 1]) for i, d in enumerate(per_row)])
    torch.testing.assert_close(stacked, alone, rtol=1e-5, atol=1e-5)


def test_sixteen_rank_one_variants_at_one_module_take_one_stage_and_leave_other_rows_exact() -> None:
    lm = tiny_lm()
    module = list(editable_modules(lm))[1]
    made = deltas(module, 16)
    table = VariantTable.build([[d] for d in made] + [[]] * 4, device=CPU)
    ((stack, rows),) = table.sites[f"module.{module}"][0]
    assert isinstance(stack, DeltaStack) and rows is not None and rows.tolist() == list(range(16))
    ids = torch.tensor([list(lm.tokenizer("The capital of France is")["input_ids"])] * 20)
    none = torch.zeros_like(ids, dtype=torch.bool)
    with InterventionRuntime(lm).installed() as runtime, torch.no_grad():
        base = lm.model(input_ids=ids).logits
        with runtime.active(PassPlan(SteeringTable(additions={}), none, none, table)):
            mixed = lm.model(input_ids=ids).logits
    assert torch.equal(mixed[16:], base[16:])
    assert not torch.allclose(mixed[:16], base[:16], atol=1e-3)


def test_rows_on_sixteen_edited_variants_generate_what_each_generates_alone() -> None:
    lm = tiny_lm()
    made = deltas(next(iter(editable_modules(lm))), 16, seed=1)
    prompts = ["The capital of France is", "One, two, three,", "Hi", "Interpretability asks"]
    rows = [GenerationRow(list(lm.tokenizer(prompts[i % 4])["input_ids"]), SamplingParams(max_new_tokens=5),
                          variant=[made[i % 16]] if i % 5 else []) for i in range(20)]
    with InterventionRuntime(lm).installed() as runtime:
        batched = generate_batch(lm, rows, runtime)
        alone = [generate_batch(lm, [row], runtime)[0] for row in rows]
    assert batched == alone
    assert len({tuple(b.token_ids) for b in batched}) > 4


def test_deltas_above_the_stack_rank_apply_one_by_one() -> None:
    big = deltas("m", 2, rank=STACK_MAX_RANK + 1)
    table = VariantTable.build([[big[0]], [big[1]]], device=CPU)
    assert [type(applier) for applier, _ in table.sites["module.m"][0]] == [LowRankDelta, LowRankDelta]

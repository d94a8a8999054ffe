"""Correctness on the device: batched rows equal rows alone, no hook outlives a raise, a split model agrees.

- **Batched equals alone.** 16 rows of different prompt lengths (so left padding), some steered,
  some on edited variants (rank-1 deltas) or an eraser, generated together and each alone: the
  greedy tokens must be the same. In float32 that is the property; in bfloat16 a GPU's matmuls
  round differently at different batch sizes, and a random model's near-tied logits then pick
  another token now and then, so that row is information.
- **Hooks.** A pass that raises inside a hook leaves no plan (the next generation runs and equals
  the one before), and uninstalling leaves no hook on any module.
- **Split model.** The config's blocks alternate between ``cuda:0`` and the CPU (accelerate's
  ``dispatch_model``, as ``from_pretrained(device_map=...)`` places them), and generation with
  steering, variants and an eraser gives the tokens of the same model on one device.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from accelerate import dispatch_model

from benchmarks.gpu.models import SMALL, Sizes, build, prompts, rome_deltas, unit_vectors
from benchmarks.gpu.report import Report, Row
from engine.components import AffineEraser, Component, block_site
from engine.generation import GenerationOutput, GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import Steering
from engine.runtime import InterventionRuntime

SECTION = "checks"


def mixed_rows(lm: LoadedModel, count: int, new_tokens: int, lengths: Sequence[int]) -> list[GenerationRow]:
    """Rows of different lengths: plain, steered, on a rank-1 delta, on an eraser and steered."""
    g = torch.Generator().manual_seed(5)
    vectors, deltas = unit_vectors(lm, count, seed=6), rome_deltas(lm, 4, seed=7)
    hidden, layer = lm.hidden_size, lm.n_layers // 2
    eraser = AffineEraser(layer, torch.randn(hidden, 2, generator=g), torch.randn(2, hidden, generator=g) / hidden**0.5,
                          torch.zeros(hidden)).to(lm.device)
    rows = []
    for i in range(count):
        ids = prompts(lm, 1, lengths[i % len(lengths)], seed=100 + i)[0]
        steering = [Steering(layer, vectors[i], 4.0)] if i % 2 else []
        variants: list[list[Component]] = [[], [deltas[i % 4]], [eraser]]
        variant = variants[i % 3]
        rows.append(GenerationRow(ids, SamplingParams(max_new_tokens=new_tokens), steering, variant=variant))
    return rows


def same_alone(lm: LoadedModel, rows: list[GenerationRow]) -> tuple[int, list[GenerationOutput]]:
    """How many rows generate the same tokens in the batch as alone; and the batch's outputs."""
    with InterventionRuntime(lm).installed() as runtime:
        batched = generate_batch(lm, rows, runtime)
        alone = [generate_batch(lm, [row], runtime)[0] for row in rows]
    return sum(b.token_ids == a.token_ids for b, a in zip(batched, alone, strict=True)), batched


def batched_equals_alone(report: Report, bf16: LoadedModel, sizes: Sizes, smoke: bool) -> None:
    """The property in float32 (a float32 build of the same config), and the bfloat16 figure."""
    lengths = [3, 5, 8, 13] if smoke else [5, 9, 14, 20]
    count, new_tokens = (6, 3) if smoke else (16, 16)
    fp32 = build(SMALL, device=bf16.device, dtype=torch.float32, smoke=smoke)
    equal, _ = same_alone(fp32, mixed_rows(fp32, count, new_tokens, lengths))
    report.add(Row(SECTION, f"{SMALL} (float32): {count} rows (padded, steered, variants) generated together equal "
                            "each alone (greedy tokens)", f"{equal}/{count}", target="all",
                   result="pass" if equal == count else "FAIL"))
    equal, _ = same_alone(bf16, mixed_rows(bf16, count, new_tokens, lengths))
    report.add(Row(SECTION, f"{SMALL} (bfloat16): the same rows, batched equal alone (near-ties may differ)",
                   f"{equal}/{count}"))
    report.record(f"{SECTION}.batched_alone", {"count": count, "new_tokens": new_tokens})


class Raising:
    """A variant component whose application raises (a bug in a hook, a device error)."""

    kind: ClassVar[str] = "raising"

    def __init__(self, layer: int) -> None:
        self.layer = layer

    @property
    def site(self) -> str:
        return block_site(self.layer)

    def apply(self, output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor:
        raise RuntimeError("a hook failed")

    def tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "site": self.site}

    def to(self, device: torch.device | str) -> Raising:
        return self


def hooks_after_a_raise(report: Report, lm: LoadedModel) -> None:
    """A raising pass leaves no plan and no extra hook; uninstalling leaves none at all."""
    def hooks() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lm.model.modules())

    before, row = hooks(), GenerationRow(prompts(lm, 1, 6, seed=9)[0], SamplingParams(max_new_tokens=4))
    with InterventionRuntime(lm).installed() as runtime:
        first = generate_batch(lm, [row], runtime)
        installed = hooks()
        try:
            generate_batch(lm, [GenerationRow(row.prompt_ids, row.params, variant=[Raising(0)])], runtime)
            raised = False
        except RuntimeError:
            raised = True
        ok = raised and hooks() == installed and generate_batch(lm, [row], runtime) == first
    after = hooks()
    ok = ok and after == before and installed == before + 2 * lm.n_layers
    report.add(Row(SECTION, f"{lm.name}: a pass that raises in a hook leaves no plan, and no hook after uninstalling "
                            f"(hooks before / installed / after: {before} / {installed} / {after})",
                   "raised" if raised else "did not raise", target="none left", result="pass" if ok else "FAIL"))


def split_model(report: Report, device: torch.device, smoke: bool) -> None:
    """The small config (tiny size) with blocks alternating between ``device`` and the CPU."""
    whole = build(SMALL, device=device, dtype=torch.float32, smoke=True)
    other: int | str = (device.index or 0) if device.type == "cuda" else "cpu"
    n = whole.n_layers
    placement: dict[str, int | str] = {"model.embed_tokens": other, "model.rotary_emb": other, "model.norm": "cpu",
                                       "lm_head": other}
    placement |= {f"model.layers.{i}": other if i % 2 == 0 else "cpu" for i in range(n)}
    model = dispatch_model(copy.deepcopy(whole.model), device_map=placement, main_device="cpu", force_hooks=True,
                           skip_keys=whole.model._skip_keys_device_placement)  # as from_pretrained dispatches
    split = LoadedModel(whole.name, whole.source, model, whole.tokenizer, whole.adapter)
    rows = mixed_rows(whole, 8, 6, [3, 6, 9])
    with InterventionRuntime(whole).installed() as runtime:
        expected = generate_batch(whole, rows, runtime)
    with InterventionRuntime(split).installed() as runtime:
        places = sorted({str(runtime.place(block_site(i))) for i in range(n)})
        got = generate_batch(split, rows, runtime)
    equal = sum(a.token_ids == b.token_ids for a, b in zip(got, expected, strict=True))
    report.add(Row(SECTION, f"tiny {SMALL} split across {', '.join(places)} (blocks alternating; steering, deltas, "
                            "eraser): rows equal to the unsplit model's", f"{equal}/{len(rows)}", target="all",
                   result="pass" if equal == len(rows) else "FAIL"))

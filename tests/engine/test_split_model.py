"""A model split across devices (``device_map``) keeps steering, variants and hooks correct.

This machine has one device, so the split is made two ways: accelerate's ``dispatch_model`` with a
per-module map (its hooks wrap every block and move its inputs to the block's device, as on several
GPUs), and a `Place` that names the meta device for one block, which shows where each table puts
that block's tensors without running it. ``benchmarks/gpu`` splits a model across ``cuda:0`` and the CPU for real.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from accelerate import dispatch_model
from transformers import LlamaForCausalLM

import engine.loading as loading
from engine.components import AffineEraser, Component, LowRankDelta, block_site
from engine.delta_stack import DeltaStack
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel, module_device, split_map
from engine.pass_plan import PassPlan, Steering, SteeringTable, VariantTable
from engine.runtime import InterventionRuntime, editable_modules
from tests.fakes import tiny_lm

PROMPTS = ["The capital of France is", "One, two, three,", "Hi", "The quick brown fox jumps over the lazy"]
META = torch.device("meta")


def dispatched(lm: LoadedModel) -> LoadedModel:
    """A copy of ``lm`` placed module by module by accelerate, as ``from_pretrained(device_map=...)`` does."""
    names = ["model.embed_tokens", *(f"model.layers.{i}" for i in range(lm.n_layers)), "model.norm",
             "model.rotary_emb", "lm_head"]
    model = dispatch_model(copy.deepcopy(lm.model), device_map=dict.fromkeys(names, "cpu"), force_hooks=True,
                           skip_keys=lm.model._skip_keys_device_placement)
    return LoadedModel(lm.name, lm.source, model, lm.tokenizer, lm.adapter)


def rows(lm: LoadedModel) -> list[GenerationRow]:
    """Steered rows, rows on rank-1 and rank-16 deltas and on an eraser, and plain rows, in one batch."""
    g = torch.Generator().manual_seed(3)
    modules = list(editable_modules(lm))
    n_in, n_out = lm.model.config.intermediate_size, lm.hidden_size

    def delta(layer: int, rank: int) -> LowRankDelta:
        return LowRankDelta(modules[layer], torch.randn(rank, n_in, generator=g), torch.randn(n_out, rank, generator=g))

    eraser = AffineEraser(1, 3 * torch.randn(n_out, 2, generator=g), torch.randn(2, n_out, generator=g) / n_out**0.5,
                          torch.randn(n_out, generator=g))
    variants: list[list[Component]] = [[], [delta(0, 1)], [delta(1, 1)], [delta(0, 16), eraser]]
    return [GenerationRow(list(lm.tokenizer(PROMPTS[i % 4])["input_ids"]), SamplingParams(max_new_tokens=6),
                          [Steering(i % 2, torch.randn(lm.hidden_size, generator=g), 4.0)] if i % 3 else [],
                          variant=variants[i % 4]) for i in range(8)]


def test_a_dispatched_model_generates_the_unsplit_models_tokens_with_steering_and_variants() -> None:
    lm = tiny_lm()
    split = dispatched(lm)
    assert module_device(split.adapter.blocks(split.model)[1]) == torch.device("cpu")
    batch = rows(lm)
    with InterventionRuntime(lm).installed() as runtime:
        expected = generate_batch(lm, batch, runtime)

    def hooks() -> int:
        return sum(len(m._forward_hooks) for m in split.model.modules())

    before = hooks()  # a copy keeps the hooks of the tiny model's shared registry, idle
    with InterventionRuntime(split).installed() as runtime:
        assert split.device == torch.device("cpu")
        assert generate_batch(split, batch, runtime) == expected
        assert hooks() == before + 2 * lm.n_layers
    assert hooks() == before


def test_each_table_puts_a_blocks_tensors_on_the_device_that_block_computes_on() -> None:
    lm = tiny_lm()
    module = list(editable_modules(lm))[1]
    elsewhere = {block_site(1), f"module.{module}"}

    def place(site: str) -> torch.device:
        return META if site in elsewhere else torch.device("cpu")

    vectors = [[Steering(0, torch.ones(lm.hidden_size), 1.0), Steering(1, torch.ones(lm.hidden_size), 1.0)]] * 2
    steering = SteeringTable.build(vectors, hidden=lm.hidden_size, dtype=lm.dtype, device=lm.device, place=place)
    assert steering.additions[0]["all"].device.type == "cpu" and steering.additions[1]["all"].device == META
    delta = LowRankDelta(module, torch.ones(1, 64), torch.ones(32, 1))
    variants = VariantTable.build([[delta], []], device=lm.device, place=place)
    ((stack, index),) = variants.sites[f"module.{module}"][0]
    assert isinstance(stack, DeltaStack) and stack.a_t.device == META and index is not None and index.device == META
    # The hooks' arithmetic on that block's device: masks follow the stream there.
    mask = torch.ones(2, 3, dtype=torch.bool)
    plan = PassPlan(steering, mask, torch.zeros_like(mask), variants)
    assert plan.steer(1, torch.empty(2, 3, lm.hidden_size, device=META)).device == META
    out = variants.apply(f"module.{module}", torch.empty(2, 3, 32, device=META), torch.empty(2, 3, 64, device=META))
    assert out.device == META


def test_the_device_of_a_dispatched_module_is_accelerates_execution_device() -> None:
    module = torch.nn.Linear(2, 2, device=META)
    assert module_device(module) == META
    module._hf_hook = SimpleNamespace(execution_device=torch.device("cpu"))  # type: ignore[assignment]
    assert module_device(module) == torch.device("cpu")
    assert module_device(torch.nn.ReLU()) == torch.device("cpu")


def test_auto_splits_only_over_several_gpus_and_never_offloads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_map("auto") is None  # no GPU here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=100 * 2**30))
    assert split_map("auto") == {"device_map": "sequential", "max_memory": {0: 80 * 2**30, 1: 80 * 2**30}}
    assert split_map("cuda") is None and split_map("cuda:1") is None and split_map("cpu") is None
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert split_map("auto") is None


def test_a_split_load_leaves_placement_to_accelerate(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_lm()
    seen: dict[str, object] = {}

    def from_pretrained(path: str, **kwargs: object) -> LlamaForCausalLM:
        seen.update(kwargs)
        return copy.deepcopy(lm.model)  # type: ignore[return-value]

    monkeypatch.setattr(loading, "split_map", lambda device: {"device_map": "sequential", "max_memory": {0: 1}})
    monkeypatch.setattr(loading, "resolve_device", lambda device: torch.device("cpu"))
    monkeypatch.setattr(loading.AutoTokenizer, "from_pretrained", lambda path, **kwargs: lm.tokenizer)
    monkeypatch.setattr(loading.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr(LlamaForCausalLM, "to", lambda self, *a, **k: pytest.fail("a split model was moved"))
    loaded = loading.load_model("split", "/models/split", device="auto", dtype="float32")
    assert seen["device_map"] == "sequential" and seen["max_memory"] == {0: 1}
    assert loaded.model.training is False

"""Tests for engine.adapters on tiny random-init models of every supported family.

Each property is checked against something the adapter did not compute: hooked
activations from a real forward pass, transformers' own accessors, or the config.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    BertConfig,
    GPT2Config,
    GPTJConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    PreTrainedConfig,
    PreTrainedModel,
    Qwen2Config,
)
from transformers.pytorch_utils import Conv1D

from engine.adapters import (
    ArchitectureAdapter,
    UnsupportedArchitectureError,
    adapter_for,
    linear_bias,
    linear_dims,
    linear_weight,
)

HIDDEN = 32
# Deliberately different from HIDDEN so a swapped (in, out) pair cannot pass by accident.
INTERMEDIATE = 64
LAYERS = 2
VOCAB = 100
ATOL = 1e-5


@dataclass(frozen=True)
class Family:
    """A supported family: how to build its tiny config and what its MLP looks like."""

    family: str
    make_config: Callable[[], PreTrainedConfig]
    n_mlp_in: int


_LLAMA_KWARGS: dict[str, Any] = {
    "hidden_size": HIDDEN,
    "intermediate_size": INTERMEDIATE,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": VOCAB,
    "max_position_embeddings": 64,
}

FAMILIES: dict[str, Family] = {
    "gpt2": Family(
        "gpt2",
        lambda: GPT2Config(
            n_embd=HIDDEN, n_inner=INTERMEDIATE, n_layer=LAYERS, n_head=4, vocab_size=VOCAB, n_positions=64
        ),
        n_mlp_in=1,
    ),
    "llama": Family("llama", lambda: LlamaConfig(**_LLAMA_KWARGS), n_mlp_in=2),
    # Mistral is accepted as an alias of the llama layout.
    "mistral": Family("llama", lambda: MistralConfig(**_LLAMA_KWARGS), n_mlp_in=2),
    "qwen2": Family("qwen2", lambda: Qwen2Config(**_LLAMA_KWARGS), n_mlp_in=2),
    "gptj": Family(
        "gptj",
        lambda: GPTJConfig(
            n_embd=HIDDEN,
            n_inner=INTERMEDIATE,
            n_layer=LAYERS,
            n_head=4,
            rotary_dim=4,
            vocab_size=VOCAB,
            n_positions=64,
        ),
        n_mlp_in=1,
    ),
    "gpt_neox": Family(
        "gpt_neox",
        lambda: GPTNeoXConfig(
            hidden_size=HIDDEN,
            intermediate_size=INTERMEDIATE,
            num_hidden_layers=LAYERS,
            num_attention_heads=4,
            vocab_size=VOCAB,
            max_position_embeddings=64,
        ),
        n_mlp_in=1,
    ),
}


@dataclass
class Tiny:
    """A tiny model plus the facts about it that the tests need."""

    name: str
    spec: Family
    model: PreTrainedModel
    adapter: ArchitectureAdapter
    input_ids: torch.Tensor


def _build(name: str) -> Tiny:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(FAMILIES[name].make_config())
    model.eval()
    input_ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(1))
    return Tiny(name, FAMILIES[name], model, adapter_for(model), input_ids)


@pytest.fixture(scope="module", params=list(FAMILIES))
def tiny(request: pytest.FixtureRequest) -> Tiny:
    return _build(request.param)


class _Recorder:
    """Forward hooks that record (first positional input, output) per module, per call."""

    def __init__(self) -> None:
        self.calls: dict[nn.Module, list[tuple[torch.Tensor, Any]]] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def watch(self, module: nn.Module) -> None:
        self.calls.setdefault(module, [])

        def hook(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            # Every projection, MLP and norm here is called with its input positionally.
            self.calls[mod].append((args[0].detach().clone(), output))

        self._handles.append(module.register_forward_hook(hook))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    rec = _Recorder()
    yield rec
    rec.close()


def _run(tiny: Tiny, **kwargs: Any) -> Any:
    with torch.no_grad():
        return tiny.model(tiny.input_ids, **kwargs)


def _projections(root: nn.Module) -> list[nn.Module]:
    return [m for m in root.modules() if isinstance(m, nn.Linear | Conv1D)]


# --- structure ------------------------------------------------------------------------------


def test_adapter_for_picks_the_expected_family_from_model_and_config(tiny: Tiny) -> None:
    assert tiny.adapter.family == tiny.spec.family
    assert adapter_for(tiny.model.config) is tiny.adapter


def test_blocks_count_and_sizes_match_the_config(tiny: Tiny) -> None:
    config = tiny.model.config
    blocks = tiny.adapter.blocks(tiny.model)
    assert isinstance(blocks, nn.ModuleList)
    assert len(blocks) == config.num_hidden_layers == LAYERS
    assert tiny.adapter.n_layers(tiny.model) == config.num_hidden_layers
    assert tiny.adapter.hidden_size(tiny.model) == config.hidden_size == HIDDEN


def test_blocks_run_in_order_during_the_forward_pass(tiny: Tiny) -> None:
    order: list[int] = []
    blocks = tiny.adapter.blocks(tiny.model)
    handles = [
        block.register_forward_pre_hook(lambda *_, i=i: order.append(i)) for i, block in enumerate(blocks)
    ]
    try:
        _run(tiny)
    finally:
        for handle in handles:
            handle.remove()
    assert order == list(range(LAYERS))


def test_the_base_model_resolves_to_the_same_modules_as_the_wrapper(tiny: Tiny) -> None:
    base = tiny.model.base_model
    assert base is not tiny.model
    assert tiny.adapter.blocks(base) is tiny.adapter.blocks(tiny.model)
    assert tiny.adapter.final_norm(base) is tiny.adapter.final_norm(tiny.model)
    assert tiny.adapter.embedding(base) is tiny.adapter.embedding(tiny.model)


def test_attention_and_mlp_are_distinct_children_of_each_block(tiny: Tiny) -> None:
    for block in tiny.adapter.blocks(tiny.model):
        attention, mlp = tiny.adapter.attention(block), tiny.adapter.mlp(block)
        children = list(block.children())
        assert any(c is attention for c in children)
        assert any(c is mlp for c in children)
        assert attention is not mlp
        assert "Attention" in type(attention).__name__
        assert "MLP" in type(mlp).__name__


def test_embedding_and_unembedding_are_what_transformers_reports(tiny: Tiny) -> None:
    assert tiny.adapter.embedding(tiny.model) is tiny.model.get_input_embeddings()
    assert tiny.adapter.unembedding(tiny.model) is tiny.model.get_output_embeddings()


# --- MLP projections ------------------------------------------------------------------------


def test_mlp_out_weight_reproduces_the_module_output(tiny: Tiny, recorder: _Recorder) -> None:
    outs = [tiny.adapter.mlp_out(block) for block in tiny.adapter.blocks(tiny.model)]
    for module in outs:
        recorder.watch(module)
    _run(tiny)
    for module in outs:
        assert linear_dims(module) == (INTERMEDIATE, HIDDEN)
        [(x, y)] = recorder.calls[module]
        bias = linear_bias(module)
        expected = x @ linear_weight(module).T + (0 if bias is None else bias)
        torch.testing.assert_close(expected, y, atol=ATOL, rtol=0)


def test_mlp_out_output_is_the_whole_mlp_output(tiny: Tiny, recorder: _Recorder) -> None:
    # In eval mode every family's MLP ends with its output projection (dropout is the
    # identity), so this pins mlp_out to the MLP's last projection: e.g. gpt2's mlp.c_proj
    # and not attn.c_proj.
    block = tiny.adapter.blocks(tiny.model)[0]
    mlp, out = tiny.adapter.mlp(block), tiny.adapter.mlp_out(block)
    recorder.watch(mlp)
    recorder.watch(out)
    _run(tiny)
    torch.testing.assert_close(recorder.calls[out][0][1], recorder.calls[mlp][0][1], atol=0, rtol=0)


def test_mlp_in_modules_read_the_mlp_input_and_map_hidden_to_intermediate(
    tiny: Tiny, recorder: _Recorder
) -> None:
    block = tiny.adapter.blocks(tiny.model)[-1]
    mlp, ins = tiny.adapter.mlp(block), tiny.adapter.mlp_in(block)
    assert len(ins) == tiny.spec.n_mlp_in
    assert len({id(m) for m in ins}) == len(ins)
    recorder.watch(mlp)
    for module in ins:
        recorder.watch(module)
    _run(tiny)
    mlp_input = recorder.calls[mlp][0][0]
    for module in ins:
        assert linear_dims(module) == (HIDDEN, INTERMEDIATE)
        [(x, y)] = recorder.calls[module]
        torch.testing.assert_close(x, mlp_input, atol=0, rtol=0)
        bias = linear_bias(module)
        expected = x @ linear_weight(module).T + (0 if bias is None else bias)
        torch.testing.assert_close(expected, y, atol=ATOL, rtol=0)


def test_linear_weight_reproduces_every_projection_in_a_block(tiny: Tiny, recorder: _Recorder) -> None:
    # Covers square projections too (e.g. gpt2's attn.c_proj), where a forgotten Conv1D
    # transpose would not raise a shape error and could only show up as wrong values.
    projections = _projections(tiny.adapter.blocks(tiny.model)[0])
    assert projections
    for module in projections:
        recorder.watch(module)
    _run(tiny)
    for module in projections:
        in_features, out_features = linear_dims(module)
        weight = linear_weight(module)
        assert weight.shape == (out_features, in_features)
        for x, y in recorder.calls[module]:
            bias = linear_bias(module)
            expected = x @ weight.T + (0 if bias is None else bias)
            torch.testing.assert_close(expected, y, atol=ATOL, rtol=0)


# --- residual stream ends -------------------------------------------------------------------


def test_final_norm_output_through_the_unembedding_reproduces_the_logits(
    tiny: Tiny, recorder: _Recorder
) -> None:
    norm = tiny.adapter.final_norm(tiny.model)
    recorder.watch(norm)
    logits = _run(tiny).logits
    [(_, normed)] = recorder.calls[norm]
    with torch.no_grad():
        reproduced = tiny.adapter.unembedding(tiny.model)(normed)
    assert logits.shape == (*tiny.input_ids.shape, VOCAB)
    torch.testing.assert_close(reproduced, logits, atol=ATOL, rtol=0)


def test_embedding_of_the_input_ids_is_the_first_hidden_state(tiny: Tiny) -> None:
    hidden_states = _run(tiny, output_hidden_states=True).hidden_states
    assert len(hidden_states) == LAYERS + 1
    first = hidden_states[0]
    if tiny.name == "gpt2":
        # GPT-2 adds learned absolute position embeddings (wpe) to the token embedding
        # before the first block; the adapter's embedding is the token part only (wte), so
        # remove the position part. The rotary families (llama, mistral, qwen2, gptj,
        # gpt_neox) apply positions inside attention and feed the raw token embedding in.
        positions = torch.arange(tiny.input_ids.shape[1])
        first = first - tiny.model.get_submodule("transformer.wpe")(positions)
    with torch.no_grad():
        embedded = tiny.adapter.embedding(tiny.model)(tiny.input_ids)
    assert embedded.shape == (*tiny.input_ids.shape, HIDDEN)
    torch.testing.assert_close(embedded, first, atol=ATOL, rtol=0)


# --- linear_weight is a view ----------------------------------------------------------------


def test_linear_weight_returns_a_view_so_in_place_edits_change_the_module_output(tiny: Tiny) -> None:
    # A copy of the projection keeps the shared module-scoped model untouched.
    module = copy.deepcopy(tiny.adapter.mlp_out(tiny.adapter.blocks(tiny.model)[0]))
    x = torch.randn(3, INTERMEDIATE, generator=torch.Generator().manual_seed(2))
    row, col, delta = 5, 11, 0.75
    with torch.no_grad():
        before = module(x)
        linear_weight(module)[row, col] += delta
        after = module(x)
    expected_change = torch.zeros_like(before)
    expected_change[:, row] = delta * x[:, col]
    torch.testing.assert_close(after - before, expected_change, atol=ATOL, rtol=0)


def test_linear_helpers_handle_linear_and_conv1d_alike() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(3, 5)
    conv = Conv1D(5, 3)  # Conv1D(nf=out, nx=in) stores its weight as [in, out]
    assert linear_dims(linear) == linear_dims(conv) == (3, 5)
    assert linear_weight(linear).shape == linear_weight(conv).shape == (5, 3)
    assert linear_weight(conv).data_ptr() == conv.weight.data_ptr()
    assert linear_bias(nn.Linear(3, 5, bias=False)) is None
    assert linear_bias(conv) is conv.bias
    with pytest.raises(TypeError):
        linear_weight(nn.LayerNorm(3))


# --- unsupported architectures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "model_type"),
    [
        (BertConfig(), "bert"),
        (SimpleNamespace(model_type="not_a_real_arch"), "not_a_real_arch"),
        (SimpleNamespace(), "None"),
    ],
    ids=["bert", "fake-model-type", "no-model-type"],
)
def test_an_unsupported_model_type_raises_naming_the_type_and_the_supported_ones(
    config: Any, model_type: str
) -> None:
    with pytest.raises(UnsupportedArchitectureError, match=model_type) as info:
        adapter_for(config)
    assert isinstance(info.value, ValueError)
    for supported in ("gpt2", "llama", "mistral", "qwen2", "gptj", "gpt_neox"):
        assert supported in str(info.value)

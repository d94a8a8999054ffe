"""Shared by the editing tests: merged weight copies (the independent reference) and small fixtures."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from engine.adapters import adapter_for, linear_dims, linear_weight
from engine.components import LowRankDelta
from engine.loading import LoadedModel
from tests.fakes import tiny_tokenizer

#: Hand-written context templates for tiny models (sampling them is tested on its own).
TINY_TEMPLATES = ["{}", "France is a country. {}", "One, two, three. {}"]


@contextmanager
def merged(lm: LoadedModel, deltas: Sequence[LowRankDelta]) -> Iterator[None]:
    """The deltas added into the weights themselves (``W += B A``), restored afterwards."""
    modules = dict(lm.model.named_modules())
    saved = {d.module: linear_weight(modules[d.module]).detach().clone() for d in deltas}
    try:
        with torch.no_grad():
            for d in deltas:
                weight = linear_weight(modules[d.module])
                weight += (d.b.double() @ d.a.double()).to(weight.dtype)
        yield
    finally:
        with torch.no_grad():
            for name, weight in saved.items():
                linear_weight(modules[name]).copy_(weight)


def hook_total(lm: LoadedModel) -> int:
    """Forward hooks registered on any module of the model (the runtime's and anyone else's)."""
    return sum(len(module._forward_hooks) for module in lm.model.modules())


def random_delta(lm: LoadedModel, layer: int, rank: int, seed: int, scale: float = 1.0) -> LowRankDelta:
    """A visible random delta on block ``layer``'s MLP output projection."""
    module = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[layer])
    name = next(n for n, m in lm.model.named_modules() if m is module)
    n_in, n_out = linear_dims(module)
    g = torch.Generator().manual_seed(seed)
    return LowRankDelta(name, torch.randn(rank, n_in, generator=g) * scale, torch.randn(n_out, rank, generator=g))


@functools.cache
def editable_lm(family: str) -> LoadedModel:
    """A tiny random model (Llama or GPT-2 layout, three blocks) whose outputs an edit can move.

    The shared tiny fakes use the default initialisation (std 0.02), where the logits hardly depend on
    the residual stream, so no edit can change a prediction; a wider initialisation can.
    """
    tokenizer = tiny_tokenizer()
    torch.manual_seed(7)
    if family == "llama":
        model: PreTrainedModel = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2,
            bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    else:
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=len(tokenizer), n_embd=32, n_layer=3, n_head=4, n_positions=128, initializer_range=0.2,
            bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=f"editable-{family}", source=f"test:editable-{family}", model=model,
                       tokenizer=tokenizer, adapter=adapter_for(model))

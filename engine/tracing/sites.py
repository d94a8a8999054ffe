"""Where activations are read and written: the residual stream, the MLP output, the attention output.

A *site* is one module's output at one layer: ``residual`` is block ``l``'s output (the residual
stream after the block, as steering and the lens see it), ``mlp`` and ``attention`` are the outputs
of the block's MLP and self-attention modules, i.e. what each adds to the residual stream. The
architecture adapter says where those modules are; this module only hooks them.

Hooks live exactly as long as a ``with output_hooks(...)`` block (removed in ``finally``), and act
only on forward passes of the thread that installed them: the model is shared, and another
thread's pass (a generation in the API) must go through untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

from engine.loading import LoadedModel

Kind = Literal["residual", "mlp", "attention"]
KINDS: tuple[Kind, ...] = ("residual", "mlp", "attention")

#: Maps a site's output ``[batch, seq, hidden]`` to a replacement, or returns None to leave it.
OutputHook = Callable[[torch.Tensor], torch.Tensor | None]


def check_kinds(kinds: Sequence[str]) -> None:
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {', '.join(KINDS)}; got {list(kinds)}")


def site_module(lm: LoadedModel, kind: Kind, layer: int) -> nn.Module:
    """The module whose output is the site (``kind``, ``layer``)."""
    block = lm.adapter.blocks(lm.model)[layer]
    if kind == "residual":
        return block
    return lm.adapter.mlp(block) if kind == "mlp" else lm.adapter.attention(block)


def output_tensor(output: Any) -> torch.Tensor:
    """The hidden states in a module's output: the tensor itself, or the first element of a tuple
    (attention modules return ``(output, weights)``, some blocks ``(hidden, cache)``)."""
    tensor = output[0] if isinstance(output, tuple) else output
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"cannot find the hidden states in a {type(output).__name__} output")
    return tensor


def with_output(output: Any, tensor: torch.Tensor) -> Any:
    """``output`` with its hidden states replaced by ``tensor`` (same structure)."""
    return (tensor, *output[1:]) if isinstance(output, tuple) else tensor


@contextmanager
def output_hooks(lm: LoadedModel, hooks: Mapping[tuple[Kind, int], OutputHook]) -> Iterator[None]:
    """Install forward hooks on sites for the duration of the block.

    Args:
        lm: the model.
        hooks: (kind, layer) -> function of the site's hidden states ``[batch, seq, hidden]``; a
            returned tensor replaces them for the rest of the pass.
    """
    owner = threading.get_ident()

    def wrap(fn: OutputHook) -> Callable[[nn.Module, Any, Any], Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if threading.get_ident() != owner:
                return None
            replaced = fn(output_tensor(output))
            return None if replaced is None else with_output(output, replaced)
        return hook

    handles = []
    try:
        for (kind, layer), fn in hooks.items():
            handles.append(site_module(lm, kind, layer).register_forward_hook(wrap(fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.inference_mode()
def record_sites(
    lm: LoadedModel,
    inputs_embeds: torch.Tensor,
    kinds: tuple[Kind, ...] | list[Kind],
    *,
    positions: list[int] | None = None,
) -> tuple[dict[Kind, torch.Tensor], torch.Tensor]:
    """One forward pass that records every layer's output at each site kind.

    Args:
        lm: the model.
        inputs_embeds: ``[1, seq, hidden]`` token embeddings (what ``embedding(input_ids)`` gives;
            GPT-2 adds its position embeddings itself).
        kinds: the site kinds to record.
        positions: record only these positions (all when None).

    Returns:
        ``(recorded, logits)``: kind -> ``[n_layers, n_positions, hidden]`` in the model's dtype,
        and the last position's logits ``[vocab]`` (computed by `last_logits`, as restorations are).
    """
    check_kinds(list(kinds))
    n_layers = lm.n_layers
    recorded: dict[Kind, list[torch.Tensor | None]] = {kind: [None] * n_layers for kind in kinds}
    index = torch.tensor(positions, device=lm.device) if positions is not None else None

    def keep(kind: Kind, layer: int) -> OutputHook:
        def fn(hidden: torch.Tensor) -> None:
            row = hidden[0] if index is None else hidden[0, index]
            recorded[kind][layer] = row.detach().clone()
        return fn

    hooks = {(kind, layer): keep(kind, layer) for kind in kinds for layer in range(n_layers)}
    with output_hooks(lm, hooks):
        logits = last_logits(lm, inputs_embeds=inputs_embeds, use_cache=False)[0]
    stacked = {}
    for kind, rows in recorded.items():
        if any(row is None for row in rows):
            raise RuntimeError(f"a {kind} site was not reached in the forward pass")
        stacked[kind] = torch.stack([row for row in rows if row is not None])
    return stacked, logits


def last_logits(lm: LoadedModel, **inputs: Any) -> torch.Tensor:
    """Run the model and return the last position's logits ``[batch, vocab]``.

    The base model's output is already final-normed; the unembedding is applied here to the last
    position as one contiguous ``[batch, hidden]`` matrix: transformers' ``logits_to_keep`` hands
    it a strided 3D slice, which CPU matmul serves with a batched kernel several times slower.
    """
    hidden = lm.model.base_model(**inputs).last_hidden_state[:, -1]
    return lm.adapter.unembedding(lm.model)(hidden.contiguous())


def embed(lm: LoadedModel, input_ids: list[int]) -> torch.Tensor:
    """Token embeddings ``[1, seq, hidden]`` of ``input_ids`` (no position embeddings)."""
    ids = torch.tensor([input_ids], device=lm.device)
    with torch.inference_mode():
        return lm.adapter.embedding(lm.model)(ids)

"""Where activations are read and written: one name for each place in the model.

A `Site` is one tensor of one block's forward pass:

- ``residual``: block ``l``'s output, the residual stream after the block (what steering adds to
  and the logit lens decodes);
- ``attention``, ``mlp``: the outputs of the block's self-attention and MLP modules, i.e. what each
  adds to the residual stream;
- ``mlp_key``: the *input* of the block's MLP output projection, what ROME and MEMIT call the key
  ``k``;
- ``mlp_value``: the output of that projection, ``v = W k``, where a weight delta ``W + B A`` applies
  (in every supported family it equals ``mlp``, but it is hooked on the projection itself, whose
  input the delta needs).

The architecture adapter says where the modules are; `locate` maps a site to its module and to
which side of it (input or output) holds the tensor. Variants store their components' sites as
strings (``block.<l>``, ``module.<qualified name>``, see `engine.components`); `component_site`
maps a site to that stored form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import nn

from engine.components import MODULE_SITE, block_site
from engine.loading import LoadedModel

SiteKind = Literal["residual", "attention", "mlp", "mlp_key", "mlp_value"]
SITE_KINDS: tuple[SiteKind, ...] = get_args(SiteKind)
#: Which side of its module a site's tensor is: the module's (first) input or its output.
Side = Literal["input", "output"]


@dataclass(frozen=True)
class Site:
    """One tensor of the forward pass: ``kind`` at block ``layer``.

    Attributes:
        kind: see the module docstring.
        layer: block index, ``0 <= layer < n_layers``.
    """

    kind: SiteKind
    layer: int

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise ValueError(f"unknown site kind {self.kind!r}; known: {', '.join(SITE_KINDS)}")
        if self.layer < 0:
            raise ValueError(f"a site's layer is a block index, not {self.layer}")

    def __str__(self) -> str:
        return f"{self.kind}@{self.layer}"


def locate(lm: LoadedModel, site: Site) -> tuple[nn.Module, Side]:
    """The module that holds ``site``, and whether the site is that module's input or output.

    Raises:
        ValueError: the layer is not one of the model's blocks.
    """
    blocks = lm.adapter.blocks(lm.model)
    if site.layer >= len(blocks):
        raise ValueError(f"site {site} is outside the model's blocks 0..{len(blocks) - 1}")
    block = blocks[site.layer]
    if site.kind == "residual":
        return block, "output"
    if site.kind == "attention":
        return lm.adapter.attention(block), "output"
    if site.kind == "mlp":
        return lm.adapter.mlp(block), "output"
    return lm.adapter.mlp_out(block), "input" if site.kind == "mlp_key" else "output"


def hidden_of(value: Any) -> torch.Tensor:
    """The hidden states ``[batch, seq, dim]`` in a module's output or positional inputs: the tensor
    itself, or the first element of a tuple (attention modules return ``(output, weights)``, some
    blocks ``(hidden, cache)``, and a module's inputs come as a tuple)."""
    tensor = value[0] if isinstance(value, tuple) else value
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"cannot find the hidden states in a {type(value).__name__}")
    return tensor


def with_hidden(value: Any, tensor: torch.Tensor) -> Any:
    """``value`` (as `hidden_of` reads it) with its hidden states replaced by ``tensor``, same structure."""
    return (tensor, *value[1:]) if isinstance(value, tuple) else tensor


def mlp_out_names(lm: LoadedModel) -> list[str]:
    """Qualified names of the MLP output projections, by block (``model.layers.3.mlp.down_proj``)."""
    names = {id(module): name for name, module in lm.model.named_modules()}
    return [names[id(lm.adapter.mlp_out(block))] for block in lm.adapter.blocks(lm.model)]


def component_site(lm: LoadedModel, site: Site) -> str:
    """The string a variant component stores for ``site``: ``block.<l>`` or ``module.<qualified name>``.

    Raises:
        ValueError: no component kind applies at this kind of site.
    """
    if site.kind == "residual":
        return block_site(site.layer)
    if site.kind == "mlp_value":
        return f"{MODULE_SITE}{mlp_out_names(lm)[site.layer]}"
    raise ValueError(f"variant components apply at residual and mlp_value sites, not at {site}")

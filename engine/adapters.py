"""Architecture adapters: where each model family keeps its parts.

Every engine operation (explaining, steering, editing, erasing) needs to find the
transformer blocks, the MLP projections, the final norm and the (un)embedding of a
Hugging Face causal LM. Those live under different attribute names per family, so
this module is the single place that knows them; everything else asks an
:class:`ArchitectureAdapter`.

The attribute paths below were read from the transformers 5.23 modelling code, not
guessed. Note in particular that GPT-NeoX's output head is ``lm_head`` in 5.x: old
checkpoints call it ``embed_out`` and are renamed on load.

GPT-2 stores its projections as ``transformers.pytorch_utils.Conv1D``, whose weight is
``[in_features, out_features]`` (transposed relative to ``nn.Linear``).
:func:`linear_weight`, :func:`linear_bias` and :func:`linear_dims` hide that difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.pytorch_utils import Conv1D

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "ArchitectureAdapter",
    "UnsupportedArchitectureError",
    "adapter_for",
    "linear_bias",
    "linear_dims",
    "linear_weight",
]


class UnsupportedArchitectureError(ValueError):
    """Raised when no adapter knows the layout of a model's ``config.model_type``."""

    def __init__(self, model_type: str | None) -> None:
        self.model_type = model_type
        supported = ", ".join(sorted(_ADAPTERS))
        super().__init__(f"unsupported model_type {model_type!r}; supported model types: {supported}")


@dataclass(frozen=True)
class ArchitectureAdapter:
    """Where one model family keeps its blocks, MLP, norms and embeddings.

    All private fields are dotted attribute paths. ``_base`` is relative to the causal-LM
    wrapper; block, final-norm and embedding paths are relative to the base model; attention
    and MLP paths are relative to a block; MLP projection paths are relative to the MLP; the
    unembedding path is relative to the wrapper (the base model has no LM head).

    Attributes:
        family: Short family name, e.g. ``"llama"``.
    """

    family: str
    _base: str
    _blocks: str
    _attention: str
    _mlp: str
    _mlp_in: tuple[str, ...]
    _mlp_out: str
    _final_norm: str
    _embedding: str
    _unembedding: str = "lm_head"

    def _base_model(self, model: nn.Module) -> nn.Module:
        # Accept both the CausalLM wrapper and a bare base model (e.g. GPT2Model), which
        # has no ``transformer``/``model`` child of its own.
        base = getattr(model, self._base, None)
        return base if isinstance(base, nn.Module) else model

    def _get(self, root: nn.Module, path: str) -> nn.Module:
        try:
            return root.get_submodule(path)
        except AttributeError as err:
            raise AttributeError(
                f"{type(root).__name__} has no submodule {path!r} expected by the {self.family!r} adapter"
            ) from err

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        """Return the transformer blocks, in forward order.

        Args:
            model: A causal-LM wrapper (e.g. ``LlamaForCausalLM``) or its base model.

        Returns:
            The model's own ``nn.ModuleList`` of blocks (not a copy).
        """
        blocks = self._get(self._base_model(model), self._blocks)
        if not isinstance(blocks, nn.ModuleList):
            raise TypeError(f"expected nn.ModuleList at {self._blocks!r}, got {type(blocks).__name__}")
        return blocks

    def attention(self, block: nn.Module) -> nn.Module:
        """Return the self-attention module of one block."""
        return self._get(block, self._attention)

    def mlp(self, block: nn.Module) -> nn.Module:
        """Return the MLP (feed-forward) module of one block."""
        return self._get(block, self._mlp)

    def mlp_in(self, block: nn.Module) -> list[nn.Module]:
        """Return the MLP projections that read the (normed) residual stream.

        Each maps ``[..., hidden_size] -> [..., intermediate_size]``: ``[gate_proj, up_proj]``
        for gated (llama/qwen2) MLPs, a single projection otherwise.
        """
        mlp = self.mlp(block)
        return [self._get(mlp, path) for path in self._mlp_in]

    def mlp_out(self, block: nn.Module) -> nn.Module:
        """Return the MLP projection that writes back to the residual stream.

        Maps ``[..., intermediate_size] -> [..., hidden_size]``. For GPT-2 this is
        ``mlp.c_proj``, not the attention's ``attn.c_proj`` of the same name.
        """
        return self._get(self.mlp(block), self._mlp_out)

    def final_norm(self, model: nn.Module) -> nn.Module:
        """Return the norm applied to the residual stream before the unembedding."""
        return self._get(self._base_model(model), self._final_norm)

    def embedding(self, model: nn.Module) -> nn.Embedding:
        """Return the token embedding (``[vocab_size, hidden_size]``), without position embeddings."""
        emb = self._get(self._base_model(model), self._embedding)
        if not isinstance(emb, nn.Embedding):
            raise TypeError(f"expected nn.Embedding at {self._embedding!r}, got {type(emb).__name__}")
        return emb

    def unembedding(self, model: nn.Module) -> nn.Module:
        """Return the LM head mapping ``[..., hidden_size] -> [..., vocab_size]``.

        Args:
            model: The causal-LM wrapper; a bare base model has no LM head.
        """
        return self._get(model, self._unembedding)

    def n_layers(self, model: nn.Module) -> int:
        """Return the number of transformer blocks, counted from the module tree."""
        return len(self.blocks(model))

    def hidden_size(self, model: nn.Module) -> int:
        """Return the residual-stream width, read from the token embedding."""
        # Read from the weights rather than the config: config attribute names differ
        # (n_embd vs hidden_size) and the modules are what hooks actually see.
        return self.embedding(model).embedding_dim


def _llama_like(family: str) -> ArchitectureAdapter:
    # Llama, Mistral and Qwen2 share one layout (gated MLP, RMSNorm under ``model.``).
    return ArchitectureAdapter(
        family=family,
        _base="model",
        _blocks="layers",
        _attention="self_attn",
        _mlp="mlp",
        _mlp_in=("gate_proj", "up_proj"),
        _mlp_out="down_proj",
        _final_norm="norm",
        _embedding="embed_tokens",
    )


_LLAMA = _llama_like("llama")
_QWEN2 = _llama_like("qwen2")
_GPT2 = ArchitectureAdapter(
    family="gpt2",
    _base="transformer",
    _blocks="h",
    _attention="attn",
    _mlp="mlp",
    _mlp_in=("c_fc",),
    _mlp_out="c_proj",
    _final_norm="ln_f",
    _embedding="wte",
)
_GPTJ = ArchitectureAdapter(
    family="gptj",
    _base="transformer",
    _blocks="h",
    _attention="attn",
    _mlp="mlp",
    _mlp_in=("fc_in",),
    _mlp_out="fc_out",
    _final_norm="ln_f",
    _embedding="wte",
)
_GPT_NEOX = ArchitectureAdapter(
    family="gpt_neox",
    _base="gpt_neox",
    _blocks="layers",
    _attention="attention",
    _mlp="mlp",
    _mlp_in=("dense_h_to_4h",),
    _mlp_out="dense_4h_to_h",
    _final_norm="final_layer_norm",
    _embedding="embed_in",
)

# Mistral shares LlamaForCausalLM's module layout exactly, so it reuses the llama adapter.
_ADAPTERS: dict[str, ArchitectureAdapter] = {
    "gpt2": _GPT2,
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _QWEN2,
    "gptj": _GPTJ,
    "gpt_neox": _GPT_NEOX,
}

SUPPORTED_MODEL_TYPES: frozenset[str] = frozenset(_ADAPTERS)


def adapter_for(model_or_config: PreTrainedModel | PreTrainedConfig) -> ArchitectureAdapter:
    """Return the adapter for a model or its config, keyed on ``config.model_type``.

    Args:
        model_or_config: A loaded model (its ``.config`` is used) or a config.

    Returns:
        The family's adapter.

    Raises:
        UnsupportedArchitectureError: If ``model_type`` is missing or not supported.
    """
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    adapter = _ADAPTERS.get(model_type) if isinstance(model_type, str) else None
    if adapter is None:
        raise UnsupportedArchitectureError(model_type)
    return adapter


def linear_weight(module: nn.Module) -> torch.Tensor:
    """Return a projection's weight as ``[out_features, in_features]``.

    Works for ``nn.Linear`` and for GPT-2's ``Conv1D`` (stored ``[in, out]``, so it is
    transposed here). The result is the parameter itself or a transposed view of it, never
    a copy: in-place edits through it (under ``torch.no_grad()``, since it is a leaf that
    requires grad) change the model, and gradients still flow to the parameter.

    Args:
        module: An ``nn.Linear`` or ``Conv1D``.

    Returns:
        Weight tensor of shape ``[out_features, in_features]``, so ``x @ W.T + b`` is the
        module's output for input ``x`` of shape ``[..., in_features]``.

    Raises:
        TypeError: If the module is neither kind of projection.
    """
    if isinstance(module, nn.Linear):
        return module.weight
    if isinstance(module, Conv1D):
        return module.weight.T
    raise TypeError(f"not a linear projection: {type(module).__name__}")


def linear_bias(module: nn.Module) -> torch.Tensor | None:
    """Return a projection's bias (shape ``[out_features]``), or ``None`` if it has none.

    Args:
        module: An ``nn.Linear`` or ``Conv1D``.

    Raises:
        TypeError: If the module is neither kind of projection.
    """
    if isinstance(module, nn.Linear | Conv1D):
        bias = module.bias
        return bias if isinstance(bias, torch.Tensor) else None
    raise TypeError(f"not a linear projection: {type(module).__name__}")


def linear_dims(module: nn.Module) -> tuple[int, int]:
    """Return ``(in_features, out_features)`` of a projection.

    Args:
        module: An ``nn.Linear`` or ``Conv1D`` (``Conv1D(nf, nx)`` maps ``nx -> nf``).

    Raises:
        TypeError: If the module is neither kind of projection.
    """
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return int(module.nx), int(module.nf)
    raise TypeError(f"not a linear projection: {type(module).__name__}")

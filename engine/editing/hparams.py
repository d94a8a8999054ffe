"""Hyperparameters of ROME and MEMIT: defaults per architecture, validated overrides, manifest JSON.

Layers are chosen relative to the model's depth, from the published settings (ROME: GPT-2 XL
block 17 of 48, GPT-J block 5 of 28, Llama-2-7B block 5 of 32; MEMIT: GPT-2 XL blocks 13-17,
GPT-J 3-8, Llama 4-8) and, for the Llama family, from a measurement on SmolLM2-135M (30 blocks;
see docs/architecture.md, "Knowledge editing"). The value optimisation follows the papers' defaults
(Adam, learning rate 0.5, KL factor 0.0625, norm clamp) with the weight decay of the Llama ports.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Method = Literal["rome", "memit"]
METHODS: tuple[Method, ...] = ("rome", "memit")


class HyperparameterError(ValueError):
    """An override names an unknown field or gives it a value out of range.

    Attributes:
        field: the offending field's name (for a problem's ``field``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class EditHyperparams:
    """Everything that decides what an edit computes (recorded in the variant's manifest).

    Attributes:
        method: ``rome`` or ``memit``.
        n_layers: the model's number of blocks (layers are checked against it).
        layers: blocks whose MLP output projection is edited (ROME: one; MEMIT: ascending).
        v_lr: Adam learning rate of the value optimisation.
        v_steps: most optimisation steps per fact.
        v_weight_decay: weight of ``||delta|| / ||v||^2`` in the loss.
        v_stop_loss: a fact whose loss falls below this stops optimising (ROME's 5e-2).
        clamp_norm_factor: ``||delta||`` is kept at most this times the original value's norm.
        kl_factor: weight of the KL "essence" term on ``"{subject} is a"``.
        mom2_weight: MEMIT's ``lambda`` in ``(lambda C + K K^T)^-1`` (unused by ROME).
        mom2_samples: keys (token positions) in the covariance statistics.
        mom2_seed: seed of the self-sampled statistics corpus.
        template_seed: seed of the context templates.
        n_templates: context templates used (the first ``n`` of the stored list, ``"{}"`` first).
        v_batch_facts: facts optimised together in one batch (MEMIT; memory bound).
    """

    method: Method
    n_layers: int
    layers: tuple[int, ...]
    v_lr: float = 0.5
    v_steps: int = 25
    v_weight_decay: float = 1e-3
    v_stop_loss: float = 5e-2
    clamp_norm_factor: float = 4.0
    kl_factor: float = 0.0625
    mom2_weight: float = 15000.0
    mom2_samples: int = 100_000
    mom2_seed: int = 0
    template_seed: int = 0
    n_templates: int = 21
    v_batch_facts: int = 16


#: Fields an override may not change: they describe the model and the method, not a choice.
FIXED = frozenset({"method", "n_layers"})

# (ROME layer as a fraction of depth, MEMIT first layer as a fraction, MEMIT layer count)
_LAYERS: dict[str, tuple[float, float, int]] = {
    "gpt2": (17 / 48, 13 / 48, 5),
    "llama": (4 / 30, 3 / 30, 5),
    "gptj": (5 / 28, 3 / 28, 6),
    "gpt_neox": (5 / 32, 4 / 32, 5),
}
_FAMILIES = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama", "gptj": "gptj",
             "gpt_neox": "gpt_neox"}
# The GPT family's published value settings (Meng et al.); the Llama ports use a smaller decay.
# MEMIT's lambda weighs C (a mean over tokens) against K K^T (a sum over facts): a typical key gets
# k^T (lambda C)^-1 k ~ d / lambda, so the right lambda grows with the key width d. 1000 was measured
# on SmolLM2-135M (d = 1536; 50 facts, self-sampled statistics; see docs/architecture.md): 4000 wrote
# too little when a job held only a few facts.
_VALUES: dict[str, dict[str, float]] = {
    "gpt2": {"v_weight_decay": 0.5, "mom2_weight": 20000.0},
    "gptj": {"v_weight_decay": 0.5, "mom2_weight": 15000.0},
    "llama": {"mom2_weight": 1000.0},
}


def default_hparams(model_type: str, method: Method, n_layers: int) -> EditHyperparams:
    """The defaults for a model family and method at a given depth.

    Args:
        model_type: ``config.model_type`` (gpt2, llama, mistral, qwen2, gptj, gpt_neox).
        method: ``rome`` or ``memit``.
        n_layers: number of blocks.

    Raises:
        ValueError: an unknown model type or method, or a model with no blocks.
    """
    family = _FAMILIES.get(model_type)
    if family is None:
        raise ValueError(f"no editing defaults for model_type {model_type!r}; known: {', '.join(sorted(_FAMILIES))}")
    if method not in METHODS:
        raise ValueError(f"unknown editing method {method!r}; known: {', '.join(METHODS)}")
    if n_layers < 1:
        raise ValueError("a model needs at least one block to edit")
    rome_at, memit_from, memit_count = _LAYERS[family]
    if method == "rome":
        layers: tuple[int, ...] = (min(n_layers - 1, round(rome_at * n_layers)),)
        extra: dict[str, Any] = {"n_templates": 21, "clamp_norm_factor": 4.0}
    else:
        count = min(memit_count, n_layers)
        first = min(round(memit_from * n_layers), n_layers - count)
        layers = tuple(range(first, first + count))
        # MEMIT's own settings: 6 templates per fact (ROME used 21) and a tighter clamp.
        extra = {"n_templates": 6, "clamp_norm_factor": 0.75 if family in ("gpt2", "gptj") else 4.0}
    return EditHyperparams(method=method, n_layers=n_layers, layers=layers, **{**_VALUES.get(family, {}), **extra})


def with_overrides(hp: EditHyperparams, overrides: Mapping[str, Any]) -> EditHyperparams:
    """``hp`` with some fields replaced, each checked.

    Raises:
        HyperparameterError: an unknown or fixed field, a value of the wrong type, or out of range
            (a layer outside the model, ROME with other than one layer, a non-positive rate...).
    """
    known = {f.name: f for f in dataclasses.fields(EditHyperparams)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise HyperparameterError(name, f"unknown hyperparameter; known: "
                                            f"{', '.join(sorted(set(known) - FIXED))}")
        if name in FIXED:
            raise HyperparameterError(name, "is set by the model and the method, not by an override")
        changes[name] = _coerce(name, value, type(getattr(hp, name)))
    result = dataclasses.replace(hp, **changes)
    check(result)
    return result


def check(hp: EditHyperparams) -> None:
    """Refuse hyperparameters that cannot run.

    Raises:
        HyperparameterError: naming the first offending field.
    """
    if not hp.layers:
        raise HyperparameterError("layers", "needs at least one layer")
    if any(not 0 <= layer < hp.n_layers for layer in hp.layers):
        raise HyperparameterError("layers", f"every layer must be in 0..{hp.n_layers - 1}; got {list(hp.layers)}")
    if list(hp.layers) != sorted(set(hp.layers)):
        raise HyperparameterError("layers", f"layers must be strictly ascending; got {list(hp.layers)}")
    if hp.method == "rome" and len(hp.layers) != 1:
        raise HyperparameterError("layers", f"ROME edits exactly one layer; got {list(hp.layers)}")
    positive = ("v_lr", "v_stop_loss", "clamp_norm_factor", "mom2_weight")
    for name in positive:
        if not getattr(hp, name) > 0:
            raise HyperparameterError(name, f"must be positive; got {getattr(hp, name)}")
    for name in ("v_weight_decay", "kl_factor"):
        if not getattr(hp, name) >= 0:
            raise HyperparameterError(name, f"must be zero or positive; got {getattr(hp, name)}")
    for name, low in (("v_steps", 1), ("mom2_samples", 1), ("n_templates", 1), ("v_batch_facts", 1),
                      ("mom2_seed", 0), ("template_seed", 0)):
        if getattr(hp, name) < low:
            raise HyperparameterError(name, f"must be at least {low}; got {getattr(hp, name)}")


def hparams_dict(hp: EditHyperparams) -> dict[str, Any]:
    """The hyperparameters as JSON values (layers as a list), for the variant's manifest."""
    values = dataclasses.asdict(hp)
    values["layers"] = list(hp.layers)
    return values


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is tuple:  # layers: a list of ints (or a single int)
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in items):
            raise HyperparameterError(name, f"must be a list of block indices; got {value!r}")
        return tuple(items)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise HyperparameterError(name, f"must be an integer; got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise HyperparameterError(name, f"must be a finite number; got {value!r}")
        return float(value)
    raise HyperparameterError(name, "cannot be overridden")

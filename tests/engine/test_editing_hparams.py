"""Editing hyperparameters: defaults per architecture, overrides that name the field they refuse."""

from __future__ import annotations

import json

import pytest

from engine.adapters import SUPPORTED_MODEL_TYPES
from engine.editing.hparams import (
    EditHyperparams,
    HyperparameterError,
    default_hparams,
    hparams_dict,
    with_overrides,
)


@pytest.mark.parametrize("model_type", sorted(SUPPORTED_MODEL_TYPES))
@pytest.mark.parametrize("n_layers", [2, 12, 30, 48])
def test_every_supported_architecture_has_defaults_inside_the_model(model_type: str, n_layers: int) -> None:
    rome = default_hparams(model_type, "rome", n_layers)
    memit = default_hparams(model_type, "memit", n_layers)
    assert len(rome.layers) == 1 and 0 <= rome.layers[0] < n_layers
    assert all(0 <= layer < n_layers for layer in memit.layers)
    assert list(memit.layers) == list(range(memit.layers[0], memit.layers[0] + len(memit.layers)))
    assert len(memit.layers) == min(n_layers, 6 if model_type == "gptj" else 5)


def test_rome_edits_an_early_middle_layer_and_memit_a_range_around_it() -> None:
    rome = default_hparams("llama", "rome", 30)
    memit = default_hparams("llama", "memit", 30)
    assert 2 <= rome.layers[0] <= 8  # where causal tracing puts the subject's MLPs on SmolLM2
    assert memit.layers[0] <= rome.layers[0] <= memit.layers[-1]
    assert default_hparams("gpt2", "rome", 48).layers == (17,)  # the paper's GPT-2 XL layer
    assert default_hparams("gptj", "memit", 28).layers == (3, 4, 5, 6, 7, 8)  # MEMIT's GPT-J range


def test_an_unknown_architecture_or_method_is_refused() -> None:
    with pytest.raises(ValueError, match="model_type 'bert'"):
        default_hparams("bert", "rome", 12)
    with pytest.raises(ValueError, match="method"):
        default_hparams("llama", "ft", 12)  # type: ignore[arg-type]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"learning_rate": 0.1}, "learning_rate"),
    ({"layers": [30]}, "layers"),
    ({"layers": [-1]}, "layers"),
    ({"layers": [3, 4]}, "layers"),  # ROME edits one layer
    ({"layers": []}, "layers"),
    ({"layers": "4"}, "layers"),
    ({"v_lr": 0}, "v_lr"),
    ({"v_lr": float("nan")}, "v_lr"),
    ({"v_steps": 0}, "v_steps"),
    ({"v_steps": 2.5}, "v_steps"),
    ({"v_steps": True}, "v_steps"),
    ({"kl_factor": -1}, "kl_factor"),
    ({"mom2_samples": 0}, "mom2_samples"),
    ({"method": "memit"}, "method"),
    ({"n_layers": 40}, "n_layers"),
])
def test_a_bad_override_is_refused_naming_its_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(HyperparameterError) as caught:
        with_overrides(default_hparams("llama", "rome", 30), overrides)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_memit_layers_must_ascend() -> None:
    hp = default_hparams("llama", "memit", 30)
    with pytest.raises(HyperparameterError, match="ascending"):
        with_overrides(hp, {"layers": [5, 4]})
    assert with_overrides(hp, {"layers": [1, 3, 9]}).layers == (1, 3, 9)


def test_overrides_replace_only_what_they_name_and_an_int_counts_as_a_float() -> None:
    hp = default_hparams("gpt2", "memit", 12)
    changed = with_overrides(hp, {"v_lr": 1, "layers": 4})
    assert changed.v_lr == 1.0 and isinstance(changed.v_lr, float)
    assert changed.layers == (4,)
    assert {k: v for k, v in hparams_dict(changed).items() if k not in ("v_lr", "layers")} == \
        {k: v for k, v in hparams_dict(hp).items() if k not in ("v_lr", "layers")}


def test_the_manifest_dict_is_json_and_rebuilds_the_same_hyperparameters() -> None:
    hp = with_overrides(default_hparams("qwen2", "memit", 24), {"mom2_weight": 5000, "v_steps": 7})
    values = json.loads(json.dumps(hparams_dict(hp)))
    rebuilt = with_overrides(default_hparams("qwen2", "memit", 24),
                             {k: v for k, v in values.items() if k not in ("method", "n_layers")})
    assert rebuilt == hp
    assert EditHyperparams(**{**values, "layers": tuple(values["layers"])}) == hp

"""Loading: local directories, offline refusals, and the GGUF cache that is written once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine import loading
from engine.loading import ModelLoadError, convert_gguf_, load_model, resolve_dtype
from engine.registry import ModelRegistry, UnknownModelError
from tests.fakes import tiny_lm


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-model")
    lm = tiny_lm()
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path


def test_a_model_loads_from_a_local_directory_frozen_and_in_eval_mode(saved_model: Path, tmp_path: Path) -> None:
    lm = load_model("local", str(saved_model), device="cpu", dtype="float32", cache_dir=tmp_path)
    assert not lm.model.training
    assert not any(p.requires_grad for p in lm.model.parameters())
    assert lm.architecture == "llama" and lm.n_layers == 2 and lm.hidden_size == 32
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, tiny_lm().model(ids).logits, atol=1e-6)


def test_a_half_precision_load_keeps_the_requested_dtype(saved_model: Path, tmp_path: Path) -> None:
    lm = load_model("half", str(saved_model), device="cpu", dtype="bfloat16", cache_dir=tmp_path)
    assert lm.dtype == torch.bfloat16


def test_auto_dtype_is_float32_on_cpu() -> None:
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_a_hub_id_that_is_not_cached_fails_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="without network access"):
        load_model("x", "someone/not-a-cached-model", device="cpu", dtype="auto", cache_dir=tmp_path)


def test_an_unknown_builtin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown built-in"):
        load_model("x", "builtin:gpt-17", device="cpu", dtype="auto", cache_dir=tmp_path)


def test_cuda_is_refused_where_there_is_none() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        loading.resolve_device("cuda")


def test_a_converted_cache_is_reused_without_touching_the_gguf(tmp_path: Path) -> None:
    target = tmp_path / "converted"
    target.mkdir()
    (target / "config.json").write_text("{}")
    # The GGUF path does not exist: a second conversion would fail, reuse must not look at it.
    assert convert_gguf_(tmp_path / "missing.gguf", target) == target


def test_the_registry_names_the_known_models_when_asked_for_an_unknown_one() -> None:
    registry = ModelRegistry({"tiny": tiny_lm()})
    with pytest.raises(UnknownModelError) as info:
        registry.get("nope")
    assert "tiny" in str(info.value)
    assert registry.names() == ["tiny"] and "tiny" in registry

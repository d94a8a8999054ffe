"""Loading: local directories, offline refusals, safetensors only, and the registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from engine import loading
from engine.loading import ModelLoadError, load_model, resolve_dtype
from engine.registry import ModelRegistry, UnknownModelError
from tests.fakes import tiny_lm


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-model")
    lm = tiny_lm()
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path


def test_a_model_loads_from_a_local_directory_frozen_and_in_eval_mode(saved_model: Path) -> None:
    lm = load_model("local", str(saved_model), device="cpu", dtype="float32")
    assert not lm.model.training
    assert not any(p.requires_grad for p in lm.model.parameters())
    assert lm.architecture == "llama" and lm.n_layers == 2 and lm.hidden_size == 32
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, tiny_lm().model(ids).logits, atol=1e-6)


def test_a_half_precision_load_keeps_the_requested_dtype(saved_model: Path) -> None:
    lm = load_model("half", str(saved_model), device="cpu", dtype="bfloat16")
    assert lm.dtype == torch.bfloat16


def test_auto_dtype_is_float32_on_cpu() -> None:
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_a_model_is_read_from_its_path_and_keeps_its_source_as_its_identity(saved_model: Path) -> None:
    lm = load_model("tiny", "builtin:smollm2-135m", device="cpu", dtype="float32", path=saved_model)
    assert lm.source == "builtin:smollm2-135m" and lm.n_layers == 2


def test_a_hub_id_that_is_not_cached_fails_with_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="without network access"):
        load_model("x", "someone/not-a-cached-model", device="cpu", dtype="auto")


def test_a_builtin_is_refused_until_it_is_converted_into_a_directory() -> None:
    with pytest.raises(ModelLoadError, match="converted into a directory first"):
        load_model("x", "builtin:smollm2-135m", device="cpu", dtype="auto")
    with pytest.raises(ModelLoadError, match="unknown built-in"):
        loading.builtin_gguf("builtin:gpt-17")
    assert loading.builtin_gguf("/models/mine") is None


def test_cuda_is_refused_where_there_is_none() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        loading.resolve_device("cuda")


def test_weights_are_only_read_from_safetensors(tmp_path: Path) -> None:
    lm = tiny_lm()
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    # The same weights as a pickled checkpoint only, which transformers would otherwise unpickle.
    torch.save(lm.model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises((ModelLoadError, OSError, ValueError)):
        load_model("pickled", str(tmp_path), device="cpu", dtype="float32")
    shutil.rmtree(tmp_path)
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    loaded = load_model("safe", str(tmp_path), device="cpu", dtype="float32")
    assert torch.equal(loaded.model.lm_head.weight, lm.model.lm_head.weight)


def test_the_registry_names_the_known_models_when_asked_for_an_unknown_one() -> None:
    registry = ModelRegistry({"tiny": tiny_lm()})
    with pytest.raises(UnknownModelError) as info:
        registry.get("nope")
    assert "tiny" in str(info.value)
    assert registry.names() == ["tiny"] and "tiny" in registry

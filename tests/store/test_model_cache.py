"""The converted-model cache: a built-in converted once, checked on every start, rebuilt when damaged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from engine.loading import ModelLoadError
from engine.registry import ModelRegistry
from store import model_cache
from store.integrity import CHECKSUMS_FILE, verify_checksums
from store.model_cache import ModelCache, convert_gguf_
from tests.fakes import tiny_lm


def save_tiny(path: Path) -> None:
    lm = tiny_lm()
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)


def fake_dequantise(calls: list[Path]) -> Callable[[Path, Path], None]:
    def dequantise(gguf_path: Path, out: Path) -> None:
        calls.append(out)
        save_tiny(out)
    return dequantise


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Every conversion from here on, each one writing the tiny model instead of dequantising a GGUF."""
    calls: list[Path] = []
    monkeypatch.setattr(model_cache, "dequantise_", fake_dequantise(calls))
    monkeypatch.setattr(model_cache, "builtin_gguf",
                        lambda source: tmp_path / "model.gguf" if source.startswith("builtin:") else None)
    return calls


def test_a_damaged_model_cache_is_moved_aside_and_converted_again(tmp_path: Path, conversions: list[Path]) -> None:
    target = tmp_path / "cache" / "tiny"
    convert_gguf_(tmp_path / "model.gguf", target)
    assert len(conversions) == 1 and (target / CHECKSUMS_FILE).is_file()
    convert_gguf_(tmp_path / "model.gguf", target)
    assert len(conversions) == 1  # intact: reused
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    convert_gguf_(tmp_path / "model.gguf", target)
    assert len(conversions) == 2
    verify_checksums(target)  # the new conversion is whole
    aside = [p.name for p in target.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1  # the damaged copy is kept for inspection, out of the way


def test_a_cache_from_before_checksums_is_adopted_once(tmp_path: Path, conversions: list[Path]) -> None:
    target = tmp_path / "tiny"
    save_tiny(target)
    assert convert_gguf_(tmp_path / "missing.gguf", target) == target and conversions == []
    verify_checksums(target)


def test_a_converted_cache_is_reused_without_touching_the_gguf(tmp_path: Path) -> None:
    target = tmp_path / "converted"
    target.mkdir()
    (target / "config.json").write_text("{}")
    # The GGUF path does not exist: a second conversion would fail, reuse must not look at it.
    assert convert_gguf_(tmp_path / "missing.gguf", target) == target


def test_a_builtin_is_located_in_its_converted_directory_and_any_other_source_as_it_is(
    tmp_path: Path, conversions: list[Path],
) -> None:
    cache = ModelCache(tmp_path / "models")
    assert cache.locate("builtin:smollm2-135m") == str(tmp_path / "models" / "smollm2-135m")
    assert cache.locate("builtin:smollm2-135m") == str(tmp_path / "models" / "smollm2-135m")
    assert len(conversions) == 1  # converted once
    assert cache.locate("/models/mine") == "/models/mine"
    assert cache.locate("someone/a-cached-model") == "someone/a-cached-model"


def test_an_unknown_builtin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown built-in"):
        ModelCache(tmp_path).locate("builtin:gpt-17")


def test_a_model_loaded_through_the_cache_keeps_its_configured_source(tmp_path: Path,
                                                                       conversions: list[Path]) -> None:
    lm = ModelCache(tmp_path / "models").load_model("tiny", "builtin:smollm2-135m", device="cpu", dtype="float32")
    assert lm.source == "builtin:smollm2-135m"  # its identity (the editing caches' fingerprint), not the path
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, tiny_lm().model(ids).logits, atol=1e-6)


def test_the_registry_reads_each_model_where_the_cache_locates_it(tmp_path: Path, conversions: list[Path]) -> None:
    registry = ModelRegistry.load({"a": "builtin:smollm2-135m", "b": "builtin:smollm2-135m"}, device="cpu",
                                  dtype="float32", locate=ModelCache(tmp_path / "models").locate)
    try:
        assert registry.names() == ["a", "b"] and len(conversions) == 1
        assert registry.get("a").source == "builtin:smollm2-135m"
    finally:
        registry.close()

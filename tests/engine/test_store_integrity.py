"""Content hashes on stored files: sealed manifests, the model cache's checksums, and no pickles."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from engine import loading
from engine.loading import ModelLoadError, convert_gguf_, load_model
from engine.store_integrity import (
    CHECKSUMS_FILE,
    CorruptEntryError,
    read_manifest,
    seal,
    verify_checksums,
    write_checksums,
)
from tests.fakes import tiny_lm

ROOT = Path(__file__).resolve().parents[2]


def save_tiny(path: Path) -> None:
    lm = tiny_lm()
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)


def test_a_sealed_manifest_reads_back_and_any_changed_value_is_caught(tmp_path: Path) -> None:
    manifest = seal({"name": "v", "norms": {2: 1.5, 10: 0.25}, "layers": (3, 1), "nan": float("nan")})
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    assert json.dumps(read_manifest(path, "x")) == json.dumps(manifest)  # int keys and tuples as JSON reads them
    for before, after in [('"v"', '"w"'), ("1.5", "1.6"), ("3,", "4,")]:
        path.write_text(json.dumps(manifest, indent=2).replace(before, after, 1))
        with pytest.raises(CorruptEntryError, match="does not match its manifest_sha256"):
            read_manifest(path, "vector v@1")
    path.write_text(json.dumps(manifest)[:-2])
    with pytest.raises(CorruptEntryError, match="corrupt manifest for vector v@1"):
        read_manifest(path, "vector v@1")
    legacy = {"name": "v"}  # written before seals existed: accepted, its tensor hash still checked by the store
    path.write_text(json.dumps(legacy))
    assert read_manifest(path, "x") == legacy


def test_checksums_catch_a_flipped_byte_and_a_missing_file(tmp_path: Path) -> None:
    save_tiny(tmp_path)
    sums = write_checksums(tmp_path)
    assert "model.safetensors" in sums and "config.json" in sums and CHECKSUMS_FILE not in sums
    verify_checksums(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError, match=r"sha256 of model\.safetensors"):
        verify_checksums(tmp_path)
    weights.unlink()
    with pytest.raises(CorruptEntryError, match="missing"):
        verify_checksums(tmp_path)


def fake_dequantise(calls: list[Path]) -> object:
    def dequantise(gguf_path: Path, out: Path) -> None:
        calls.append(out)
        save_tiny(out)
    return dequantise


def test_a_damaged_model_cache_is_moved_aside_and_converted_again(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(loading, "dequantise_", fake_dequantise(calls))
    target = tmp_path / "cache" / "tiny"
    convert_gguf_(tmp_path / "model.gguf", target)
    assert len(calls) == 1 and (target / CHECKSUMS_FILE).is_file()
    convert_gguf_(tmp_path / "model.gguf", target)
    assert len(calls) == 1  # intact: reused
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    convert_gguf_(tmp_path / "model.gguf", target)
    assert len(calls) == 2
    verify_checksums(target)  # the new conversion is whole
    aside = [p.name for p in target.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1  # the damaged copy is kept for inspection, out of the way


def test_a_cache_from_before_checksums_is_adopted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(loading, "dequantise_", fake_dequantise(calls))
    target = tmp_path / "tiny"
    save_tiny(target)
    assert convert_gguf_(tmp_path / "missing.gguf", target) == target and calls == []
    verify_checksums(target)


def test_weights_are_only_read_from_safetensors(tmp_path: Path) -> None:
    lm = tiny_lm()
    save_tiny(tmp_path)
    # The same weights as a pickled checkpoint only, which transformers would otherwise unpickle.
    torch.save(lm.model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises((ModelLoadError, OSError, ValueError)):
        load_model("pickled", str(tmp_path), device="cpu", dtype="float32", cache_dir=tmp_path / "cache")
    shutil.rmtree(tmp_path)
    save_tiny(tmp_path)
    loaded = load_model("safe", str(tmp_path), device="cpu", dtype="float32", cache_dir=tmp_path / "cache")
    assert torch.equal(loaded.model.lm_head.weight, lm.model.lm_head.weight)


UNSAFE = re.compile("|".join([
    r"(?<!safetensors\.)torch\.load\(", r"pickle\.loads?\(", r"import pickle", r"np\.load\(", r"numpy\.load\(",
    r"allow_pickle\s*=\s*True", r"joblib\.load", r"torch\.serialization", r"weights_only\s*=\s*False",
    r"yaml\.load\(", r"marshal\.loads",
]))


def test_no_module_of_the_service_can_load_a_pickle() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{n}" for package in ("engine", "service", "workers", "jobs", "schemas")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if UNSAFE.search(line)]
    assert offenders == []

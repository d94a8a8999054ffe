"""The vector store: immutable numbered versions, exact round trips, refused names, detected corruption."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.steering.extraction import SteeringVector
from store.integrity import NonFiniteError
from store.vectors import VectorStore
from store.versioned import EntryNotFoundError

MODEL = "tiny"


def vector(seed: int = 0, model: str = MODEL) -> SteeringVector:
    g = torch.Generator().manual_seed(seed)
    directions = {1: torch.randn(32, generator=g), 3: torch.randn(32, generator=g)}
    return SteeringVector(model=model, directions=directions, method="pca", reading="mean", n_pairs=7,
                          normalized=False, norms={k: float(v.norm()) for k, v in directions.items()},
                          accuracy={1: 0.75, 3: None}, layer_scores={0: 0.5, 1: 0.75, 2: 0.25, 3: 0.5})


def test_a_saved_vector_loads_back_bit_for_bit_with_its_manifest(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    original = vector()
    saved = store.save("honesty", original, provenance={"job": "abc", "prompts": 7})
    loaded = store.load(MODEL, "honesty")
    assert (loaded.name, loaded.version) == ("honesty", 1)
    for layer, direction in original.directions.items():
        assert torch.equal(loaded.vector.directions[layer], direction)
        assert loaded.vector.directions[layer].dtype == torch.float32
    for got in (loaded.vector, saved.vector):
        assert all(torch.equal(got.directions[k], v) for k, v in original.directions.items())
        assert (got.model, got.method, got.reading, got.n_pairs, got.normalized) == (MODEL, "pca", "mean", 7, False)
        assert (got.norms, got.accuracy, got.layer_scores) == (original.norms, original.accuracy,
                                                               original.layer_scores)
    m = loaded.manifest
    assert m == saved.manifest
    assert {k: m[k] for k in ("name", "version", "model", "layers", "method", "reading", "n_pairs",
                              "normalized", "hidden_size", "provenance")} == {
        "name": "honesty", "version": 1, "model": MODEL, "layers": [1, 3], "method": "pca", "reading": "mean",
        "n_pairs": 7, "normalized": False, "hidden_size": 32, "provenance": {"job": "abc", "prompts": 7}}
    assert datetime.fromisoformat(m["created_at"]).utcoffset() is not None
    on_disk = load_file(tmp_path / MODEL / "honesty" / "1" / "vector.safetensors")
    assert sorted(on_disk) == ["layer.1", "layer.3"]
    assert json.loads((tmp_path / MODEL / "honesty" / "1" / "manifest.json").read_text()) == m


def test_versions_count_up_and_saving_never_overwrites(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    versions = [store.save("honesty", vector(seed)).version for seed in range(3)]
    assert versions == [1, 2, 3]
    assert torch.equal(store.load(MODEL, "honesty@1").vector.directions[1], vector(0).directions[1])
    assert torch.equal(store.load(MODEL, "honesty@2").vector.directions[1], vector(1).directions[1])
    assert store.load(MODEL, "honesty").version == 3


def test_a_deleted_version_number_is_never_reused(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    store.save("honesty", vector(0))
    store.save("honesty", vector(1))
    assert store.delete(MODEL, "honesty@2") == [2]
    assert store.save("honesty", vector(2)).version == 3
    assert store.delete(MODEL, "honesty") == [1, 3]
    assert store.save("honesty", vector(3)).version == 4


def test_list_and_delete_one_version_or_all(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    for name in ("b", "a", "a"):
        store.save(name, vector())
    store.save("z", vector(model="other"))
    assert [(m["model"], m["name"], m["version"]) for m in store.list()] == [
        ("other", "z", 1), (MODEL, "a", 1), (MODEL, "a", 2), (MODEL, "b", 1)]
    assert [(m["name"], m["version"]) for m in store.list(MODEL)] == [("a", 1), ("a", 2), ("b", 1)]
    assert store.list("nobody") == []
    assert store.delete(MODEL, "a@1") == [1]
    assert store.load(MODEL, "a").version == 2
    assert store.delete(MODEL, "b") == [1]
    assert [(m["name"], m["version"]) for m in store.list(MODEL)] == [("a", 2)]


@pytest.mark.parametrize(("model", "ref"), [(MODEL, "nothing"), (MODEL, "honesty@2"), ("other", "honesty")])
def test_unknown_vectors_raise_not_found_naming_what_was_asked(tmp_path: Path, model: str, ref: str) -> None:
    store = VectorStore(tmp_path)
    store.save("honesty", vector())
    name = ref.partition("@")[0]
    with pytest.raises(EntryNotFoundError, match=f"{name}.*{model}"):
        store.load(model, ref)
    with pytest.raises(EntryNotFoundError):
        store.delete(model, ref)


def test_not_found_says_which_version(tmp_path: Path) -> None:
    with pytest.raises(EntryNotFoundError) as caught:
        VectorStore(tmp_path).load(MODEL, "honesty@2")
    assert str(caught.value) == "no steering vector 'honesty' version 2 of model 'tiny'"
    assert (caught.value.kind, caught.value.model, caught.value.ref) == ("vector", MODEL, "honesty@2")
    assert isinstance(caught.value, KeyError)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "..", "a\x00b", "tab\there", "line\n",
                                 "x" * 65, "sp ace", "ü"])
def test_bad_names_are_refused_everywhere(tmp_path: Path, bad: str) -> None:
    store = VectorStore(tmp_path)
    with pytest.raises(ValueError, match="invalid"):
        store.save(bad, vector())
    with pytest.raises(ValueError, match="invalid"):
        store.save("ok", vector(model=bad))
    with pytest.raises(ValueError, match="invalid"):
        store.load(MODEL, bad)
    with pytest.raises(ValueError, match="invalid"):
        store.load(bad, "ok")
    with pytest.raises(ValueError, match="invalid"):
        store.delete(MODEL, bad)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupted_tensor_file_is_reported_not_served(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    store.save("honesty", vector())
    path = tmp_path / MODEL / "honesty" / "1" / "vector.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last float
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        store.load(MODEL, "honesty")


def test_concurrent_saves_get_distinct_versions_and_leave_no_temporaries(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    barrier = threading.Barrier(8)
    versions: list[int] = []
    errors: list[BaseException] = []

    def save(seed: int) -> None:
        try:
            barrier.wait()
            versions.append(store.save("honesty", vector(seed)).version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions) == list(range(1, 9))
    name_dir = tmp_path / MODEL / "honesty"
    assert sorted(p.name for p in name_dir.iterdir() if not p.name.startswith(".")) == [str(v) for v in range(1, 9)]
    assert not [p for p in name_dir.iterdir() if p.name.startswith((".tmp", ".deleted"))]
    # Each version holds the vector its writer saved: no writer's files landed in another's number.
    loaded = {store.load(MODEL, f"honesty@{v}").vector.directions[1][0].item() for v in range(1, 9)}
    assert loaded == {vector(seed).directions[1][0].item() for seed in range(8)}


def test_a_vector_that_is_not_finite_after_the_float32_cast_is_refused(tmp_path: Path) -> None:
    store = VectorStore(tmp_path)
    direction = vector().directions[1].double()
    direction[0] = 1e39  # finite in float64, infinite as the float32 the store keeps
    with pytest.raises(NonFiniteError, match=r"layer\.1"):
        store.save("big", replace(vector(), directions={1: direction}, norms={1: 1.0}))
    assert store.list(MODEL) == []


def test_a_vector_with_a_nan_figure_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match=r"norms\[1\]"):
        VectorStore(tmp_path).save("v", replace(vector(), norms={1: float("nan"), 3: 1.0}))

"""The variant store: immutable versions, atomic writes, parents, provenance, safe loading."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.components import AffineEraser, Component, LowRankDelta, content_hash
from store import variants as variants_module
from store.integrity import CorruptEntryError, NonFiniteError, seal
from store.variants import COMPONENTS_FILE, Variant, VariantStore
from store.versioned import MANIFEST_FILE, EntryNotFoundError

MODEL, HIDDEN = "tiny", 8


def eraser(layer: int, seed: int, rank: int = 1) -> AffineEraser:
    g = torch.Generator().manual_seed(seed)
    return AffineEraser(layer, torch.randn(HIDDEN, rank, generator=g), torch.randn(rank, HIDDEN, generator=g),
                        torch.randn(HIDDEN, generator=g))


def save(store: VariantStore, name: str, *components: Component, parent: Variant | None = None,
         report: dict[str, Any] | None = None) -> Variant:
    return store.save(MODEL, name, list(components), method="leace", hidden_size=HIDDEN, parent=parent, report=report)


def same(a: Component, b: Component) -> bool:
    return content_hash(a) == content_hash(b)


def test_a_saved_variant_loads_back_with_the_same_components_and_its_provenance(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    first: Component = eraser(3, 0, rank=2)
    delta: Component = LowRankDelta("model.layers.1.mlp.down_proj", torch.randn(1, 4), torch.randn(HIDDEN, 1))
    saved = store.save(MODEL, "no-gender", [first, delta], method="leace", hidden_size=HIDDEN,
                       request={"layers": [3]}, hyperparameters={"svd_tol": 0.01}, report={"rank": 2},
                       provenance={"job_id": "j1"})
    loaded = store.load(MODEL, "no-gender")
    assert loaded.ref == saved.ref == "no-gender@1"
    assert [same(a, b) for a, b in zip(loaded.components, [first, delta], strict=True)] == [True, True]
    manifest = loaded.manifest
    assert (manifest["method"], manifest["parent"], manifest["lineage"]) == ("leace", None, [])
    assert (manifest["request"], manifest["hyperparameters"], manifest["report"], manifest["provenance"]) == (
        {"layers": [3]}, {"svd_tol": 0.01}, {"rank": 2}, {"job_id": "j1"})
    assert [c["site"] for c in manifest["components"]] == ["block.3", "module.model.layers.1.mlp.down_proj"]
    assert [c["sha256"] for c in manifest["components"]] == [content_hash(first), content_hash(delta)]
    assert sorted(p.name for p in (tmp_path / MODEL / "no-gender" / "1").iterdir()) == [COMPONENTS_FILE, MANIFEST_FILE]


def test_versions_are_immutable_a_bare_name_is_the_latest_and_numbers_are_never_reused(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    one, two = eraser(0, 1), eraser(0, 2)
    save(store, "v", one)
    save(store, "v", two)
    assert same(store.load(MODEL, "v@1").components[0], one)
    assert same(store.load(MODEL, "v").components[0], two)
    assert store.resolve(MODEL, "v") == ("v", 2)
    assert store.delete(MODEL, "v@2") == [2]
    assert store.resolve(MODEL, "v") == ("v", 1)
    assert save(store, "v", eraser(0, 3)).ref == "v@3"
    assert [m["ref"] for m in store.list(MODEL)] == ["v@1", "v@3"]
    assert store.delete(MODEL, "v") == [1, 3]
    with pytest.raises(EntryNotFoundError, match="no variant 'v' of model 'tiny'"):
        store.load(MODEL, "v")
    with pytest.raises(EntryNotFoundError, match="version 9"):
        store.load(MODEL, "v@9")
    with pytest.raises(EntryNotFoundError):
        store.delete(MODEL, "never")


def test_a_child_holds_its_parents_components_first_and_survives_the_parents_deletion(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    base_eraser, own = eraser(1, 4), eraser(2, 5)
    parent = store.load(MODEL, save(store, "a", base_eraser).ref)
    child = save(store, "b", own, parent=parent)
    loaded = store.load(MODEL, child.ref)
    assert [same(c, e) for c, e in zip(loaded.components, [base_eraser, own], strict=True)] == [True, True]
    assert (loaded.manifest["parent"], loaded.manifest["lineage"]) == ("a@1", ["a@1"])
    assert loaded.manifest["parent_sha256"] == parent.manifest["sha256"]
    assert [c["origin"] for c in loaded.manifest["components"]] == ["a@1", "b@1"]
    grandchild = store.load(MODEL, save(store, "c", eraser(3, 6), parent=loaded).ref)
    assert grandchild.manifest["lineage"] == ["a@1", "b@1"]
    assert [c["origin"] for c in grandchild.manifest["components"]] == ["a@1", "b@1", "c@1"]
    store.delete(MODEL, "a")
    assert len(store.load(MODEL, "b@1").components) == 2


def test_a_write_that_fails_midway_leaves_no_version_and_no_temporary_files(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = VariantStore(tmp_path)
    save(store, "v", eraser(0, 1))

    def crash(tensors: object, path: object) -> None:
        Path(str(path)).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(variants_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save(store, "v", eraser(0, 2))
    assert [m["ref"] for m in store.list(MODEL)] == ["v@1"]
    # Only the complete version, its counter and the lock: the temporary directory went with the failure.
    assert sorted(p.name for p in (tmp_path / MODEL / "v").iterdir()) == [".counter", ".lock", "1"]


def test_concurrent_writers_get_distinct_versions(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    refs: list[str] = []

    def write(seed: int) -> None:
        refs.append(save(store, "v", eraser(0, seed)).ref)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(refs, key=lambda r: int(r.split("@")[1])) == [f"v@{i}" for i in range(1, 9)]


def test_a_tampered_file_is_refused_not_served(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    save(store, "v", eraser(0, 1))
    path = tmp_path / MODEL / "v" / "1" / COMPONENTS_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt variant v@1"):
        store.load(MODEL, "v")
    (tmp_path / MODEL / "v" / "1" / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="corrupt manifest"):
        store.load(MODEL, "v")


def test_names_and_references_are_plain_path_components(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    for bad in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(ValueError, match="invalid variant name"):
            save(store, bad, eraser(0, 1))
    with pytest.raises(ValueError, match="positive integer"):
        store.resolve(MODEL, "v@0")
    with pytest.raises(ValueError, match="at least one component"):
        store.save(MODEL, "v", [], method="leace", hidden_size=HIDDEN)
    with pytest.raises(ValueError, match="JSON"):
        save(store, "v", eraser(0, 1), report={"x": object()})
    assert not (tmp_path / MODEL / "v").exists() or not list(store.list(MODEL))


def test_an_unknown_component_kind_is_refused_when_loading(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    save(store, "v", eraser(0, 1))
    manifest_path = tmp_path / MODEL / "v" / "1" / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["components"][0]["kind"] = "pickle"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptEntryError, match="does not match its manifest_sha256"):  # edited, not re-sealed
        store.load(MODEL, "v")
    manifest_path.write_text(json.dumps(seal(manifest)))
    with pytest.raises(ValueError, match="unknown component kind 'pickle'"):
        store.load(MODEL, "v")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_component_that_is_not_finite_is_refused_and_nothing_is_written(tmp_path: Path, bad: float) -> None:
    store = VariantStore(tmp_path)
    broken = eraser(1, 0)
    broken.proj_left[0, 0] = bad
    with pytest.raises(NonFiniteError, match=r"component 0 \(block\.1\).*proj_left"):
        save(store, "v", broken)
    assert store.list(MODEL) == []
    assert not (tmp_path / MODEL / "v").exists() or not [p for p in (tmp_path / MODEL / "v").iterdir() if p.is_dir()]


def test_a_report_with_a_nan_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    with pytest.raises(NonFiniteError, match="report"):
        save(store, "v", eraser(1, 0), report={"kl": float("nan")})
    assert store.list(MODEL) == []


def test_a_stored_component_that_is_not_finite_is_never_served(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = VariantStore(tmp_path)
    broken = eraser(1, 0)
    broken.proj_right[0, 0] = float("nan")
    monkeypatch.setattr(variants_module, "check_finite", lambda *args: None)  # as a store before the check wrote
    save(store, "old", broken)
    monkeypatch.undo()
    with pytest.raises(NonFiniteError, match="old@1"):
        store.load(MODEL, "old")

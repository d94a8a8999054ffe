"""Stores written before the `store` package existed keep loading, and new writes keep their format.

``data/legacy`` was written by the engine's stores as they were (``engine/variant_store.py``,
``engine/steering/vector_store.py``) with the inputs rebuilt below: a vector saved twice with the
second version deleted, a variant and a child of it; plus a vector manifest from before manifests
were sealed. Users' disks hold exactly such files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from engine.components import AffineEraser, LowRankDelta, content_hash
from engine.steering.extraction import SteeringVector
from store.integrity import SEAL_FIELD
from store.variants import COMPONENTS_FILE, VariantStore
from store.vectors import VECTOR_FILE, VectorStore
from store.versioned import MANIFEST_FILE, EntryNotFoundError

LEGACY = Path(__file__).parent / "data" / "legacy"
MODEL = "tiny"
WRITTEN_NOW = ("created_at", SEAL_FIELD)  # the only fields that differ between two identical saves


def vector(seed: int) -> SteeringVector:
    g = torch.Generator().manual_seed(seed)
    directions = {1: torch.randn(8, generator=g), 3: torch.randn(8, generator=g)}
    return SteeringVector(model=MODEL, directions=directions, method="pca", reading="mean", n_pairs=7,
                          normalized=False, norms={k: float(v.norm()) for k, v in directions.items()},
                          accuracy={1: 0.75, 3: None}, layer_scores={0: 0.5, 1: 0.75})


def components() -> tuple[AffineEraser, LowRankDelta]:
    g = torch.Generator().manual_seed(0)
    eraser = AffineEraser(1, torch.randn(8, 1, generator=g), torch.randn(1, 8, generator=g),
                          torch.randn(8, generator=g))
    delta = LowRankDelta("model.layers.0.mlp.down_proj", torch.randn(1, 4, generator=g),
                         torch.randn(8, 1, generator=g))
    return eraser, delta


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(LEGACY, tmp_path / "legacy"))


def test_vectors_written_before_keep_loading_with_their_values_and_hashes_checked(legacy: Path) -> None:
    store = VectorStore(legacy / "vectors")
    loaded = store.load(MODEL, "honesty")
    assert (loaded.name, loaded.version) == ("honesty", 1)
    assert all(torch.equal(loaded.vector.directions[k], v) for k, v in vector(0).directions.items())
    assert loaded.manifest["provenance"] == {"job_id": "j1"}
    assert store.verify(MODEL, "honesty@1") == loaded.manifest
    assert store.load(MODEL, "unsealed").vector.n_pairs == 7  # from before manifests carried their own hash
    assert [(m["name"], m["version"]) for m in store.list(MODEL)] == [("honesty", 1), ("unsealed", 1)]
    with pytest.raises(EntryNotFoundError):
        store.load(MODEL, "honesty@2")  # deleted back then


def test_variants_written_before_keep_loading_with_their_lineage(legacy: Path) -> None:
    store = VariantStore(legacy / "variants")
    eraser, delta = components()
    child = store.load(MODEL, "edited")
    assert child.ref == "edited@1" and child.manifest["lineage"] == ["erased@1"]
    assert [content_hash(c) for c in child.components] == [content_hash(eraser), content_hash(delta)]
    assert [m["ref"] for m in store.list(MODEL)] == ["edited@1", "erased@1"]


def test_numbers_go_on_past_those_handed_out_before(legacy: Path) -> None:
    assert VectorStore(legacy / "vectors").save("honesty", vector(2)).version == 3  # @2 was deleted, not reused
    assert VariantStore(legacy / "variants").save(MODEL, "erased", [components()[0]], method="leace",
                                                  hidden_size=8).ref == "erased@2"


def same_format(new_dir: Path, old_dir: Path, data_file: str) -> None:
    """Same tensor bytes, and the same manifest fields in the same order with the same values."""
    assert (new_dir / data_file).read_bytes() == (old_dir / data_file).read_bytes()
    new, old = (json.loads((d / MANIFEST_FILE).read_text()) for d in (new_dir, old_dir))
    assert list(new) == list(old)
    assert {k: v for k, v in new.items() if k not in WRITTEN_NOW} == {
        k: v for k, v in old.items() if k not in WRITTEN_NOW}


def test_a_vector_saved_now_is_written_exactly_as_before(tmp_path: Path) -> None:
    VectorStore(tmp_path).save("honesty", vector(0), provenance={"job_id": "j1"})
    same_format(tmp_path / MODEL / "honesty" / "1", LEGACY / "vectors" / MODEL / "honesty" / "1", VECTOR_FILE)


def test_a_variant_saved_now_is_written_exactly_as_before(tmp_path: Path) -> None:
    store = VariantStore(tmp_path)
    eraser, delta = components()
    parent = store.save(MODEL, "erased", [eraser], method="leace", hidden_size=8, request={"layers": [1]},
                        report={"rank": 1})
    store.save(MODEL, "edited", [delta], method="rome", hidden_size=8, parent=parent,
               hyperparameters={"layer": 0})
    for name in ("erased", "edited"):
        same_format(tmp_path / MODEL / name / "1", LEGACY / "variants" / MODEL / name / "1", COMPONENTS_FILE)

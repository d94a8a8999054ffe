"""The one versioned store under both kinds: numbering, sealing, clean failures, sweeping dead writers' debris."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.components import AffineEraser
from engine.steering.extraction import SteeringVector
from store.debris import STALE_TMP_AFTER_S, sweep_stale_tmp
from store.integrity import SEAL_FIELD, CorruptEntryError, read_manifest
from store.variants import VariantStore
from store.vectors import VectorStore
from store.versioned import (
    COUNTER_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    EntryNotFoundError,
    VersionedStore,
    WrittenVersion,
)

DATA = "data.bin"
MODEL, NAME = "model", "name"
LONG_AGO = STALE_TMP_AFTER_S + 60  # seconds: past the grace period
MOMENTS_AGO = 60.0


def write_bytes(payload: bytes = b"payload") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(payload)
    return write


def manifest(version: int, digest: str) -> dict[str, Any]:
    return {"version": version, "sha256": digest}


def debris(name_dir: Path, name: str, seconds_ago: float, file_seconds_ago: float | None = None) -> Path:
    """A ``.tmp-*`` directory with one half-written file, last touched ``seconds_ago``."""
    tmp = name_dir / name
    tmp.mkdir(parents=True)
    now = time.time()
    (tmp / DATA).write_bytes(b"half a file")
    file_age = seconds_ago if file_seconds_ago is None else file_seconds_ago
    os.utime(tmp / DATA, (now - file_age, now - file_age))
    os.utime(tmp, (now - seconds_ago, now - seconds_ago))  # last: creating the file touched it
    return tmp


def entries(name_dir: Path) -> list[str]:
    return sorted(p.name for p in name_dir.iterdir())


def store_at(root: Path) -> VersionedStore:
    return VersionedStore(root, kind="thing", data_file=DATA)


def write_version(name_dir: Path, data_file: str, write_data: Callable[[Path], None],
                  build_manifest: Callable[[int, str], dict[str, Any]]) -> WrittenVersion:
    """A write into ``name_dir``, read as ``<root>/<model>/<name>``."""
    store = VersionedStore(name_dir.parent.parent, kind="thing", data_file=data_file)
    return store.write(name_dir.parent.name, name_dir.name, write_data, build_manifest)


def test_a_write_numbers_versions_from_one_and_seals_a_manifest_with_the_data_files_hash(tmp_path: Path) -> None:
    name_dir = tmp_path / MODEL / NAME
    first = write_version(name_dir, DATA, write_bytes(b"one"), manifest)
    second = write_version(name_dir, DATA, write_bytes(b"two"), manifest)
    assert (first.version, second.version) == (1, 2)
    stored = read_manifest(name_dir / "2" / MANIFEST_FILE, "name@2")  # raises unless the seal holds
    assert stored == second.manifest and SEAL_FIELD in stored
    assert stored["sha256"] == hashlib.sha256(b"two").hexdigest()
    assert (name_dir / "2" / DATA).read_bytes() == b"two"
    assert entries(name_dir) == [COUNTER_FILE, LOCK_FILE, "1", "2"]
    assert (name_dir / COUNTER_FILE).read_text() == "2"


def test_a_version_directory_is_readable_by_other_users(tmp_path: Path) -> None:
    # The API and the workers may run as different users; mkdtemp alone would make it 0700.
    written = write_version(tmp_path / MODEL / NAME, DATA, write_bytes(b"one"), manifest)
    assert (tmp_path / MODEL / NAME / str(written.version)).stat().st_mode & 0o777 == 0o755


def test_the_next_number_is_past_both_the_counter_and_a_version_the_counter_missed(tmp_path: Path) -> None:
    name_dir = tmp_path / MODEL / NAME
    name_dir.mkdir(parents=True)
    (name_dir / COUNTER_FILE).write_text("5")  # versions up to 5 were handed out, then deleted
    assert write_version(name_dir, DATA, write_bytes(), manifest).version == 6
    (name_dir / "9").mkdir()  # renamed into place by a writer killed before it raised the counter
    assert write_version(name_dir, DATA, write_bytes(), manifest).version == 10


@pytest.mark.parametrize("failing", ["write_data", "build_manifest"])
def test_a_failing_write_leaves_no_temporary_directory_and_no_version(tmp_path: Path, failing: str) -> None:
    name_dir = tmp_path / MODEL / NAME
    write_version(name_dir, DATA, write_bytes(), manifest)

    def half_then_disk_full(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    def refuse(version: int, digest: str) -> dict[str, Any]:
        raise ValueError("not JSON")

    with pytest.raises((OSError, ValueError)):
        write_version(name_dir, DATA, half_then_disk_full if failing == "write_data" else write_bytes(),
                      refuse if failing == "build_manifest" else manifest)
    assert entries(name_dir) == [COUNTER_FILE, LOCK_FILE, "1"]
    assert (name_dir / COUNTER_FILE).read_text() == "1"
    # The lock was let go: the next write goes through and gets the next number.
    assert write_version(name_dir, DATA, write_bytes(), manifest).version == 2


def test_a_write_sweeps_an_old_temporary_directory_and_keeps_a_young_one(tmp_path: Path) -> None:
    name_dir = tmp_path / MODEL / NAME
    old = debris(name_dir, ".tmp-dead", LONG_AGO)
    young = debris(name_dir, ".tmp-live", MOMENTS_AGO)
    write_version(name_dir, DATA, write_bytes(), manifest)
    assert not old.exists()
    assert young.is_dir() and (young / DATA).read_bytes() == b"half a file"
    assert entries(name_dir) == [COUNTER_FILE, LOCK_FILE, ".tmp-live", "1"]


def test_an_old_directory_whose_file_is_still_being_written_is_kept(tmp_path: Path) -> None:
    # Streaming a large file updates the file's mtime, not its directory's: the writer is alive.
    streaming = debris(tmp_path, ".tmp-streaming", LONG_AGO, file_seconds_ago=MOMENTS_AGO)
    assert sweep_stale_tmp(tmp_path) == []
    assert streaming.is_dir()


def test_the_sweep_touches_nothing_but_old_temporary_directories(tmp_path: Path) -> None:
    old_version = debris(tmp_path, "1", LONG_AGO)
    trash = debris(tmp_path, ".deleted-2-abc", LONG_AGO)
    not_a_directory = tmp_path / ".tmp-file"
    not_a_directory.write_text("")
    os.utime(not_a_directory, (0, 0))
    outside = debris(tmp_path / "elsewhere", ".tmp-target", LONG_AGO)
    (tmp_path / ".tmp-link").symlink_to(outside, target_is_directory=True)
    stale = debris(tmp_path, ".tmp-stale", LONG_AGO)
    assert sweep_stale_tmp(tmp_path) == [stale]
    assert all(p.exists() for p in (old_version, trash, not_a_directory, outside, tmp_path / ".tmp-link"))


def test_a_directory_the_sweep_cannot_remove_is_logged_and_the_write_still_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    name_dir = tmp_path / MODEL / NAME
    stuck = debris(name_dir, ".tmp-stuck", LONG_AGO)

    def refuse(path: str | Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    assert write_version(name_dir, DATA, write_bytes(), manifest).version == 1
    assert stuck.is_dir() and "could not remove the stale temporary" in caplog.text


def eraser(seed: int) -> AffineEraser:
    g = torch.Generator().manual_seed(seed)
    return AffineEraser(1, torch.randn(8, 1, generator=g), torch.randn(1, 8, generator=g), torch.randn(8, generator=g))


def vector(seed: int) -> SteeringVector:
    direction = torch.randn(8, generator=torch.Generator().manual_seed(seed))
    return SteeringVector(model="tiny", directions={1: direction}, method="mean_diff", reading="last", n_pairs=2,
                          normalized=False, norms={1: float(direction.norm())}, accuracy={1: None}, layer_scores={})


@pytest.mark.parametrize("store", ["variants", "vectors"])
def test_both_stores_sweep_a_dead_writers_directory_when_they_save(tmp_path: Path, store: str) -> None:
    name_dir = tmp_path / "tiny" / "debris"
    old = debris(name_dir, ".tmp-dead", LONG_AGO)
    young = debris(name_dir, ".tmp-live", MOMENTS_AGO)
    if store == "variants":
        VariantStore(tmp_path).save("tiny", "debris", [eraser(0)], method="leace", hidden_size=8)
        assert VariantStore(tmp_path).load("tiny", "debris").version == 1
    else:
        VectorStore(tmp_path).save("debris", vector(0))
        assert VectorStore(tmp_path).load("tiny", "debris").version == 1
    assert not old.exists() and young.is_dir()


def test_a_version_reads_back_only_while_its_manifest_and_data_file_match_their_hashes(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.write(MODEL, NAME, write_bytes(b"payload"), manifest)
    entry = store.read(MODEL, NAME)
    assert (entry.name, entry.version, entry.data) == (NAME, 1, b"payload")
    assert store.verify(MODEL, f"{NAME}@1") == store.manifest(MODEL, NAME) == entry.manifest
    (tmp_path / MODEL / NAME / "1" / DATA).write_bytes(b"paylaod")
    with pytest.raises(CorruptEntryError, match=f"corrupt thing {NAME}@1 of {MODEL}: the sha256 of {DATA}"):
        store.read(MODEL, NAME)
    assert store.manifest(MODEL, NAME) == entry.manifest  # the manifest alone is still whole


def test_not_found_names_the_kind_the_model_and_the_reference(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.write(MODEL, NAME, write_bytes(), manifest)
    for ref, version, message in [("other", None, "no thing 'other' of model 'model'"),
                                  (f"{NAME}@3", 3, "no thing 'name' version 3 of model 'model'")]:
        with pytest.raises(EntryNotFoundError) as caught:
            store.read(MODEL, ref)
        assert isinstance(caught.value, KeyError) and str(caught.value) == message
        assert (caught.value.kind, caught.value.model, caught.value.version, caught.value.ref) == (
            "thing", MODEL, version, ref)


def test_a_listing_spans_models_in_order_and_leaves_out_a_damaged_manifest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    store = store_at(tmp_path)
    for model, name in [("b", "x"), ("a", "y"), ("a", "y"), ("a", "w"), ("b", "damaged")]:
        store.write(model, name, write_bytes(), lambda v, d, m=model, n=name: {"model": m, "name": n, "version": v})
    (tmp_path / "b" / "damaged" / "1" / MANIFEST_FILE).write_text("{not json")
    (tmp_path / "_tenants").mkdir()  # not a model: another tenant's root
    listed = [(m["model"], m["name"], m["version"]) for m in store.list()]
    assert listed == [("a", "w", 1), ("a", "y", 1), ("a", "y", 2), ("b", "x", 1)]
    assert [(m["name"], m["version"]) for m in store.list("a")] == [("w", 1), ("y", 1), ("y", 2)]
    assert "corrupt manifest for thing damaged@1 of b" in caplog.text
    assert store.list("nobody") == []


def test_a_deleted_number_is_never_handed_out_again(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    for _ in range(2):
        store.write(MODEL, NAME, write_bytes(), manifest)
    assert store.delete(MODEL, f"{NAME}@2") == [2]
    assert store.write(MODEL, NAME, write_bytes(), manifest).version == 3
    assert store.delete(MODEL, NAME) == [1, 3]
    assert entries(tmp_path / MODEL / NAME) == [COUNTER_FILE, LOCK_FILE]  # no version, no trash left
    assert store.write(MODEL, NAME, write_bytes(), manifest).version == 4
    with pytest.raises(EntryNotFoundError):
        store.delete(MODEL, f"{NAME}@3")

"""The shared version writer: numbering, sealing, clean failures, and sweeping dead writers' debris."""

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
from engine.steering.vector_store import VectorStore
from engine.store_integrity import SEAL_FIELD, read_manifest
from engine.variant_store import VariantStore
from engine.versioned_dirs import (
    COUNTER_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    STALE_TMP_AFTER_S,
    sweep_stale_tmp,
    write_version,
)

DATA = "data.bin"
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


def test_a_write_numbers_versions_from_one_and_seals_a_manifest_with_the_data_files_hash(tmp_path: Path) -> None:
    name_dir = tmp_path / "model" / "name"
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
    written = write_version(tmp_path / "name", DATA, write_bytes(b"one"), manifest)
    assert (tmp_path / "name" / str(written.version)).stat().st_mode & 0o777 == 0o755


def test_the_next_number_is_past_both_the_counter_and_a_version_the_counter_missed(tmp_path: Path) -> None:
    name_dir = tmp_path / "name"
    name_dir.mkdir()
    (name_dir / COUNTER_FILE).write_text("5")  # versions up to 5 were handed out, then deleted
    assert write_version(name_dir, DATA, write_bytes(), manifest).version == 6
    (name_dir / "9").mkdir()  # renamed into place by a writer killed before it raised the counter
    assert write_version(name_dir, DATA, write_bytes(), manifest).version == 10


@pytest.mark.parametrize("failing", ["write_data", "build_manifest"])
def test_a_failing_write_leaves_no_temporary_directory_and_no_version(tmp_path: Path, failing: str) -> None:
    name_dir = tmp_path / "name"
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
    name_dir = tmp_path / "name"
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
    name_dir = tmp_path / "name"
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

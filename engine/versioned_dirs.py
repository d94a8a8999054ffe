"""Versioned directories: one name's immutable, numbered versions, each written whole.

The on-disk stores (steering vectors, model variants) keep a name's versions as
``<name_dir>/<version>/{<data file>, manifest.json}``. This module is the one way such a version
is written, so the two stores cannot drift apart on what makes a write safe:

1. the data file is written into a fresh ``.tmp-*`` directory beside the versions, then hashed and
   fsynced, all outside the lock (it may be large, and other writers need not wait for it);
2. under the name's ``flock`` the next number is allocated (one past both the recorded counter and
   the highest complete version, so a deleted number is never handed out again), the manifest is
   built for it, sealed, written and fsynced, and the directory is renamed into place;
3. still under the lock, the counter is raised and the ``.tmp-*`` debris of long-dead writers is
   swept (`sweep_stale_tmp`).

A reader therefore sees a version whole or not at all (`engine.store_names.complete_versions`
only matches numbered directories), and a writer killed at any point leaves at most a dot-named
directory that readers ignore and a later write removes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from engine.durable_files import fsync_path, locked
from engine.store_integrity import seal, sha256_file
from engine.store_names import complete_versions

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
COUNTER_FILE = ".counter"  # highest version ever allocated, so deleted numbers are not reused
TMP_PREFIX = ".tmp-"
# A `.tmp-*` directory untouched for this long belongs to a writer that died. A live writer in
# another process may be using a younger one (a large tensor file takes a while to write), so
# only directories older than this are ever removed.
STALE_TMP_AFTER_S = 3600.0


class WrittenVersion(NamedTuple):
    """A version just renamed into place: its number and its manifest as sealed and written."""

    version: int
    manifest: dict[str, Any]


def recorded_version(name_dir: Path) -> int:
    """The highest version number the counter file records for a name (0: none)."""
    counter = name_dir / COUNTER_FILE
    return int(counter.read_text()) if counter.is_file() else 0


def record_version(name_dir: Path, version: int) -> None:
    """Raise the counter to ``version`` (never lower it); call under the name's lock."""
    if version > recorded_version(name_dir):
        (name_dir / COUNTER_FILE).write_text(str(version))


def next_version(name_dir: Path) -> int:
    """The number the next version of a name gets; call under the name's lock.

    One past the counter *and* past every complete version: a writer killed after its rename but
    before raising the counter leaves a version the counter does not know about.
    """
    return max([recorded_version(name_dir), *complete_versions(name_dir)]) + 1


def write_version(name_dir: Path, data_file: str, write_data: Callable[[Path], None],
                  build_manifest: Callable[[int, str], dict[str, Any]]) -> WrittenVersion:
    """Write one new version of a name: its data file and its sealed manifest, renamed into place.

    Args:
        name_dir: the name's directory (created if missing); versions are its numbered children.
        data_file: the data file's name inside the version (``vector.safetensors``, ...).
        write_data: writes the data file at the path it is given (inside a temporary directory).
        build_manifest: the manifest for a version number and the data file's sha256, called under
            the lock once the number is known; it is sealed (`engine.store_integrity.seal`) here.

    Returns:
        The version's number and its manifest, as a later read returns it.

    Raises:
        Whatever ``write_data`` or ``build_manifest`` raise, or an ``OSError`` from the disk. The
        temporary directory is removed first; a failure before the rename leaves no version, one
        after it (raising the counter) leaves a complete version that `next_version` still counts.
    """
    name_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=name_dir))
    try:
        write_data(tmp / data_file)
        digest = sha256_file(tmp / data_file)
        fsync_path(tmp / data_file)
        with locked(name_dir / LOCK_FILE):
            version = next_version(name_dir)
            manifest = seal(build_manifest(version, digest))
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
            fsync_path(tmp / MANIFEST_FILE)
            # mkdtemp makes the directory private; the API and the workers may run as different users.
            os.chmod(tmp, 0o755)
            os.rename(tmp, name_dir / str(version))
            record_version(name_dir, version)
            # Under the lock, so two writers never sweep at once; after the rename, so this
            # write's own directory is already a version and cannot be mistaken for debris.
            sweep_stale_tmp(name_dir)
        fsync_path(name_dir)  # the rename itself, once; the lock need not wait for the disk
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already if the rename happened
        raise
    return WrittenVersion(version, manifest)


def sweep_stale_tmp(name_dir: Path, older_than_s: float = STALE_TMP_AFTER_S) -> list[Path]:
    """Remove the ``.tmp-*`` directories in ``name_dir`` left by writers that died long ago.

    A directory's age is that of the youngest of it and its files: writing into a file does not
    touch its directory's mtime, and a writer streaming a large file must not look dead. Should a
    live writer still lose its directory (stalled for longer than ``older_than_s``), its save
    fails when it writes the manifest or renames; it never produces a half-written version.
    Failures are logged, not raised: the version that triggered the sweep is already written.

    Args:
        name_dir: one name's directory.
        older_than_s: only directories untouched for longer than this many seconds are removed.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    cutoff = time.time() - older_than_s
    try:
        with os.scandir(name_dir) as entries:
            candidates = [Path(entry.path) for entry in entries
                          if entry.name.startswith(TMP_PREFIX) and entry.is_dir(follow_symlinks=False)]
    except OSError as exc:
        log.warning("could not look for stale temporaries in %s: %s", name_dir, exc)
        return removed
    for tmp in candidates:
        try:
            if _last_touched(tmp) >= cutoff:
                continue
            shutil.rmtree(tmp)
        except FileNotFoundError:
            continue  # removed meanwhile
        except OSError as exc:
            log.warning("could not remove the stale temporary %s: %s", tmp, exc)
            continue
        log.info("removed %s, left by a writer that died", tmp)
        removed.append(tmp)
    return removed


def _last_touched(directory: Path) -> float:
    """The newest mtime of ``directory`` and the entries directly in it (links not followed)."""
    newest = directory.stat(follow_symlinks=False).st_mtime
    with os.scandir(directory) as entries:
        for entry in entries:
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest

"""Versioned entries on disk: one model's named, numbered, immutable versions, each written whole.

Both on-disk stores (steering vectors, model variants) are a `VersionedStore` with their own data
file and codec on top, so they cannot drift apart on what makes a write safe or a read checked.
Layout::

    <root>/<model>/<name>/<version>/<data file>      tensors (safetensors)
    <root>/<model>/<name>/<version>/manifest.json    facts, sealed, with the data file's sha256
    <root>/<model>/<name>/.lock                      the name's ``flock``
    <root>/<model>/<name>/.counter                   the highest version ever allocated

A version is written in three steps:

1. the data file is written into a fresh ``.tmp-*`` directory beside the versions, then hashed and
   fsynced, all outside the lock (it may be large, and other writers need not wait for it);
2. under the name's ``flock`` the next number is allocated (one past both the recorded counter and
   the highest complete version, so a deleted number is never handed out again), the manifest is
   built for it, sealed, written and fsynced, and the directory is renamed into place;
3. still under the lock, the counter is raised and the ``.tmp-*`` debris of long-dead writers is
   swept (`store.debris.sweep_stale_tmp`).

A reader therefore sees a version whole or not at all (`store.names.complete_versions` only
matches numbered directories), and a writer killed at any point leaves at most a dot-named
directory that readers ignore and a later write removes. Every read checks the manifest's seal
and the data file's sha256 (`store.integrity`).
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from store.debris import TMP_PREFIX, sweep_stale_tmp
from store.durable import fsync_path, locked
from store.integrity import CorruptEntryError, check_file, read_manifest, seal, sha256_file
from store.names import check_name, complete_versions, named_dirs, parse_ref

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
COUNTER_FILE = ".counter"  # highest version ever allocated, so deleted numbers are not reused


class EntryNotFoundError(KeyError):
    """No stored entry (variant or vector) matches a model, name and (optional) version.

    Attributes:
        kind: ``variant`` or ``vector``.
        model, name, version: what was asked for (version None: the latest).
        ref: ``name`` or ``name@version``, as asked.
    """

    def __init__(self, kind: str, model: str, name: str, version: int | None = None, *, noun: str = "") -> None:
        self.kind, self.model, self.name, self.version = kind, model, name, version
        self.ref = name if version is None else f"{name}@{version}"
        which = f"{name!r}" if version is None else f"{name!r} version {version}"
        super().__init__(f"no {noun or kind} {which} of model {model!r}")

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote the message a second time


class WrittenVersion(NamedTuple):
    """A version just renamed into place: its number and its manifest as sealed and written."""

    version: int
    manifest: dict[str, Any]


class StoredEntry(NamedTuple):
    """One version as read back: its manifest (seal checked) and its data file's bytes (hash checked)."""

    name: str
    version: int
    manifest: dict[str, Any]
    data: bytes


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


class VersionedStore:
    """Versions of one kind of entry under ``root``, by model, name and number.

    Args:
        root: the store's directory (created on the first write).
        kind: ``variant`` or ``vector``: names the entries in references and in `EntryNotFoundError`.
        data_file: the data file's name inside each version (``components.safetensors``, ...).
        noun: how messages name an entry (``steering vector``); ``kind`` when empty.
    """

    def __init__(self, root: Path, *, kind: str, data_file: str, noun: str = "") -> None:
        self.root = Path(root)
        self.kind, self.data_file, self.noun = kind, data_file, noun or kind

    def name_dir(self, model: str, name: str) -> Path:
        """The directory of one name's versions, both names checked (nothing is created)."""
        check_name("model name", model)
        check_name(f"{self.kind} name", name)
        return self.root / model / name

    def _not_found(self, model: str, name: str, version: int | None = None) -> EntryNotFoundError:
        return EntryNotFoundError(self.kind, model, name, version, noun=self.noun)

    def write(self, model: str, name: str, write_data: Callable[[Path], None],
              build_manifest: Callable[[int, str], dict[str, Any]],
              before_publish: Callable[[dict[str, Any]], None] | None = None) -> WrittenVersion:
        """Write one new version of a name: its data file and its sealed manifest, renamed into place.

        Args:
            model: the model the entry belongs to.
            name: the entry's name.
            write_data: writes the data file at the path it is given (inside a temporary directory).
            build_manifest: the manifest for a version number and the data file's sha256, called under
                the lock once the number is known; it is sealed (`store.integrity.seal`) here.
            before_publish: called with the sealed manifest once everything is on disk, just before the
                rename that publishes it (a job records there what it is publishing); raising aborts.

        Returns:
            The version's number and its manifest, as a later read returns it.

        Raises:
            ValueError: a name that is not a plain path component.
            Whatever ``write_data`` or ``build_manifest`` raise, or an ``OSError`` from the disk. The
            temporary directory is removed first; a failure before the rename leaves no version, one
            after it (raising the counter) leaves a complete version that `next_version` still counts.
        """
        name_dir = self.name_dir(model, name)
        name_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=name_dir))
        try:
            write_data(tmp / self.data_file)
            digest = sha256_file(tmp / self.data_file)
            fsync_path(tmp / self.data_file)
            with locked(name_dir / LOCK_FILE):
                version = next_version(name_dir)
                manifest = seal(build_manifest(version, digest))
                # Strict JSON: a NaN written here would be a manifest no JSON parser but Python's reads.
                (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, allow_nan=False))
                fsync_path(tmp / MANIFEST_FILE)
                # mkdtemp makes the directory private; the API and the workers may run as different users.
                os.chmod(tmp, 0o755)
                if before_publish is not None:
                    before_publish(manifest)
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

    def resolve(self, model: str, ref: str) -> tuple[str, int]:
        """The name and exact version ``ref`` means now (the latest for a bare name).

        Raises:
            EntryNotFoundError: no such entry or version.
            ValueError: a malformed reference.
        """
        name, version = parse_ref(ref, self.kind)
        versions = complete_versions(self.name_dir(model, name))
        if version is None:
            if not versions:
                raise self._not_found(model, name)
            return name, versions[-1]
        if version not in versions:
            raise self._not_found(model, name, version)
        return name, version

    def manifest(self, model: str, ref: str) -> dict[str, Any]:
        """The manifest of ``ref``, its seal checked (the data file is not read).

        Raises:
            EntryNotFoundError: no such entry or version.
            CorruptEntryError: the manifest is damaged.
            ValueError: a malformed reference.
        """
        name, version = self.resolve(model, ref)
        return self._manifest(model, name, version)

    def read(self, model: str, ref: str) -> StoredEntry:
        """The manifest and data file of ``ref``, refused unless both match their hashes.

        Raises:
            EntryNotFoundError: no such entry or version (or deleted meanwhile).
            CorruptEntryError: either file is damaged.
            ValueError: a malformed reference.
        """
        name, version = self.resolve(model, ref)
        manifest = self._manifest(model, name, version)
        try:
            data = (self.name_dir(model, name) / str(version) / self.data_file).read_bytes()
        except FileNotFoundError:
            raise self._not_found(model, name, version) from None
        check_file(data, manifest.get("sha256"), self._what(model, name, version), self.data_file)
        return StoredEntry(name, version, manifest, data)

    def verify(self, model: str, ref: str) -> dict[str, Any]:
        """The manifest of ``ref`` after checking both its seal and its data file's hash (see `read`)."""
        return self.read(model, ref).manifest

    def list(self, model: str | None = None) -> builtins.list[dict[str, Any]]:
        """Manifests of every stored version (of one model, or all), sorted by model, name, version.

        A damaged manifest is logged and left out; asking for it by name reports it.
        """
        if model is not None:
            check_name("model name", model)
        model_dirs = [self.root / model] if model is not None else named_dirs(self.root)
        found = []
        for model_dir in model_dirs:
            for name_dir in named_dirs(model_dir):
                for version in complete_versions(name_dir):
                    try:
                        found.append(self._manifest(model_dir.name, name_dir.name, version))
                    except (EntryNotFoundError, OSError):
                        continue  # deleted meanwhile
                    except CorruptEntryError as exc:
                        log.warning("%s", exc)
        return found

    def delete(self, model: str, ref: str) -> builtins.list[int]:
        """Delete one version (``name@3``) or every version (``name``); returns the versions deleted.

        The name's directory, lock and counter stay behind, so its numbers are never reused.

        Raises:
            EntryNotFoundError: no such entry or version.
            ValueError: a malformed reference.
        """
        name, version = parse_ref(ref, self.kind)
        name_dir = self.name_dir(model, name)
        if not name_dir.is_dir():
            raise self._not_found(model, name, version)
        with locked(name_dir / LOCK_FILE):
            versions = complete_versions(name_dir)
            doomed = versions if version is None else [v for v in versions if v == version]
            if not doomed:
                raise self._not_found(model, name, version)
            record_version(name_dir, max(doomed))
            for v in doomed:
                # Rename first: a reader sees the version whole or gone, never half-deleted.
                trash = name_dir / f".deleted-{v}-{uuid.uuid4().hex}"
                os.rename(name_dir / str(v), trash)
                shutil.rmtree(trash)
        return doomed

    def _what(self, model: str, name: str, version: int) -> str:
        return f"{self.noun} {name}@{version} of {model}"

    def _manifest(self, model: str, name: str, version: int) -> dict[str, Any]:
        path = self.name_dir(model, name) / str(version) / MANIFEST_FILE
        try:
            return read_manifest(path, self._what(model, name, version))
        except FileNotFoundError:
            raise self._not_found(model, name, version) from None  # deleted meanwhile

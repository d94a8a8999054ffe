"""Model variants on disk: named, versioned, immutable, self-contained.

A variant is the base model plus an ordered list of components (`engine.components`: erasers,
low-rank weight deltas). Layout::

    <root>/<model>/<name>/<version>/components.safetensors   tensors "<index>.<tensor name>", float32
    <root>/<model>/<name>/<version>/manifest.json            facts, provenance, report, sha256

``name@3`` is one variant forever; ``name`` means the latest version. A version derived from a
parent stores the parent's components first and its own after them, so it is served from its own
files alone: deleting the parent later breaks nothing, and "rolling back" is serving the parent
(or the base model). The manifest records the parent's ref and file hash, the lineage, the method,
the request, the hyperparameters and the evaluation report, with each component's origin and
content hash.

Writes go to a temporary directory that is renamed into place, with version numbers allocated
under an ``flock`` and never reused after a delete (`engine.versioned_dirs`, shared with the
steering-vector store), so readers see a version whole or not at all and concurrent writers
(threads or processes) get distinct numbers. Only safetensors and JSON are read; the manifest is
sealed with its own hash and the tensor file's sha256 is checked against it on every load
(`engine.store_integrity`), so a damaged version raises `CorruptEntryError`.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from engine import store_names
from engine.components import Component, component_from_parts, content_hash
from engine.durable_files import locked
from engine.store_integrity import CorruptEntryError, check_file, read_manifest
from engine.store_names import NAME, check_name, complete_versions
from engine.versioned_dirs import LOCK_FILE, MANIFEST_FILE, record_version, write_version

log = logging.getLogger(__name__)

COMPONENTS_FILE = "components.safetensors"


class VariantNotFoundError(KeyError):
    """No stored variant matches a model, name and (optional) version."""

    def __init__(self, model: str, name: str, version: int | None = None) -> None:
        self.model, self.name, self.version = model, name, version
        which = f"{name!r}" if version is None else f"{name!r} version {version}"
        super().__init__(f"no variant {which} of model {model!r}")

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote the message a second time


@dataclass(frozen=True, eq=False)
class Variant:
    """One stored version: its manifest and its components, parent's first."""

    model: str
    name: str
    version: int
    manifest: dict[str, Any]
    components: tuple[Component, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def on(self, device: torch.device | str) -> Variant:
        """The same variant with its components' tensors on ``device`` (moved once, not every pass)."""
        return Variant(self.model, self.name, self.version, self.manifest,
                       tuple(component.to(device) for component in self.components))


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name@version`` into the name and the version (None: the latest)."""
    return store_names.parse_ref(ref, "variant")


class VariantStore:
    """Variants under ``root``, by model, name and version."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _name_dir(self, model: str, name: str) -> Path:
        check_name("model name", model)
        check_name("variant name", name)
        return self.root / model / name

    def save(self, model: str, name: str, components: Sequence[Component], *, method: str, hidden_size: int,
             parent: Variant | None = None, request: dict[str, Any] | None = None,
             hyperparameters: dict[str, Any] | None = None, report: dict[str, Any] | None = None,
             provenance: dict[str, Any] | None = None) -> Variant:
        """Store ``parent``'s components then ``components`` as the next version of ``name``.

        Args:
            model: the base model's name.
            name: the variant's name, a plain path component.
            components: this version's own components, in the order they apply.
            method: what made them (``leace``, ``rome``, ...).
            hidden_size: the base model's hidden size, checked when the variant is served.
            parent: the variant this one builds on, or None for the base model.
            request, hyperparameters, report, provenance: JSON facts kept in the manifest.

        Returns:
            The stored version, as `load` returns it.
        """
        name_dir = self._name_dir(model, name)
        if not components:
            raise ValueError("a variant needs at least one component of its own")
        if parent is not None and parent.model != model:
            raise ValueError(f"the parent {parent.ref} belongs to model {parent.model!r}, not {model!r}")
        extras = {"request": request or {}, "hyperparameters": hyperparameters or {}, "report": report,
                  "provenance": provenance or {}}
        try:
            json.dumps(extras)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"variant facts must be JSON-serialisable: {exc}") from exc
        inherited = list(parent.components) if parent is not None else []
        origins = [entry["origin"] for entry in parent.manifest["components"]] if parent is not None else []
        everything = [*inherited, *components]
        hashes = [content_hash(c) for c in everything]
        tensors = {f"{index}.{key}": t.detach().to("cpu", torch.float32).contiguous()
                   for index, component in enumerate(everything) for key, t in component.tensors().items()}

        def manifest_for(version: int, digest: str) -> dict[str, Any]:
            # Built under the lock: this version's own components name it as their origin.
            ref = f"{name}@{version}"
            entries = [{"index": i, **c.describe(), "origin": (origins + [ref] * len(components))[i],
                        "sha256": hashes[i]} for i, c in enumerate(everything)]
            return {
                "model": model, "name": name, "version": version, "ref": ref,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "method": method, "hidden_size": hidden_size,
                "parent": parent.ref if parent is not None else None,
                "parent_sha256": parent.manifest["sha256"] if parent is not None else None,
                "lineage": [*parent.manifest["lineage"], parent.ref] if parent is not None else [],
                "components": entries, "sha256": digest, **extras,
            }

        # `save_file` is looked up when called, so a test can stand in for the disk.
        written = write_version(name_dir, COMPONENTS_FILE, lambda path: save_file(tensors, path), manifest_for)
        return Variant(model, name, written.version, written.manifest, tuple(everything))

    def resolve(self, model: str, ref: str) -> tuple[str, int]:
        """The name and exact version ``ref`` means now (the latest for a bare name).

        Raises:
            VariantNotFoundError: no such variant or version.
            ValueError: a malformed reference.
        """
        name, version = parse_ref(ref)
        name_dir = self._name_dir(model, name)
        versions = complete_versions(name_dir)
        if version is None:
            if not versions:
                raise VariantNotFoundError(model, name)
            return name, versions[-1]
        if version not in versions:
            raise VariantNotFoundError(model, name, version)
        return name, version

    def manifest(self, model: str, ref: str) -> dict[str, Any]:
        """The manifest of ``ref``, its seal checked (no tensors read).

        Raises:
            VariantNotFoundError: no such variant or version.
            CorruptEntryError: the manifest is damaged.
        """
        name, version = self.resolve(model, ref)
        try:
            return read_manifest(self._name_dir(model, name) / str(version) / MANIFEST_FILE,
                                 f"variant {name}@{version} of {model}")
        except FileNotFoundError:
            raise VariantNotFoundError(model, name, version) from None  # deleted meanwhile

    def _checked_bytes(self, model: str, manifest: dict[str, Any]) -> bytes:
        """The tensor file of a version, refused unless its sha256 is the manifest's."""
        name, version = manifest["name"], int(manifest["version"])
        try:
            data = (self._name_dir(model, name) / str(version) / COMPONENTS_FILE).read_bytes()
        except FileNotFoundError:
            raise VariantNotFoundError(model, name, version) from None
        check_file(data, manifest.get("sha256"), f"variant {name}@{version} of {model}", COMPONENTS_FILE)
        return data

    def verify(self, model: str, ref: str) -> dict[str, Any]:
        """The manifest of ``ref`` after checking both its seal and its tensor file's hash.

        Raises:
            VariantNotFoundError: no such variant or version.
            CorruptEntryError: either file is damaged.
        """
        manifest = self.manifest(model, ref)
        self._checked_bytes(model, manifest)
        return manifest

    def load(self, model: str, ref: str) -> Variant:
        """Load ``name`` (its latest version) or ``name@version``, checking the file against its sha256.

        Raises:
            VariantNotFoundError: no such model, name or version.
            CorruptEntryError: a stored version that is damaged.
            ValueError: a bad reference, or a component kind this build does not know.
        """
        manifest = self.manifest(model, ref)
        name, version = manifest["name"], int(manifest["version"])
        tensors = load_safetensors(self._checked_bytes(model, manifest))
        components = []
        for entry in manifest["components"]:
            prefix = f"{entry['index']}."
            parts = {key.removeprefix(prefix): t for key, t in tensors.items() if key.startswith(prefix)}
            components.append(component_from_parts(entry, parts))
        return Variant(model, name, version, manifest, tuple(components))

    def list(self, model: str) -> builtins.list[dict[str, Any]]:
        """Manifests of every stored version of ``model``, sorted by name then version."""
        root = self.root / model
        check_name("model name", model)
        found = []
        if root.is_dir():
            for name_dir in sorted(p for p in root.iterdir() if p.is_dir() and NAME.fullmatch(p.name)):
                for version in complete_versions(name_dir):
                    try:
                        found.append(read_manifest(name_dir / str(version) / MANIFEST_FILE,
                                                   f"variant {name_dir.name}@{version} of {model}"))
                    except OSError:
                        continue  # deleted meanwhile
                    except CorruptEntryError as exc:  # never listed; asking for it by name reports it
                        log.warning("%s", exc)
        return sorted(found, key=lambda m: (m["name"], m["version"]))

    def delete(self, model: str, ref: str) -> builtins.list[int]:
        """Delete one version (``name@3``) or every version (``name``); returns the versions deleted.

        Children keep working: each version holds its parent's components itself.
        """
        name, version = parse_ref(ref)
        name_dir = self._name_dir(model, name)
        if not name_dir.is_dir():
            raise VariantNotFoundError(model, name, version)
        with locked(name_dir / LOCK_FILE):
            versions = complete_versions(name_dir)
            doomed = versions if version is None else [v for v in versions if v == version]
            if not doomed:
                raise VariantNotFoundError(model, name, version)
            record_version(name_dir, max(doomed))
            for v in doomed:
                # Rename first: a reader sees the version whole or gone, never half-deleted.
                trash = name_dir / f".deleted-{v}-{uuid.uuid4().hex}"
                os.rename(name_dir / str(v), trash)
                shutil.rmtree(trash)
        return doomed

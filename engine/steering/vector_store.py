"""Named, versioned, immutable steering vectors on disk.

Layout: ``<root>/<model>/<name>/<version>/{vector.safetensors, manifest.json}``, tensors
``layer.<l>`` float32. A version is written whole into a temporary directory next to it and
renamed into place, so readers see a version complete or not at all; its number is allocated
under an ``flock`` on ``<root>/<model>/<name>/.lock``, so concurrent writers (threads or
processes) get distinct numbers (`engine.versioned_dirs`, shared with the variant store). Numbers
are never reused, even after a delete: ``name@3`` means one vector forever. Only safetensors and
JSON are ever read, never pickle; the manifest is sealed with its own hash and its sha256 of the
tensor file is checked on every load (`engine.store_integrity`), so a damaged version raises
`CorruptEntryError`.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from engine import store_names
from engine.durable_files import locked
from engine.steering.extraction import SteeringVector
from engine.store_integrity import CorruptEntryError, check_file, read_manifest
from engine.store_names import NAME, check_name, complete_versions
from engine.versioned_dirs import LOCK_FILE, MANIFEST_FILE, record_version, write_version

log = logging.getLogger(__name__)

VECTOR_FILE = "vector.safetensors"


class VectorNotFoundError(KeyError):
    """No stored vector matches a model, name and (optional) version."""

    def __init__(self, model: str, name: str, version: int | None = None) -> None:
        self.model, self.name, self.version = model, name, version
        which = f"{name!r}" if version is None else f"{name!r} version {version}"
        super().__init__(f"no steering vector {which} for model {model!r}")

    def __str__(self) -> str:
        # KeyError would repr() the message, quoting it a second time.
        return str(self.args[0])


@dataclass(frozen=True)
class StoredVector:
    """One stored version: its manifest (as written) and the vector it holds."""

    name: str
    version: int
    manifest: dict[str, Any]
    vector: SteeringVector


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name@version`` into the name and the version (None: the latest)."""
    return store_names.parse_ref(ref, "vector")


def _subdirs(parent: Path) -> list[Path]:
    """Subdirectories that are valid names (model or vector), skipping locks, temporaries and strays."""
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if p.is_dir() and NAME.fullmatch(p.name)]


def _vector_from(manifest: dict[str, Any], tensors: dict[str, torch.Tensor]) -> SteeringVector:
    layers = [int(layer) for layer in manifest["layers"]]
    if sorted(tensors) != sorted(f"layer.{layer}" for layer in layers):
        raise CorruptEntryError(f"corrupt steering vector: tensors {sorted(tensors)} do not match layers {layers}")
    return SteeringVector(
        model=manifest["model"],
        directions={layer: tensors[f"layer.{layer}"] for layer in layers},
        method=manifest["method"],
        reading=manifest["reading"],
        n_pairs=int(manifest["n_pairs"]),
        normalized=bool(manifest["normalized"]),
        norms={int(k): float(v) for k, v in manifest["norms"].items()},
        accuracy={int(k): None if v is None else float(v) for k, v in manifest["accuracy"].items()},
        layer_scores={int(k): float(v) for k, v in manifest["layer_scores"].items()},
    )


class VectorStore:
    """Steering vectors under ``root``, by model, name and version."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _name_dir(self, model: str, name: str) -> Path:
        check_name("model name", model)
        check_name("vector name", name)
        return self.root / model / name

    def save(self, name: str, vector: SteeringVector, provenance: dict[str, Any] | None = None) -> StoredVector:
        """Store ``vector`` as the next version of ``name`` for its model; nothing is overwritten.

        Args:
            name: the vector's name, a plain path component.
            vector: what to store; its directions are written as float32.
            provenance: free JSON-serialisable facts from the caller (prompts, job id, ...).

        Returns:
            The stored version, as :meth:`load` would return it.
        """
        name_dir = self._name_dir(vector.model, name)
        if not vector.directions:
            raise ValueError("a steering vector needs at least one layer")
        tensors = {f"layer.{layer}": t.detach().to("cpu", torch.float32).contiguous()
                   for layer, t in sorted(vector.directions.items())}
        if len({t.shape for t in tensors.values()}) != 1 or next(iter(tensors.values())).ndim != 1:
            raise ValueError("every layer's direction must be a [hidden] tensor of one size")
        try:
            json.dumps(provenance or {})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"provenance must be JSON-serialisable: {exc}") from exc

        def manifest_for(version: int, digest: str) -> dict[str, Any]:
            return {
                "name": name,
                "version": version,
                "model": vector.model,
                "layers": sorted(vector.directions),
                "method": vector.method,
                "reading": vector.reading,
                "n_pairs": vector.n_pairs,
                "normalized": vector.normalized,
                "norms": {str(k): v for k, v in sorted(vector.norms.items())},
                "accuracy": {str(k): v for k, v in sorted(vector.accuracy.items())},
                "layer_scores": {str(k): v for k, v in sorted(vector.layer_scores.items())},
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "hidden_size": int(next(iter(tensors.values())).shape[0]),
                "sha256": digest,
                "provenance": provenance or {},
            }

        # `save_file` is looked up when called, so a test can stand in for the disk.
        written = write_version(name_dir, VECTOR_FILE, lambda path: save_file(tensors, path), manifest_for)
        # Rebuilt from what was written (float32 on the CPU), exactly as `load` will return it.
        return StoredVector(name=name, version=written.version, manifest=written.manifest,
                            vector=_vector_from(written.manifest, tensors))

    def load(self, model: str, ref: str) -> StoredVector:
        """Load ``name`` (its latest version) or ``name@version``, checking the file against its sha256.

        Raises:
            VectorNotFoundError: no such model, name or version.
            CorruptEntryError: a stored version that is damaged.
            ValueError: a bad reference.
        """
        name, version = parse_ref(ref)
        name_dir = self._name_dir(model, name)
        if version is None:
            versions = complete_versions(name_dir)
            if not versions:
                raise VectorNotFoundError(model, name)
            version = versions[-1]
        version_dir = name_dir / str(version)
        what = f"steering vector {name}@{version} of {model}"
        try:
            manifest = read_manifest(version_dir / MANIFEST_FILE, what)
            data = (version_dir / VECTOR_FILE).read_bytes()
        except FileNotFoundError:
            raise VectorNotFoundError(model, name, version) from None
        check_file(data, manifest.get("sha256"), what, VECTOR_FILE)
        return StoredVector(name=name, version=version, manifest=manifest,
                            vector=_vector_from(manifest, load_safetensors(data)))

    def list(self, model: str | None = None) -> list[dict[str, Any]]:
        """Manifests of every stored version (of one model, or all), sorted by model, name, version."""
        if model is not None:
            check_name("model name", model)
        models = [model] if model is not None else sorted(p.name for p in _subdirs(self.root))
        found = []
        for each in models:
            for name_dir in _subdirs(self.root / each):
                for version in complete_versions(name_dir):
                    try:
                        found.append(read_manifest(name_dir / str(version) / MANIFEST_FILE,
                                                   f"steering vector {name_dir.name}@{version} of {each}"))
                    except OSError:
                        continue  # deleted meanwhile
                    except CorruptEntryError as exc:  # never listed; asking for it by name reports it
                        log.warning("%s", exc)
        return sorted(found, key=lambda m: (m["model"], m["name"], m["version"]))

    def delete(self, model: str, ref: str) -> builtins.list[int]:
        """Delete one version (``name@3``) or every version (``name``); returns the versions deleted.

        The name's directory, lock and counter stay behind, so its numbers are never reused.
        """
        name, version = parse_ref(ref)
        name_dir = self._name_dir(model, name)
        if not name_dir.is_dir():
            raise VectorNotFoundError(model, name, version)
        with locked(name_dir / LOCK_FILE):
            versions = complete_versions(name_dir)
            doomed = versions if version is None else [v for v in versions if v == version]
            if not doomed:
                raise VectorNotFoundError(model, name, version)
            record_version(name_dir, max(doomed))
            for v in doomed:
                # Rename first: a reader sees the version whole or gone, never half-deleted.
                trash = name_dir / f".deleted-{v}-{uuid.uuid4().hex}"
                os.rename(name_dir / str(v), trash)
                shutil.rmtree(trash)
        return doomed

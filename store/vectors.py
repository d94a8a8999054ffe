"""Named, versioned, immutable steering vectors on disk.

Layout: ``<root>/<model>/<name>/<version>/{vector.safetensors, manifest.json}``, tensors
``layer.<l>`` float32. Writing, numbering, listing, deleting and checking are
`store.versioned.VersionedStore`'s (shared with the variant store): a version is renamed into place
whole, its number is allocated under an ``flock`` and never reused, even after a delete
(``name@3`` means one vector forever), and every load checks the sealed manifest and the tensor
file's sha256, so a damaged version raises `CorruptEntryError` and a missing one
`EntryNotFoundError` (kind ``vector``). This module is the codec: an
`engine.steering.extraction.SteeringVector` to tensors and a manifest, and back. Only safetensors
and JSON are ever read, never pickle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from engine.steering.extraction import SteeringVector
from store.integrity import CorruptEntryError, NonFiniteError, check_finite
from store.versioned import VersionedStore

VECTOR_FILE = "vector.safetensors"


@dataclass(frozen=True)
class StoredVector:
    """One stored version: its manifest (as written) and the vector it holds."""

    name: str
    version: int
    manifest: dict[str, Any]
    vector: SteeringVector


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


class VectorStore(VersionedStore):
    """Steering vectors under ``root``, by model, name and version."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, kind="vector", data_file=VECTOR_FILE, noun="steering vector")

    def save(self, name: str, vector: SteeringVector, provenance: dict[str, Any] | None = None,
             before_publish: Callable[[dict[str, Any]], None] | None = None) -> StoredVector:
        """Store ``vector`` as the next version of ``name`` for its model; nothing is overwritten.

        Args:
            name: the vector's name, a plain path component.
            vector: what to store; its directions are written as float32.
            provenance: free JSON-serialisable facts from the caller (prompts, job id, ...).
            before_publish: called with the manifest just before the version becomes visible.

        Returns:
            The stored version, as :meth:`load` would return it.

        Raises:
            NonFiniteError: a direction or a figure holds NaN or infinity (nothing is written).
            ValueError: a bad name, no layer, directions of different shapes, or provenance that is not JSON.
        """
        self.name_dir(vector.model, name)  # refuse bad names before anything else
        if not vector.directions:
            raise ValueError("a steering vector needs at least one layer")
        tensors = {f"layer.{layer}": t.detach().to("cpu", torch.float32).contiguous()
                   for layer, t in sorted(vector.directions.items())}
        if len({t.shape for t in tensors.values()}) != 1 or next(iter(tensors.values())).ndim != 1:
            raise ValueError("every layer's direction must be a [hidden] tensor of one size")
        check_finite(tensors, f"vector {name!r}")  # after the float32 cast, which turns 1e39 into inf
        figures: dict[str, Mapping[int, float | None]] = {
            "norms": vector.norms, "accuracy": vector.accuracy, "layer_scores": vector.layer_scores}
        if bad := [f"{kind}[{k}]" for kind, values in figures.items() for k, v in values.items()
                   if v is not None and not math.isfinite(v)]:
            raise NonFiniteError(f"vector {name!r}: {', '.join(bad)} are not finite")
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
        written = self.write(vector.model, name, lambda path: save_file(tensors, path), manifest_for,
                             before_publish)
        # Rebuilt from what was written (float32 on the CPU), exactly as `load` will return it.
        return StoredVector(name=name, version=written.version, manifest=written.manifest,
                            vector=_vector_from(written.manifest, tensors))

    def load(self, model: str, ref: str) -> StoredVector:
        """Load ``name`` (its latest version) or ``name@version``, checking the file against its sha256.

        Raises:
            EntryNotFoundError: no such model, name or version.
            CorruptEntryError: a stored version that is damaged.
            NonFiniteError: its directions hold NaN or infinity.
            ValueError: a bad reference.
        """
        entry = self.read(model, ref)
        tensors = load_safetensors(entry.data)
        check_finite(tensors, f"vector {entry.name}@{entry.version}")  # written before writes were checked
        return StoredVector(name=entry.name, version=entry.version, manifest=entry.manifest,
                            vector=_vector_from(entry.manifest, tensors))



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

Writing, numbering, listing, deleting and checking are `store.versioned.VersionedStore`'s (shared
with the steering-vector store): versions are renamed into place whole, numbered under an
``flock`` and never reused after a delete, and every load checks the sealed manifest and the
tensor file's sha256, so a damaged version raises `CorruptEntryError` and a missing one
`EntryNotFoundError` (kind ``variant``). This module is the codec: components to tensors and a
manifest, and back. Only safetensors and JSON are read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from engine.components import Component, component_from_parts, content_hash
from store.integrity import NonFiniteError, check_finite
from store.versioned import VersionedStore

COMPONENTS_FILE = "components.safetensors"


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
        """``name@version``: this exact version."""
        return f"{self.name}@{self.version}"

    def on(self, device: torch.device | str) -> Variant:
        """The same variant with its components' tensors on ``device`` (moved once, not every pass)."""
        return Variant(self.model, self.name, self.version, self.manifest,
                       tuple(component.to(device) for component in self.components))


class VariantStore(VersionedStore):
    """Variants under ``root``, by model, name and version."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, kind="variant", data_file=COMPONENTS_FILE)

    def save(self, model: str, name: str, components: Sequence[Component], *, method: str, hidden_size: int,
             parent: Variant | None = None, request: dict[str, Any] | None = None,
             hyperparameters: dict[str, Any] | None = None, report: dict[str, Any] | None = None,
             provenance: dict[str, Any] | None = None,
             before_publish: Callable[[dict[str, Any]], None] | None = None) -> Variant:
        """Store ``parent``'s components then ``components`` as the next version of ``name``.

        Args:
            model: the base model's name.
            name: the variant's name, a plain path component.
            components: this version's own components, in the order they apply.
            method: what made them (``leace``, ``rome``, ...).
            hidden_size: the base model's hidden size, checked when the variant is served.
            parent: the variant this one builds on, or None for the base model.
            request, hyperparameters, report, provenance: JSON facts kept in the manifest.
            before_publish: called with the manifest just before the version becomes visible.

        Returns:
            The stored version, as `load` returns it.

        Raises:
            NonFiniteError: a component holds NaN or infinity (nothing is written).
            ValueError: a bad name, no components, a parent of another model, or facts that are not JSON.
        """
        self.name_dir(model, name)  # refuse bad names before anything else
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
        try:
            json.dumps(extras, allow_nan=False)
        except ValueError as exc:  # a NaN in a report would be written as JSON no client can parse
            raise NonFiniteError(f"the variant's facts (request, report) hold a non-finite number: {exc}") from exc
        for index, component in enumerate(components):
            check_finite(component.tensors(), f"component {index} ({component.site})")
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
        written = self.write(model, name, lambda path: save_file(tensors, path), manifest_for, before_publish)
        return Variant(model, name, written.version, written.manifest, tuple(everything))

    def load(self, model: str, ref: str) -> Variant:
        """Load ``name`` (its latest version) or ``name@version``, checking the file against its sha256.

        Raises:
            EntryNotFoundError: no such model, name or version.
            CorruptEntryError: a stored version that is damaged.
            NonFiniteError: a component holds NaN or infinity.
            ValueError: a bad reference, or a component kind this build does not know.
        """
        entry = self.read(model, ref)
        tensors = load_safetensors(entry.data)
        components = []
        for part in entry.manifest["components"]:
            prefix = f"{part['index']}."
            parts = {key.removeprefix(prefix): t for key, t in tensors.items() if key.startswith(prefix)}
            # Written before stores refused non-finite tensors: refused here, never served.
            check_finite(parts, f"component {part['index']} ({part.get('site')}) of {entry.name}@{entry.version}")
            components.append(component_from_parts(part, parts))
        return Variant(model, entry.name, entry.version, entry.manifest, tuple(components))



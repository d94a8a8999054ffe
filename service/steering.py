"""Turning a request's steering specs into runtime `Steering` entries, or a 4xx naming the field."""

from __future__ import annotations

import torch

from engine.loading import LoadedModel
from engine.runtime import Steering
from schemas.generation import SteeringSpec
from service.problems import ProblemError
from store.integrity import CorruptEntryError
from store.vectors import VectorStore
from store.versioned import EntryNotFoundError


def resolve_steering(lm: LoadedModel, store: VectorStore, specs: list[SteeringSpec]) -> list[Steering]:
    """Load stored vectors from ``store`` (the caller's tenant's), check sizes and layers; one `Steering`
    per (spec, layer)."""
    entries: list[Steering] = []
    for index, spec in enumerate(specs):
        where = f"steering.{index}"
        directions: dict[int, torch.Tensor]
        if spec.vector is not None:
            try:
                stored = store.load(lm.name, spec.vector)
            except EntryNotFoundError as exc:
                raise ProblemError(404, "Unknown vector", str(exc).strip("'\""), field=f"{where}.vector") from exc
            except CorruptEntryError as exc:  # a corrupt file is reported, not served
                raise ProblemError(409, "Corrupt vector", f"{exc}; it is not served: delete it and extract it again",
                                   field=f"{where}.vector") from exc
            directions = stored.vector.directions
            layers = spec.layers or sorted(directions)
            missing = [layer for layer in layers if layer not in directions]
            if missing:
                raise ProblemError(422, "Invalid request", f"vector {spec.vector!r} has no direction for layers "
                                   f"{missing}; it has {sorted(directions)}", field=f"{where}.layers")
        else:
            assert spec.values is not None and spec.layers is not None
            if len(spec.values) != lm.hidden_size:
                raise ProblemError(422, "Invalid request", f"the inline vector has {len(spec.values)} values; "
                                   f"{lm.name} has hidden size {lm.hidden_size}", field=f"{where}.values")
            layers = spec.layers
            value = torch.tensor(spec.values, dtype=torch.float32)
            directions = dict.fromkeys(layers, value)
        bad = [layer for layer in layers if not 0 <= layer < lm.n_layers]
        if bad:
            raise ProblemError(422, "Invalid request", f"layers {bad} are out of range: {lm.name} has blocks "
                               f"0..{lm.n_layers - 1}", field=f"{where}.layers")
        entries.extend(Steering(layer, directions[layer], spec.alpha, spec.positions) for layer in layers)
    return entries

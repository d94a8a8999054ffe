"""Steering: control vectors read from contrastive prompts (stored by `store.vectors`)."""

from engine.steering.extraction import (
    SteeringVector,
    VectorFitter,
    extract_vector,
    read_activations,
)

__all__ = [
    "SteeringVector",
    "VectorFitter",
    "extract_vector",
    "read_activations",
]

"""Steering: control vectors read from contrastive prompts, stored by name and version."""

from engine.steering.extraction import (
    SteeringVector,
    VectorFitter,
    extract_vector,
    read_activations,
)
from engine.steering.vector_store import StoredVector, VectorNotFoundError, VectorStore, parse_ref

__all__ = [
    "SteeringVector",
    "StoredVector",
    "VectorFitter",
    "VectorNotFoundError",
    "VectorStore",
    "extract_vector",
    "parse_ref",
    "read_activations",
]

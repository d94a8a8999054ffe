"""Knowledge editing: ROME and MEMIT computed as low-rank deltas, never by mutating the base weights."""

from engine.editing.progress import EditCancelled, EditCancelledError

__all__ = ["EditCancelled", "EditCancelledError"]

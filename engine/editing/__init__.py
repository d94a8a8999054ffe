"""Knowledge editing: ROME and MEMIT computed as low-rank deltas, never by mutating the base weights."""

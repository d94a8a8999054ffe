"""Where the editing code caches files on disk (context templates, key statistics), by model.

Cached files are keyed by a model's *fingerprint* (its name, source and configuration), so two
models served under one name, or a name reused for another model, never share statistics. Every
write goes through `engine.durable_files` (a temporary file renamed into place, under an ``flock``
held by whoever computes), so two workers never compute the same thing twice and a crash never
leaves half a file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from engine.loading import LoadedModel

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def model_dir(root: Path, lm: LoadedModel) -> Path:
    """``root/<name>-<fingerprint>``: where one model's cached files live."""
    config = lm.model.config.to_json_string(use_diff=False)
    fingerprint = hashlib.sha256(f"{lm.name}\n{lm.source}\n{config}".encode()).hexdigest()[:12]
    name = _UNSAFE.sub("_", lm.name).strip("._") or "model"
    return Path(root) / f"{name}-{fingerprint}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

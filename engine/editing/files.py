"""Files the editing code caches on disk (context templates, key statistics): names, locks, atomic writes.

Cached files are keyed by a model's *fingerprint* (its name, source and configuration), so two
models served under one name, or a name reused for another model, never share statistics. Every
write goes to a temporary file in the same directory that is renamed into place, under an
``flock`` held by whoever computes, so two workers never compute the same thing twice and a crash
never leaves half a file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.loading import LoadedModel

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def model_dir(root: Path, lm: LoadedModel) -> Path:
    """``root/<name>-<fingerprint>``: where one model's cached files live."""
    config = lm.model.config.to_json_string(use_diff=False)
    fingerprint = hashlib.sha256(f"{lm.name}\n{lm.source}\n{config}".encode()).hexdigest()[:12]
    name = _UNSAFE.sub("_", lm.name).strip("._") or "model"
    return Path(root) / f"{name}-{fingerprint}"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the API and the workers may run as different users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True).encode())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""Files that survive crashes and concurrent writers: exclusive locks, fsync, atomic writes.

Every on-disk store (steering vectors, model variants, the editing statistics) writes the same
way: compute under an ``flock`` held by the writer, write to a temporary file or directory beside
the target, ``fsync`` it, and rename it into place, so a reader sees a file whole or not at all and
a killed writer leaves only a dot-named temporary behind. This module is that one write path.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its directory, if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents (a directory: its entries, after a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """`write_atomic` of ``value`` as indented, key-sorted JSON."""
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True).encode())

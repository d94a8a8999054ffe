"""What dead writers leave behind: ``.tmp-*`` directories beside a name's versions, and their sweep.

A version is written into a ``.tmp-*`` directory that is renamed into place (`store.versioned`). A
writer killed before the rename leaves that directory behind; readers never look at dot-named
entries, and the next write of the same name removes the ones that are clearly dead.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
# A `.tmp-*` directory untouched for this long belongs to a writer that died. A live writer in
# another process may be using a younger one (a large tensor file takes a while to write), so
# only directories older than this are ever removed.
STALE_TMP_AFTER_S = 3600.0


def sweep_stale_tmp(name_dir: Path, older_than_s: float = STALE_TMP_AFTER_S) -> list[Path]:
    """Remove the ``.tmp-*`` directories in ``name_dir`` left by writers that died long ago.

    A directory's age is that of the youngest of it and its files: writing into a file does not
    touch its directory's mtime, and a writer streaming a large file must not look dead. Should a
    live writer still lose its directory (stalled for longer than ``older_than_s``), its save
    fails when it writes the manifest or renames; it never produces a half-written version.
    Failures are logged, not raised: the version that triggered the sweep is already written.

    Args:
        name_dir: one name's directory.
        older_than_s: only directories untouched for longer than this many seconds are removed.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    cutoff = time.time() - older_than_s
    try:
        with os.scandir(name_dir) as entries:
            candidates = [Path(entry.path) for entry in entries
                          if entry.name.startswith(TMP_PREFIX) and entry.is_dir(follow_symlinks=False)]
    except OSError as exc:
        log.warning("could not look for stale temporaries in %s: %s", name_dir, exc)
        return removed
    for tmp in candidates:
        try:
            if _last_touched(tmp) >= cutoff:
                continue
            shutil.rmtree(tmp)
        except FileNotFoundError:
            continue  # removed meanwhile
        except OSError as exc:
            log.warning("could not remove the stale temporary %s: %s", tmp, exc)
            continue
        log.info("removed %s, left by a writer that died", tmp)
        removed.append(tmp)
    return removed


def _last_touched(directory: Path) -> float:
    """The newest mtime of ``directory`` and the entries directly in it (links not followed)."""
    newest = directory.stat(follow_symlinks=False).st_mtime
    with os.scandir(directory) as entries:
        for entry in entries:
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest

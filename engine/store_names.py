"""Names and versions shared by the on-disk stores (steering vectors, model variants).

A stored name is a plain path component, so it can never reach outside its store; a version is a
positive integer directory; temporary and trashed directories start with a dot and are never
mistaken for versions.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION = re.compile(r"[1-9][0-9]{0,8}")


def check_name(kind: str, value: str) -> None:
    """Refuse anything but a plain path component: no separators, dots first, or control characters."""
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        raise ValueError(f"invalid {kind} {value!r}: use 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")


def parse_ref(ref: str, noun: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name@version`` into the name and the version (None: the latest).

    Args:
        ref: the reference.
        noun: what is referred to (``vector``, ``variant``), for the error message.
    """
    name, at, version = ref.partition("@")
    check_name(f"{noun} name", name)
    if not at:
        return name, None
    if VERSION.fullmatch(version) is None:
        raise ValueError(f"invalid {noun} reference {ref!r}: the version must be a positive integer")
    return name, int(version)


def complete_versions(name_dir: Path) -> list[int]:
    """The complete versions under one name's directory, ascending."""
    if not name_dir.is_dir():
        return []
    return sorted(int(p.name) for p in name_dir.iterdir() if VERSION.fullmatch(p.name) and p.is_dir())

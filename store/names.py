"""Names and versions as the on-disk stores (steering vectors, model variants) see them.

The grammar itself is written once, in `schemas.names` (the API's request patterns compile the same
strings); this module applies it to paths. A stored name is a plain path component, so it can
never reach outside its store; a version is a positive integer directory; temporary and trashed
directories start with a dot and are never mistaken for names or versions.
"""

from __future__ import annotations

from pathlib import Path

from schemas.names import NAME, NAME_RULE, VERSION


def check_name(kind: str, value: str) -> None:
    """Refuse anything but a plain path component: no separators, dots first, or control characters.

    Args:
        kind: what the value names (``model name``, ``variant name``), for the error message.
        value: the name to check.

    Raises:
        ValueError: ``value`` is not a stored name.
    """
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        raise ValueError(f"invalid {kind} {value!r}: {NAME_RULE}")


def parse_ref(ref: str, noun: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name@version`` into the name and the version (None: the latest).

    Args:
        ref: the reference.
        noun: what is referred to (``vector``, ``variant``), for the error message.

    Raises:
        ValueError: a malformed name or version.
    """
    name, at, version = ref.partition("@")
    check_name(f"{noun} name", name)
    if not at:
        return name, None
    if VERSION.fullmatch(version) is None:
        raise ValueError(f"invalid {noun} reference {ref!r}: the version must be a positive integer")
    return name, int(version)


def named_dirs(parent: Path) -> list[Path]:
    """The subdirectories of ``parent`` whose names are valid names, sorted; locks, temporaries and
    strays are skipped (none when ``parent`` is missing)."""
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and NAME.fullmatch(p.name))


def complete_versions(name_dir: Path) -> list[int]:
    """The complete versions under one name's directory, ascending (none when it is missing)."""
    if not name_dir.is_dir():
        return []
    return sorted(int(p.name) for p in name_dir.iterdir() if VERSION.fullmatch(p.name) and p.is_dir())

"""Reading the variant store: ``<store>/<model>/<name>/<version>/manifest.json``.

Variants (a base model plus an ordered list of low-rank deltas or erasers) are written by the
editing and erasure jobs; this module lists what is there. Versions are immutable directories,
written under a temporary name and renamed into place, so a listed version is always complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def list_variants(store: Path, model: str) -> list[dict[str, Any]]:
    """Every complete variant version of ``model``, sorted by name then version.

    Returns:
        Dicts with ``name``, ``version``, ``method`` and ``created_at``.
    """
    root = store / model
    if not root.is_dir():
        return []
    found = []
    for manifest in sorted(root.glob("*/*/manifest.json")):
        version_dir = manifest.parent
        if not version_dir.name.isdigit():
            continue  # temporary directories of writes in progress
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.append({
            "name": version_dir.parent.name,
            "version": int(version_dir.name),
            "method": data.get("method"),
            "created_at": data.get("created_at"),
        })
    return sorted(found, key=lambda v: (v["name"], v["version"]))

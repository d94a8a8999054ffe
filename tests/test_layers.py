"""The packages import downward only: every module's imports, read with ``ast``, obey the layers.

``engine`` is pure computation (torch, transformers, numpy, ...): it imports no package of this
repository but itself. ``store`` keeps the engine's results on disk: it may import ``engine`` (for
its codecs' types) and ``schemas`` (the name grammar), nothing above. ``ops`` (one module per
operation) sits on the engine, the stores, the wire types and the settings, and knows nothing of
HTTP, RQ or Redis: both hosts use it. The API never imports the workers (it enqueues them by import
path), and the wire types never pull in torch. Every module of ours also imports: a moved name
is found here, not by a user (mypy is told to ignore missing imports, for the libraries).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: This repository's top-level packages: anything else a module imports is a library.
OURS = frozenset(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())

#: package -> the packages of ours it may import (itself included).
MAY_IMPORT = {
    "engine": {"engine"},
    "schemas": {"schemas"},
    "config": {"config", "schemas"},
    "store": {"store", "engine", "schemas"},
    "ops": {"ops", "engine", "store", "schemas", "config"},
    "jobs": {"jobs", "schemas", "config"},
}
#: package -> what it must never import, ours or a library (``engine`` would bring torch along).
MUST_NOT_IMPORT = {
    "service": {"workers"},
    "schemas": {"torch", "transformers", "safetensors", "engine"},
    "ops": {"fastapi", "starlette", "rq", "redis"},
}


def imported(source: str, package: str) -> set[str]:
    """The top-level names of every module ``source`` imports, wherever the statement is.

    Args:
        source: a module's text.
        package: the top-level package it belongs to (what a relative import names).
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(package if node.level else (node.module or "").partition(".")[0])
    return names


def imports_of(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (its path from the root) and the names it imports."""
    return {str(path.relative_to(ROOT)): imported(path.read_text(), package)
            for path in sorted((ROOT / package).rglob("*.py"))}


def test_the_layers_are_all_there() -> None:
    assert {"engine", "store", "schemas", "service", "workers"} <= OURS
    assert all(imports_of(package) for package in (*MAY_IMPORT, *MUST_NOT_IMPORT))


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_lower_layer_imports_no_package_of_ours_above_it(package: str) -> None:
    above = {module: sorted(names & OURS - MAY_IMPORT[package]) for module, names in imports_of(package).items()}
    assert {module: names for module, names in above.items() if names} == {}


@pytest.mark.parametrize("package", sorted(MUST_NOT_IMPORT))
def test_a_package_never_imports_what_it_must_not(package: str) -> None:
    wrong = {module: sorted(names & MUST_NOT_IMPORT[package]) for module, names in imports_of(package).items()}
    assert {module: names for module, names in wrong.items() if names} == {}


def test_imports_are_seen_wherever_they_are_written() -> None:
    source = ("import os.path\nfrom store.names import check_name\nfrom . import sibling\n"
              "def late():\n    import service.main\n    from workers import tasks\n"
              "if True:\n    from ops import context\n")
    assert imported(source, "engine") == {"os", "store", "engine", "service", "workers", "ops"}


def modules_of(package: str) -> list[str]:
    """Every module of ``package``, dotted (``ops.trace``)."""
    return [".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for path in sorted((ROOT / package).rglob("*.py")) if path.name != "__main__.py"]


@pytest.mark.parametrize("package", sorted(OURS - {"tests", "clients"}))
def test_every_module_imports(package: str) -> None:
    for module in modules_of(package):
        importlib.import_module(module)

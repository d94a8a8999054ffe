"""Regenerate the API contract and the Python client: ``python clients/generate.py`` (``python3 dev.py client``).

1. writes ``openapi.json`` from the app (``service.openapi``, the file a test keeps in sync with the app);
2. generates ``clients/python/`` from it with ``openapi-python-client`` (the exact version pinned in
   ``pyproject.toml``), formatted by the pinned ``ruff`` of the same environment.

``--check`` regenerates into a temporary directory from the committed ``openapi.json`` and exits 1
when anything differs from ``clients/python/`` (what CI runs, through ``tests/clients``).
The output depends only on the spec and the two pinned tools, so a difference always means that
someone changed the API (or the client by hand) without regenerating.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "openapi.json"
CLIENT_DIR = ROOT / "clients" / "python"
GENERATOR_VERSION = "0.29.1"
PROJECT_NAME = "interp-service-client"
PACKAGE_NAME = "interp_client"
# What installing or testing the client leaves in its directory: never part of the comparison.
IGNORED = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "build", "dist", ".pdm-build"}


def check_generator() -> None:
    installed = importlib.metadata.version("openapi-python-client")
    if installed != GENERATOR_VERSION:
        raise SystemExit(f"openapi-python-client {installed} is installed; the client is generated with "
                         f"{GENERATOR_VERSION} (python3 dev.py setup --test installs it)")


def generate_client(spec: Path, out_dir: Path) -> None:
    """Generate the client project for ``spec`` into ``out_dir`` (which must not exist)."""
    from openapi_python_client import generate
    from openapi_python_client.config import Config, ConfigFile, MetaType

    check_generator()
    config = Config.from_sources(
        # No post hooks: the generator would run whatever `ruff` is first on PATH, or silently none.
        ConfigFile(project_name_override=PROJECT_NAME, package_name_override=PACKAGE_NAME, post_hooks=[]),
        MetaType.PDM, spec, "utf-8", overwrite=False, output_path=out_dir,
    )
    problems = generate(config=config)
    if problems:
        raise SystemExit("openapi-python-client:\n" + "\n".join(f"{p.header}: {p.detail}" for p in problems))
    # The generator's own hooks, run with this environment's ruff (pinned in the test extra).
    for hook in (["check", "--fix-only", "--extend-select=I", "--no-cache", "."], ["format", "--no-cache", "."]):
        subprocess.run([sys.executable, "-m", "ruff", *hook], cwd=out_dir, check=True, capture_output=True)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, without what installs and tools leave there."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and not any(part in IGNORED or part.endswith(".egg-info")
                                          for part in path.relative_to(root).parts)}


def differences(expected: Path, actual: Path) -> list[str]:
    """Relative paths that differ between two trees: missing on either side, or other bytes."""
    want, have = tree(expected), tree(actual)
    return sorted(name for name in want.keys() | have.keys() if want.get(name) != have.get(name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python clients/generate.py", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate from the committed openapi.json into a temporary directory and "
                             "exit 1 if clients/python differs")
    parser.add_argument("--client-only", action="store_true",
                        help="generate the client from the committed openapi.json without rewriting it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="interp-client-") as tmp:
        fresh = Path(tmp) / "python"
        if args.check:
            generate_client(SPEC, fresh)
            changed = differences(fresh, CLIENT_DIR)
            for name in changed:
                print(f"differs: clients/python/{name}")
            if changed:
                print("the client is stale: regenerate it with `python3 dev.py client`")
            return 1 if changed else 0
        if not args.client_only:
            sys.path.insert(0, str(ROOT))
            from service.openapi import render_spec

            SPEC.write_text(render_spec())
            print(f"wrote {SPEC.relative_to(ROOT)}")
        generate_client(SPEC, fresh)
        shutil.rmtree(CLIENT_DIR, ignore_errors=True)
        shutil.move(fresh, CLIENT_DIR)
        print(f"wrote {CLIENT_DIR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

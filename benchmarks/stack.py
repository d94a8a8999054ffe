"""The stack a benchmark measures: started from a checkout on a free loopback port, found, and always stopped.

`running_stack` starts ``python -m launcher`` (``service.stack`` in checkouts from before the launcher
moved) with its own data directory and the shared model cache, waits for ``/readyz``, and stops the
whole process group afterwards, whatever the benchmark raised.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from launcher.stack import free_port

#: The processes of a stack, by a pattern of their command lines.
ROLES = (("api", r"-m service$"), ("worker", r"-m workers$"), ("redis", r"redis-server"))
HERE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunningStack:
    """A started stack: where it answers, its Redis, and its launcher's pid."""

    url: str
    redis_url: str
    pid: int


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the stack exited with {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url}/readyz was not 200 within {timeout:.0f} s")


def find_pids(launcher: int) -> dict[str, int]:
    """API, worker and Redis pids: the launcher's children, by command line."""
    found: dict[str, int] = {}
    for tasks in Path(f"/proc/{launcher}/task").glob("*/children"):
        for pid in tasks.read_text().split():
            with contextlib.suppress(OSError):
                line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                found.update({role: int(pid) for role, pattern in ROLES if re.search(pattern, line)})
    return found


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    kib = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M))
    return int(kib["VmRSS"]) / 1024, int(kib["VmHWM"]) / 1024


def launcher_module(checkout: Path) -> str:
    """The stack launcher of a checkout (``launcher``; ``service.stack`` before it moved)."""
    return "launcher" if (checkout / "launcher" / "__main__.py").is_file() else "service.stack"


@contextlib.contextmanager
def running_stack(workdir: Path, checkout: Path = HERE) -> Iterator[RunningStack]:
    """The stack of ``checkout`` (its own packages), data in ``workdir``, for the duration of the block."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, INTERP_PORT=str(port), INTERP_HOST="127.0.0.1", INTERP_DATA_DIR=str(workdir))
    env.setdefault("INTERP_MODEL_CACHE_DIR", str(Path.home() / ".cache" / "interp-service" / "models"))
    env.pop("INTERP_REDIS_URL", None)
    env["PYTHONPATH"] = str(checkout)  # the checkout's packages, not this one's
    log = workdir / "stack.log"
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM too stops the stack
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", launcher_module(checkout)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=checkout, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        wait_ready(url, proc, 300)
        found = re.search(r"embedded Redis at (redis://\S+)", log.read_text(errors="replace"))
        if found is None:
            raise RuntimeError("the stack log names no Redis URL")
        print(f"stack of {checkout} ready at {url} in {time.monotonic() - started:.1f} s")
        yield RunningStack(url, found.group(1), proc.pid)
    except Exception:
        print("---- stack log (tail) ----\n" + log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

"""Load benchmark of the job endpoints, with a raw redis-py baseline on the same Redis.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.service [--clients 32] [--requests 2000] [--seconds 60] [--port P] [--no-fail]
    python -m benchmarks.service --url http://127.0.0.1:8000 --redis-url redis://127.0.0.1:6379/0

Without ``--url`` it starts ``python -m service.stack`` on a free port (its Redis data in a temporary
``INTERP_DATA_DIR``, the model cache shared with the default one), waits for ``/readyz`` and always stops
it. It measures, after a warm-up, ``POST /score`` (enqueue) and ``GET /jobs/{id}`` with ``--clients``
concurrent loopback clients, the same number of threads doing the equivalent raw redis-py round-trips
(the peer baseline; compare ratios, not absolute times), and the RSS of the API and worker processes.
It then removes its jobs from the queue without waiting for the worker, prints a markdown table and
exits 1 when a target fails (enqueue p50 < 10 ms, status p50 < 5 ms, no non-2xx answer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis import Redis

TARGETS_MS = {"enqueue": 10.0, "status": 5.0}
ROLES = (("api", r"-m service$"), ("worker", r"-m workers$"), ("redis", r"redis-server"))
TEXT = "The quick brown fox jumps over the lazy dog."


@dataclass
class Phase:
    """Latencies (seconds) and answers of one measured phase."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    job_ids: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        """The q-th percentile in ms (nearest rank)."""
        data = sorted(self.latencies)
        if not data:
            return float("nan")
        return 1000 * data[min(len(data) - 1, max(0, round(q / 100 * len(data)) - 1))]

    def line(self) -> str:
        rate = len(self.latencies) / self.wall if self.wall else 0.0
        return (f"{self.name:<22} n={len(self.latencies):<5} p50={self.pct(50):6.2f} p90={self.pct(90):6.2f} "
                f"p99={self.pct(99):6.2f} max={self.pct(100):7.2f} ms {rate:6.0f} req/s bad={self.errors}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_stack(port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the launcher in its own session, its output to a log file."""
    from schemas.settings import Settings

    env = dict(os.environ, INTERP_PORT=str(port), INTERP_HOST="127.0.0.1", INTERP_DATA_DIR=str(workdir))
    env.setdefault("INTERP_MODEL_CACHE_DIR", str(Settings().model_cache))  # reuse the converted model
    env.pop("INTERP_REDIS_URL", None)
    log = workdir / "stack.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service.stack"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    return proc, log


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the stack exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}/readyz was not 200 within {timeout:.0f} s")


def stop_stack(proc: subprocess.Popen[bytes], grace: float = 40.0) -> None:
    """SIGINT the launcher (it stops its children in order), then kill its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def find_pids(launcher: int | None) -> dict[str, int]:
    """API, worker and Redis pids: the launcher's children, or any such process when there is none."""
    if launcher is not None:
        candidates = [int(p) for f in Path(f"/proc/{launcher}/task").glob("*/children")
                      for p in f.read_text().split()]
    else:
        candidates = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    found: dict[str, int] = {}
    for pid in sorted(candidates):
        line = cmdline(pid).strip()
        for role, pattern in ROLES:
            if re.search(pattern, line):
                found.setdefault(role, pid)
    return found


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB, from /proc/<pid>/status."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def http_phase(name: str, url: str, clients: int, total: int, seconds: float,
                     call: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]) -> Phase:
    """`clients` concurrent connections share `total` requests; stop at `seconds` regardless."""
    phase, counter = Phase(name), iter(range(total))
    deadline = time.monotonic() + seconds

    async def client_loop() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    reply = await call(client, i)
                except httpx.HTTPError:
                    phase.errors += 1
                    continue
                phase.latencies.append(time.perf_counter() - t0)
                if reply.is_success:
                    if name.startswith("POST"):
                        phase.job_ids.append(reply.json()["id"])
                else:
                    phase.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    phase.wall = time.perf_counter() - start
    return phase


def redis_phase(name: str, redis_url: str, clients: int, total: int, seconds: float,
                op: Callable[[Redis, int], object]) -> Phase:
    """The raw baseline: `clients` threads, one connection each, sharing `total` operations."""
    phase, counter, lock = Phase(name), iter(range(total)), threading.Lock()
    deadline = time.monotonic() + seconds

    def thread_loop() -> None:
        conn = Redis.from_url(redis_url, decode_responses=True)
        conn.ping()
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            op(conn, i)
            elapsed = time.perf_counter() - t0
            with lock:
                phase.latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=thread_loop) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.wall = time.perf_counter() - start
    return phase


def raw_enqueue(conn: Redis, i: int) -> None:
    """What an enqueue costs in Redis: job hash + expiry, RQ job hash, queue push, in one MULTI/EXEC."""
    job_id, now = uuid.uuid4().hex, repr(time.time())
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(f"interp:bench:job:{job_id}", mapping={
            "id": job_id, "kind": "score", "model": "bench", "status": "queued", "fraction": "0",
            "stage": "queued", "created_at": now, "expires_at": now, "request_hash": "0" * 64})
        pipe.expire(f"interp:bench:job:{job_id}", 600)
        data = f'["{job_id}", "score", {{"texts": ["{TEXT}"]}}]'
        pipe.hset(f"interp:bench:rq:{job_id}",
                  mapping={"data": data, "status": "queued", "created_at": now, "timeout": "900"})
        pipe.expire(f"interp:bench:rq:{job_id}", 600)
        pipe.rpush("interp:bench:queue", job_id)
        pipe.execute()


def drain(redis_url: str, job_ids: list[str], model: str) -> None:
    """Take this run's jobs off the RQ queue and delete them, plus the baseline's keys; no waiting."""
    from rq import Queue
    from rq.job import Job

    from jobs.store import JobStore
    from schemas.settings import Settings

    conn = Redis.from_url(redis_url)
    queue = Queue(Settings().queue_name(model), connection=conn)
    for start in range(0, len(job_ids), 500):
        with conn.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start:start + 500]:
                queue.remove(job_id, pipeline=pipe)
                pipe.delete(Job.key_for(job_id), JobStore.key(job_id))
            pipe.execute()
    for key in conn.scan_iter("interp:bench:*", count=1000):
        conn.delete(key)
    conn.close()


def run(args: argparse.Namespace, url: str, redis_url: str, launcher: int | None) -> int:
    n, warm, secs, c = args.requests, args.warmup, args.seconds, args.clients
    body = {"texts": [TEXT]}

    def post(client: httpx.AsyncClient, _: int) -> Awaitable[httpx.Response]:
        return client.post("/score", json=body)

    warmed = asyncio.run(http_phase("POST warm-up", url, c, warm, secs, post))
    score = asyncio.run(http_phase("POST /score (enqueue)", url, c, n, secs, post))
    ids = score.job_ids or ["0" * 32]
    status = asyncio.run(http_phase("GET /jobs/{id}", url, c, n, secs,
                                    lambda cl, i: cl.get(f"/jobs/{ids[i % len(ids)]}")))
    model = httpx.get(f"{url}/jobs/{ids[0]}", timeout=5).json().get("model", "") if score.job_ids else ""
    pids = find_pids(launcher)
    memory = {role: memory_mib(pid) for role, pid in pids.items()}
    store_keys = [f"interp:job:{ids[i % len(ids)]}" for i in range(n)]
    redis_phase("raw warm-up", redis_url, c, warm, secs, raw_enqueue)
    raw_enq = redis_phase("raw MULTI enqueue", redis_url, c, n, secs, raw_enqueue)
    raw_get = redis_phase("raw HGETALL job", redis_url, c, n, secs, lambda r, i: r.hgetall(store_keys[i]))
    drain(redis_url, warmed.job_ids + score.job_ids, model or "smollm2-135m")
    for phase in (score, status, raw_enq, raw_get):
        print(phase.line())
    print(f"processes: {pids}\n")

    failed = False
    rows = ["| measure | p50 | p99 | target | result |", "|---|---|---|---|---|"]
    pairs = ((score, raw_enq, TARGETS_MS["enqueue"]), (status, raw_get, TARGETS_MS["status"]))
    for phase, raw, target in pairs:
        ok = phase.pct(50) < target and len(phase.latencies) > 0
        failed |= not ok
        rows.append(f"| {phase.name} | {phase.pct(50):.2f} ms | {phase.pct(99):.2f} ms | p50 < {target:g} ms "
                    f"| {'pass' if ok else 'FAIL'} |")
        rows.append(f"| {raw.name} (baseline) | {raw.pct(50):.2f} ms | {raw.pct(99):.2f} ms | - | - |")
        rows.append(f"| {phase.name.split(' (')[0]} service/raw | {phase.pct(50) / raw.pct(50):.1f}x "
                    f"| {phase.pct(99) / raw.pct(99):.1f}x | - | info |")
    errors = score.errors + status.errors
    failed |= errors > 0
    rows.append(f"| non-2xx or transport errors | {errors} | - | 0 | {'pass' if errors == 0 else 'FAIL'} |")
    for role in ("api", "worker", "redis"):
        if role in memory:
            rss, hwm = memory[role]
            rows.append(f"| {role} RSS after load (peak) | {rss:.0f} MiB | {hwm:.0f} MiB | - | info |")
    print("\n".join(rows))
    return 1 if failed and not args.no_fail else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="requests per measured phase")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests before measuring")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per phase")
    parser.add_argument("--port", type=int, default=0, help="port for the started stack (0: a free one)")
    parser.add_argument("--url", help="use this running service instead of starting the stack")
    parser.add_argument("--redis-url", help="its Redis (with --url; default INTERP_REDIS_URL)")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--no-fail", action="store_true", help="print the results, exit 0 regardless")
    args = parser.parse_args()

    if args.url:
        redis_url = args.redis_url or os.environ.get("INTERP_REDIS_URL")
        if not redis_url:
            parser.error("--url needs --redis-url (or INTERP_REDIS_URL) for the baseline")
        wait_ready(args.url.rstrip("/"), None, args.ready_timeout)
        return run(args, args.url.rstrip("/"), redis_url, None)

    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="interp-bench-") as tmp:
        proc, log = start_stack(port, Path(tmp))
        try:
            t0 = time.monotonic()
            wait_ready(url, proc, args.ready_timeout)
            print(f"stack ready at {url} in {time.monotonic() - t0:.1f} s (launcher pid {proc.pid})")
            found = re.search(r"embedded Redis at (redis://\S+)", log.read_text(errors="replace"))
            if found is None:
                raise RuntimeError("the stack log names no Redis URL")
            return run(args, url, found.group(1), proc.pid)
        except BaseException:
            print("---- stack log (tail) ----\n" + log.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop_stack(proc)


if __name__ == "__main__":
    raise SystemExit(main())

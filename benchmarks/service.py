"""Load benchmark of the job endpoints against a raw redis-py baseline on the same Redis.

Run (from the repository root, in the virtualenv; needs ``wrk``: ``apt-get install wrk``)::

    python -m benchmarks.service [--clients 32] [--rate 10] [--seconds 10] [--no-fail]
    python -m benchmarks.service --url http://127.0.0.1:8000 --redis-url redis://127.0.0.1:6379/0
    python -m benchmarks.service --baseline 37add52 [--rounds 2]   # the same run on another commit too

Without ``--url`` it starts ``python -m launcher`` on a free port (Redis data in a temporary
``INTERP_DATA_DIR``, the model cache shared), waits for ``/readyz`` and always stops it.

Load comes from ``wrk`` (C, so the load generator does not steal the CPU the service is measured
on; an asyncio/httpx generator on this 2-core machine doubled the measured p50). Each phase runs
``--clients`` connections:

- *paced* (the targets): every client sends ``--rate`` requests per second, like clients polling
  jobs; the worker is meanwhile busy scoring every job the enqueue phase created;
- *saturated* (information): back to back, which measures throughput; there p50 is about
  clients / throughput whatever one request costs.

The peer in the same run is the Redis work of each request done directly with redis-py, paced
the same way from as many threads. Prints a markdown table; exits 1 if enqueue p50 >= 10 ms,
status p50 >= 5 ms or any request failed.

``--baseline REV`` measures a checkout of another commit (a temporary git worktree, its own
launcher) and this checkout alternately, ``--rounds`` times each, in one run, and adds a table of
their paced p50s side by side: a change to the API must not make submission or polling slower.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from benchmarks.stack import HERE, find_pids, memory_mib, running_stack, wait_ready

TARGETS_MS = {"enqueue": 10.0, "status": 5.0}
TEXT = "The quick brown fox jumps over the lazy dog."


@dataclass
class Result:
    """Latency percentiles (ms), throughput and failures of one phase."""

    name: str
    p50: float
    p99: float
    rate: float
    failures: int


def wrk(name: str, url: str, script: str, clients: int, seconds: float, workdir: Path) -> Result:
    """Run wrk with a Lua script; parse its latency distribution."""
    path = workdir / f"{uuid.uuid4().hex}.lua"
    path.write_text(script)
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", str(path), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    failures = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures += sum(int(n) for n in errors.groups()) if errors else 0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Result(name, ms("50%"), ms("99%"), rate, failures)


def lua(method: str, paths: list[str], body: str | None, rate: float) -> str:
    """A wrk script cycling over ``paths``; paced to ``rate`` per connection when rate > 0."""
    listed = ", ".join(f'"{p}"' for p in paths)
    lines = [f"local paths = {{{listed}}}", "local i = 0", f'wrk.method = "{method}"',
             'wrk.headers["Content-Type"] = "application/json"']
    if body is not None:
        lines.append(f"wrk.body = '{body}'")
    lines.append("function request() i = i + 1 return wrk.format(nil, paths[(i % #paths) + 1]) end")
    if rate > 0:
        lines.append(f"function delay() return {1000 / rate:.1f} end")
    return "\n".join(lines) + "\n"


def raw_phase(name: str, redis_url: str, clients: int, rate: float, seconds: float,
              op: Callable[[Redis], object]) -> Result:
    """The peer: the same Redis work from ``clients`` threads, each paced to ``rate`` per second."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        with Redis.from_url(redis_url, decode_responses=True) as conn:
            scheduled = time.perf_counter() + index / clients / rate
            while scheduled < deadline:
                time.sleep(max(0.0, scheduled - time.perf_counter()))
                op(conn)
                latencies.append(time.perf_counter() - scheduled)  # from the schedule: no omission
                scheduled += 1.0 / rate

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(loop, range(clients)))
    data = sorted(latencies)
    pick = lambda q: 1000 * data[min(len(data) - 1, int(q * len(data)))]  # noqa: E731
    return Result(name, pick(0.50), pick(0.99), len(data) / seconds, 0)


def raw_enqueue(conn: Redis) -> None:
    """The Redis work of an enqueue: job record + RQ job hash + queue push in one MULTI/EXEC."""
    job_id, now = uuid.uuid4().hex, repr(time.time())
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(f"interp:bench:job:{job_id}", mapping={"id": job_id, "status": "queued", "created_at": now})
        pipe.expire(f"interp:bench:job:{job_id}", 600)
        pipe.hset(f"interp:bench:rq:{job_id}", mapping={"data": f'["{job_id}", {{"texts": ["{TEXT}"]}}]'})
        pipe.expire(f"interp:bench:rq:{job_id}", 600)
        pipe.rpush("interp:bench:queue", job_id)
        pipe.execute()


@dataclass
class Measurement:
    """One stack's paced figures (for a comparison) and whether it met its targets."""

    enqueue: Result
    status: Result
    failed: bool


def run(args: argparse.Namespace, url: str, redis_url: str, launcher: int | None, workdir: Path) -> Measurement:
    c, rate, secs = args.clients, args.rate, args.seconds
    body = f'{{"texts": ["{TEXT}"]}}'
    wrk("warm-up", url, lua("POST", ["/score"], body, 0), c, 2, workdir)
    enqueue = wrk("POST /score (enqueue)", url, lua("POST", ["/score"], body, rate), c, secs, workdir)
    with Redis.from_url(redis_url, decode_responses=True) as conn:
        ids = [k.removeprefix("interp:job:") for k in conn.scan_iter("interp:job:*", count=1000)][:500]
    job_paths = [f"/jobs/{i}" for i in ids]
    status = wrk("GET /jobs/{id}", url, lua("GET", job_paths, None, rate), c, secs, workdir)
    enqueue_sat = wrk("POST /score", url, lua("POST", ["/score"], body, 0), c, secs, workdir)
    status_sat = wrk("GET /jobs/{id}", url, lua("GET", job_paths, None, 0), c, secs, workdir)
    keys = [f"interp:job:{i}" for i in ids]
    raw_enq = raw_phase("redis-py MULTI enqueue", redis_url, c, rate, secs, raw_enqueue)
    raw_get = raw_phase("redis-py HGETALL job", redis_url, c, rate, secs,
                        lambda conn: conn.hgetall(keys[int(time.perf_counter() * 1e6) % len(keys)]))
    memory = {role: (pid, memory_mib(pid)) for role, pid in find_pids(launcher).items()} if launcher else {}
    with Redis.from_url(redis_url) as conn:  # leave nothing behind in a shared Redis
        for key in conn.scan_iter("interp:bench:*", count=1000):
            conn.delete(key)

    failed = False
    rows = [f"{c} clients; paced: {rate:g} requests/s each ({c * rate:g}/s in all); saturated: back to back", "",
            "| measure | p50 | p99 | throughput | target | result |", "|---|---|---|---|---|---|"]
    for phase, raw, target in ((enqueue, raw_enq, TARGETS_MS["enqueue"]), (status, raw_get, TARGETS_MS["status"])):
        ok = phase.p50 < target
        failed |= not ok
        rows.append(f"| {phase.name}, paced | {phase.p50:.2f} ms | {phase.p99:.2f} ms | {phase.rate:.0f}/s "
                    f"| p50 < {target:g} ms | {'pass' if ok else 'FAIL'} |")
        rows.append(f"| peer: {raw.name}, paced | {raw.p50:.2f} ms | {raw.p99:.2f} ms | {raw.rate:.0f}/s | - | - |")
        rows.append(f"| service / peer p50 | {phase.p50 / raw.p50:.1f}x | {phase.p99 / raw.p99:.1f}x | | - | info |")
    for phase in (enqueue_sat, status_sat):
        rows.append(f"| {phase.name}, saturated | {phase.p50:.2f} ms | {phase.p99:.2f} ms | {phase.rate:.0f}/s "
                    "| - | info |")
    failures = sum(p.failures for p in (enqueue, status, enqueue_sat, status_sat))
    failed |= failures > 0
    rows.append(f"| failed requests (non-2xx, socket errors) | {failures} | | | 0 | "
                f"{'pass' if failures == 0 else 'FAIL'} |")
    for role, (pid, (rss, hwm)) in sorted(memory.items()):
        rows.append(f"| {role} memory (RSS now / peak), pid {pid} | {rss:.0f} MiB | {hwm:.0f} MiB | | - | info |")
    print("\n".join(rows))
    return Measurement(enqueue, status, failed)


def measure_stack(args: argparse.Namespace, workdir: Path, checkout: Path = HERE) -> Measurement:
    """Measure the stack of ``checkout`` (this one by default), started for the measurement."""
    with running_stack(workdir, checkout) as stack:
        return run(args, stack.url, stack.redis_url, stack.pid, workdir)


def compare(args: argparse.Namespace, workdir: Path) -> int:
    """Measure a checkout of ``args.baseline`` and this checkout alternately; print their p50s side by side."""
    here = HERE
    rev = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=here, capture_output=True, text=True,
                         check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                          check=True).stdout.strip()
    baseline = workdir / f"baseline-{rev}"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), rev], cwd=here, check=True,
                   capture_output=True)
    runs: dict[str, list[Measurement]] = {"before": [], "after": []}
    try:
        for index in range(args.rounds):
            for label, checkout in (("before", baseline), ("after", here)):
                print(f"\n### round {index + 1}: {label} ({rev if label == 'before' else head + ' + working tree'})")
                runs[label].append(measure_stack(args, workdir / f"{label}-{index}", checkout))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=here, check=False)
    rows = [f"\n### before ({rev}) and after ({head}), {args.rounds} round(s) each, alternating; median of "
            "the rounds' paced p50", "", "| measure | before | after | after / before |", "|---|---|---|---|"]
    worse = False
    for name in ("enqueue", "status"):
        before = statistics.median(getattr(m, name).p50 for m in runs["before"])
        after = statistics.median(getattr(m, name).p50 for m in runs["after"])
        # "No worse": within the machine's noise, which a 2-core loaded machine puts at about 20 %.
        worse |= after > 1.2 * before
        rows.append(f"| {getattr(runs['after'][0], name).name}, paced p50 | {before:.2f} ms | {after:.2f} ms | "
                    f"{after / before:.2f} |")
    print("\n".join(rows))
    failed = worse or any(m.failed for m in runs["after"])
    return 1 if failed and not args.no_fail else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per client in the paced phases")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--url", help="measure this running service instead of starting the stack")
    parser.add_argument("--redis-url", help="its Redis (with --url; default INTERP_REDIS_URL)")
    parser.add_argument("--baseline", help="also measure this git revision's stack, alternating with this one")
    parser.add_argument("--rounds", type=int, default=1, help="with --baseline: measurements of each")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target fails")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory(prefix="interp-bench-") as tmp:
        workdir = Path(tmp)
        if args.baseline:
            return compare(args, workdir)
        if args.url:
            redis_url = args.redis_url or os.environ.get("INTERP_REDIS_URL")
            if not redis_url:
                parser.error("--url needs --redis-url (or INTERP_REDIS_URL) for the peer")
            wait_ready(args.url.rstrip("/"), None, 60)
            measured = run(args, args.url.rstrip("/"), redis_url, None, workdir)
        else:
            measured = measure_stack(args, workdir)
        return 1 if measured.failed and not args.no_fail else 0


if __name__ == "__main__":
    raise SystemExit(main())

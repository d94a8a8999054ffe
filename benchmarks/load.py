"""Sustained mixed load: concurrent clients on `/generate`, `/score` and `/attribute`, on loopback.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.load [--clients 64] [--duration 60] [--warmup 5] [--poison-rate 1] [--no-fail]
    python -m benchmarks.load --url http://127.0.0.1:8000 [--api-pid N --worker-pid N]

Without ``--url`` it starts ``python -m launcher`` on a free loopback port (data in a
temporary ``INTERP_DATA_DIR``, the model cache shared), waits for ``/readyz``, and always stops it.

Each client loops for the whole run, picking a route at random (``--mix``, default 40 % generate,
40 % score, 20 % attribute) and waiting for its answer before the next request, as a service
calling this one would: ``/generate`` is synchronous (8 new tokens); ``/score`` and ``/attribute``
answer 202 and the client long-polls ``GET /jobs/{id}?wait=30`` until the job ends. Requests that
start during the ``--warmup`` seconds are not counted. Latency is per HTTP request (the 202 for a
job) and, for jobs, from submission to ``succeeded``.

``--poison-rate R`` also fires R poison ``/generate`` requests a second on a connection pool of their
own (`benchmarks.poison`: steering values that overflow float32, a seed of 2**64, a temperature of
1e-45), which once failed every request batched with them: each must get a 4xx, and the ordinary
clients still none of their own.

An error is any unexpected status, a transport error or timeout, or a job that does not succeed.
Memory is the RSS of the API and worker processes, sampled twice a second; "flat" means the mean
of the last ten seconds is within 10 % of the mean of the first ten (of the measured window).
Prints a markdown table; exits 1 on any error or memory growth unless ``--no-fail``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.poison import PoisonStats, poison_loop, report_rows
from benchmarks.stack import find_pids, memory_mib, running_stack, wait_ready

PROMPTS = ["The capital of France is", "Water boils at a temperature of", "Roses are red, violets are",
           "The quick brown fox", "In 1969, the first person to walk on the Moon was"]
TEXTS = ["The capital of France is Paris.", "Water boils at 100 degrees Celsius at sea level.",
         "The quick brown fox jumps over the lazy dog."]
TERMINAL = {"succeeded", "failed", "canceled"}
MEMORY_WINDOW_S = 10.0
MEMORY_TOLERANCE = 0.10


@dataclass
class Stats:
    """Latencies (seconds) and errors by measure, for requests started after the warm-up."""

    measured_from: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def record(self, measure: str, started: float, error: str | None = None) -> None:
        if started < self.measured_from:
            return
        if error is None:
            self.latencies[measure].append(time.monotonic() - started)
        else:
            self.errors[measure].append(error)


async def generate(http: httpx.AsyncClient, stats: Stats, rng: random.Random) -> None:
    started = time.monotonic()
    body = {"prompt": rng.choice(PROMPTS), "max_new_tokens": 8}
    try:
        reply = await http.post("/generate", json=body)
    except httpx.HTTPError as exc:
        stats.record("POST /generate", started, f"{type(exc).__name__}: {exc}")
        return
    ok = reply.status_code == 200 and reply.json().get("tokens")
    stats.record("POST /generate", started, None if ok else f"{reply.status_code}: {reply.text[:200]}")


async def run_job(http: httpx.AsyncClient, stats: Stats, route: str, body: dict[str, object]) -> None:
    """Submit a job, then long-poll it to its end; record the submission and the whole job."""
    started = time.monotonic()
    try:
        reply = await http.post(route, json=body)
    except httpx.HTTPError as exc:
        stats.record(f"POST {route}", started, f"{type(exc).__name__}: {exc}")
        return
    if reply.status_code != 202:
        stats.record(f"POST {route}", started, f"{reply.status_code}: {reply.text[:200]}")
        return
    stats.record(f"POST {route}", started)
    job = reply.json()
    while job["status"] not in TERMINAL:
        polled = time.monotonic()
        try:
            answer = await http.get(f"/jobs/{job['id']}", params={"wait": 30})
        except httpx.HTTPError as exc:
            stats.record("GET /jobs/{id}?wait=30", polled, f"{type(exc).__name__}: {exc}")
            stats.record(f"{route} job", started, "lost track of the job")
            return
        if answer.status_code != 200:
            stats.record("GET /jobs/{id}?wait=30", polled, f"{answer.status_code}: {answer.text[:200]}")
            stats.record(f"{route} job", started, "lost track of the job")
            return
        stats.record("GET /jobs/{id}?wait=30", polled)
        job = answer.json()
    stats.record(f"{route} job", started, None if job["status"] == "succeeded" else f"{job['status']}: "
                 f"{job.get('error')}")


async def client_loop(http: httpx.AsyncClient, stats: Stats, mix: dict[str, float], seed: int,
                      deadline: float) -> None:
    rng = random.Random(seed)
    routes, weights = list(mix), list(mix.values())
    while time.monotonic() < deadline:
        route = rng.choices(routes, weights)[0]
        if route == "generate":
            await generate(http, stats, rng)
        elif route == "score":
            await run_job(http, stats, "/score", {"texts": [rng.choice(TEXTS)]})
        else:
            await run_job(http, stats, "/attribute", {"prompt": rng.choice(PROMPTS), "rule": "gauss_legendre",
                                                      "n_steps": 16})


class MemorySampler:
    """RSS of some processes, sampled from /proc twice a second on a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for role, pid in self.pids.items():
                with contextlib.suppress(OSError, KeyError):
                    self.samples[role].append((time.monotonic(), memory_mib(pid)[0]))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def timeline(self, start: float, end: float) -> dict[str, list[float]]:
        """Per process: mean RSS (MiB) in each ten-second slice of [start, end]."""
        slices = max(1, round((end - start) / MEMORY_WINDOW_S))
        found = {}
        for role, samples in self.samples.items():
            means = []
            for k in range(slices):
                low = start + k * MEMORY_WINDOW_S
                inside = [rss for t, rss in samples if low <= t < low + MEMORY_WINDOW_S]
                if inside:
                    means.append(statistics.fmean(inside))
            found[role] = means
        return found

    def windows(self, start: float, end: float) -> dict[str, tuple[float, float]]:
        """Per process: mean RSS (MiB) over the first and the last ten seconds of [start, end]."""
        found = {}
        for role, samples in self.samples.items():
            first = [rss for t, rss in samples if start <= t < start + MEMORY_WINDOW_S]
            last = [rss for t, rss in samples if end - MEMORY_WINDOW_S <= t <= end]
            if first and last:
                found[role] = (statistics.fmean(first), statistics.fmean(last))
        return found


def percentile(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


async def drive(url: str, clients: int, warmup: float, duration: float, mix: dict[str, float],
                poison_rate: float = 0.0) -> tuple[Stats, PoisonStats]:
    begin = time.monotonic()
    stats, poison = Stats(measured_from=begin + warmup), PoisonStats(measured_from=begin + warmup)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with (httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as http,
                httpx.AsyncClient(base_url=url, timeout=120.0) as poisoner):
        deadline = begin + warmup + duration
        loops = [client_loop(http, stats, mix, seed, deadline) for seed in range(clients)]
        if poison_rate > 0:
            loops.append(poison_loop(poisoner, poison, poison_rate, deadline, PROMPTS))
        await asyncio.gather(*loops)
    return stats, poison


def report(args: argparse.Namespace, stats: Stats, poison: PoisonStats, memory: dict[str, tuple[float, float]],
           seconds: float) -> bool:
    """Print the tables; True when every target holds."""
    mix = ", ".join(f"{name} {share:.0%}" for name, share in args.mix.items())
    poisoned = f", {args.poison_rate:g} poison requests a second" if args.poison_rate > 0 else ""
    rows = [f"{args.clients} clients for {args.duration:g} s after a {args.warmup:g} s warm-up ({mix}){poisoned}; "
            f"{seconds:.0f} s in all", "",
            "| measure | count | errors | p50 | p99 | per second |", "|---|---|---|---|---|---|"]
    total_errors = 0
    for measure in sorted(set(stats.latencies) | set(stats.errors)):
        done, failed = stats.latencies.get(measure, []), stats.errors.get(measure, [])
        total_errors += len(failed)
        p50 = f"{percentile(done, 0.50) * 1000:.0f} ms" if done else "-"
        p99 = f"{percentile(done, 0.99) * 1000:.0f} ms" if done else "-"
        rows.append(f"| {measure} | {len(done)} | {len(failed)} | {p50} | {p99} | {len(done) / args.duration:.1f} |")
    ok = total_errors == 0 and bool(stats.latencies)
    if args.poison_rate > 0:
        rows += report_rows(poison, args.poison_rate)
        ok &= poison.all_refused()
    rows += ["", f"| process | RSS, first {MEMORY_WINDOW_S:g} s | RSS, last {MEMORY_WINDOW_S:g} s | change | "
             f"within {MEMORY_TOLERANCE:.0%} |", "|---|---|---|---|---|"]
    for role, (first, last) in sorted(memory.items()):
        change = last / first - 1
        flat = abs(change) <= MEMORY_TOLERANCE
        ok &= flat
        rows.append(f"| {role} | {first:.0f} MiB | {last:.0f} MiB | {change:+.1%} | {'yes' if flat else 'NO'} |")
    if not memory:
        rows.append("| (not measured: no process ids) | | | | |")
    print("\n".join(rows))
    for measure, failed in sorted(stats.errors.items()):
        print(f"\n{measure}: {len(failed)} errors, e.g. {failed[0]}")
    print(f"\nresult: {'pass' if ok else 'FAIL'} (errors of the ordinary clients: {total_errors})")
    return ok


def measure(args: argparse.Namespace, url: str, pids: dict[str, int]) -> int:
    started = time.monotonic()
    with MemorySampler(pids) as sampler:
        stats, poison = asyncio.run(drive(url, args.clients, args.warmup, args.duration, args.mix, args.poison_rate))
    window_start = stats.measured_from
    memory = sampler.windows(window_start, window_start + args.duration)
    ok = report(args, stats, poison, memory, time.monotonic() - started)
    for role, means in sorted(sampler.timeline(window_start, window_start + args.duration).items()):
        print(f"{role} RSS per {MEMORY_WINDOW_S:g} s (MiB): {', '.join(f'{m:.0f}' for m in means)}")
    return 0 if ok or args.no_fail else 1


def parse_mix(text: str) -> dict[str, float]:
    shares = {name: float(share) for name, share in (part.split("=") for part in text.split(","))}
    if set(shares) - {"generate", "score", "attribute"} or sum(shares.values()) <= 0:
        raise argparse.ArgumentTypeError("use generate=W,score=W,attribute=W")
    total = sum(shares.values())
    return {name: share / total for name, share in shares.items() if share > 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix("generate=2,score=2,attribute=1"))
    parser.add_argument("--poison-rate", type=float, default=0.0, metavar="R",
                        help="poison /generate requests a second (each must get a 4xx), beside the clients")
    parser.add_argument("--url", help="load this running service instead of starting the stack (loopback only)")
    parser.add_argument("--api-pid", type=int, help="with --url: the API's pid, for the memory check")
    parser.add_argument("--worker-pid", type=int, help="with --url: the worker's pid, for the memory check")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target fails")
    args = parser.parse_args()
    if args.duration < 2 * MEMORY_WINDOW_S:
        print(f"note: with --duration under {2 * MEMORY_WINDOW_S:g} s the memory windows overlap")

    if args.url:
        host = httpx.URL(args.url).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("this benchmark loads loopback services only")
        pids = {role: pid for role, pid in (("api", args.api_pid), ("worker", args.worker_pid)) if pid}
        wait_ready(args.url.rstrip("/"), None, 60)
        return measure(args, args.url.rstrip("/"), pids)

    with tempfile.TemporaryDirectory(prefix="interp-load-") as tmp, running_stack(Path(tmp)) as stack:
        pids = {role: pid for role, pid in find_pids(stack.pid).items() if role in ("api", "worker")}
        print(f"api pid {pids.get('api')}, worker pid {pids.get('worker')}")
        return measure(args, stack.url, pids)

if __name__ == "__main__":
    raise SystemExit(main())

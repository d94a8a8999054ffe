"""Poison requests for the load benchmark: requests that once failed every `/generate` batched with them.

Each is a request the API lets through today, with temperature 1, which used to make sampling raise
inside the shared batch, so that every request in it got a 500 (and lost its keep-alive connection).
Now each must get its own 4xx problem and nobody else may notice. `--poison-rate R` in
`benchmarks.load` fires R of them a second, cycling through `triggers`, beside the ordinary clients.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

#: name -> the poison body, given the model's (hidden size, number of layers).
Trigger = Callable[[int, int], dict[str, Any]]
TRIGGERS: dict[str, Trigger] = {
    "values 1e38 x alpha 1000 (overflows float32)": lambda hidden, layers: {
        "steering": [{"values": [1e38] * hidden, "layers": [layers // 2], "alpha": 1000.0}]},
    "values 1e39 (not a float32)": lambda hidden, layers: {
        "steering": [{"values": [1e39] * hidden, "layers": [layers // 2]}]},
    "two vectors of 2e38 (overflow only together)": lambda hidden, layers: {
        "steering": [{"values": [2e38] * hidden, "layers": [layers // 2]}] * 2},
    "seed 2**64": lambda hidden, layers: {"seed": 2**64},
    "temperature 1e-45": lambda hidden, layers: {"temperature": 1e-45},
}


@dataclass
class PoisonStats:
    """The statuses the poison requests got (a transport error as its name), by trigger, after the warm-up."""

    measured_from: float
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def all_refused(self) -> bool:
        """Every poison request got a 4xx (and at least one was sent)."""
        seen = [status for counter in self.statuses.values() for status in counter]
        return bool(seen) and all(status.startswith("4") for status in seen)


async def send(http: httpx.AsyncClient, stats: PoisonStats, name: str, body: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        status = str((await http.post("/generate", json=body)).status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    if started >= stats.measured_from:
        stats.statuses[name][status] += 1


async def poison_loop(http: httpx.AsyncClient, stats: PoisonStats, rate: float, deadline: float,
                      prompts: list[str]) -> None:
    """Fire ``rate`` poison requests a second until ``deadline``, each without waiting for the last."""
    model = (await http.get("/models")).json()["models"][0]
    hidden, layers = int(model["hidden_size"]), int(model["n_layers"])
    names = list(TRIGGERS)
    tasks: set[asyncio.Task[None]] = set()
    fired, next_at = 0, time.monotonic()
    while next_at < deadline:
        name = names[fired % len(names)]
        body = {"prompt": prompts[fired % len(prompts)], "max_new_tokens": 8, "temperature": 1.0,
                **TRIGGERS[name](hidden, layers)}
        task = asyncio.create_task(send(http, stats, name, body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        fired += 1
        next_at += 1.0 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


def report_rows(stats: PoisonStats, rate: float) -> list[str]:
    """The poison table: per trigger, how many were sent and what they got."""
    rows = ["", f"| poison request ({rate:g} per second) | sent | statuses | all 4xx |", "|---|---|---|---|"]
    for name in TRIGGERS:
        counter = stats.statuses.get(name, Counter())
        statuses = ", ".join(f"{status} x{count}" for status, count in sorted(counter.items())) or "-"
        refused = bool(counter) and all(status.startswith("4") for status in counter)
        rows.append(f"| {name} | {sum(counter.values())} | {statuses} | {'yes' if refused else 'NO'} |")
    return rows

"""`GenerationBatcher`: concurrent `/generate` calls share forward passes.

Requests for one model queue up; a single loop per model takes everything waiting (up to
``max_batch`` rows), runs it as one batch on the model's own thread, and resolves each request
with its row. While a batch runs, new requests gather for the next one, so throughput grows with
concurrency instead of queueing behind a lock. Every forward pass of a model happens on that one
thread, which is what lets the intervention runtime keep one active plan per model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.generation import GenerationOutput, GenerationRow, generate_batch
from engine.registry import ModelRegistry

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Pending:
    """Rows submitted together (a request and its unsteered twin share one batch)."""

    rows: list[GenerationRow]
    future: asyncio.Future[list[GenerationOutput]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GenerationBatcher:
    """One batching loop and one compute thread per model.

    Args:
        registry: the resident models and their runtimes.
        max_batch: the most rows in one batch.
    """

    def __init__(self, registry: ModelRegistry, *, max_batch: int) -> None:
        self.registry = registry
        self.max_batch = max_batch
        self._queues: dict[str, asyncio.Queue[Pending]] = {}
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._loops: list[asyncio.Task[None]] = []
        self.batches = 0  # batches run, and rows in them: how well requests are being shared
        self.rows = 0

    def start(self) -> None:
        for name in self.registry.names():
            self._queues[name] = asyncio.Queue()
            self._executors[name] = ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}")
            self._loops.append(asyncio.create_task(self._run(name), name=f"batcher-{name}"))

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)

    async def run(self, model: str, fn: Callable[..., T], *args: Any) -> T:
        """Run other model work (a small extraction) on the model's compute thread, between batches.

        Every forward pass of a model must happen on that thread: the intervention runtime's hooks
        would otherwise apply one pass's plan to another's activations.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executors[model], fn, *args)

    async def generate(self, model: str, rows: list[GenerationRow]) -> list[GenerationOutput]:
        """Queue ``rows`` (kept in one batch) and wait for their outputs."""
        if len(rows) > self.max_batch:
            raise ValueError(f"{len(rows)} rows exceed the batch limit {self.max_batch}")
        pending = Pending(rows)
        await self._queues[model].put(pending)
        return await pending.future

    async def _run(self, model: str) -> None:
        queue = self._queues[model]
        lm = self.registry.get(model)
        runtime = self.registry.runtime(model)
        loop = asyncio.get_running_loop()
        carry: Pending | None = None  # the request that did not fit in the last batch goes first
        while True:
            batch = [carry if carry is not None else await queue.get()]
            carry = None
            size = len(batch[0].rows)
            while not queue.empty():
                nxt = queue.get_nowait()
                if size + len(nxt.rows) > self.max_batch:
                    carry = nxt
                    break
                batch.append(nxt)
                size += len(nxt.rows)
            live = [p for p in batch if not p.future.done()]  # a client that went away
            if not live:
                continue
            rows = [row for p in live for row in p.rows]
            self.batches += 1
            self.rows += len(rows)
            try:
                outputs = await loop.run_in_executor(self._executors[model], generate_batch, lm, rows, runtime)
            except Exception as exc:
                log.exception("batch of %d rows failed", len(rows))
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            start = 0
            for p in live:
                if not p.future.done():
                    p.future.set_result(outputs[start : start + len(p.rows)])
                start += len(p.rows)

"""`GenerationBatcher`: concurrent `/generate` calls share forward passes.

Requests for one model queue up; a single loop per model takes everything waiting (up to
``max_batch`` rows), runs it as one batch on the model's own thread, and resolves each request
with its row. While a batch runs, new requests gather for the next one, so throughput grows with
concurrency instead of queueing behind a lock. Every forward pass of a model happens on that one
thread, which is what lets the intervention runtime keep one active plan per model.

One request can never fail another. A row that cannot go on fails alone inside `generate_batch`;
if the batch still raises (anything unexpected), its requests are run again one by one, so only
the request that makes a batch fail gets the exception. A streamed row may already have sent
tokens when its batch failed: its `Tap` remembers them, and on the rerun (same seed: an unseeded
streamed row is given one up front) passes on only the tokens after them, after checking that the
rerun chose the same ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.generation import GenerationOutput, GenerationRow, generate_batch
from engine.loading import LoadedModel
from engine.registry import ModelRegistry
from engine.runtime import InterventionRuntime

log = logging.getLogger(__name__)
T = TypeVar("T")


class StreamDivergedError(RuntimeError):
    """A rerun of a streamed row chose another token than the one already sent."""


class Tap:
    """A streamed row's ``on_token``: passes each token on once, however often the row is run.

    Args:
        sink: the stream's own ``on_token``.
    """

    def __init__(self, sink: Callable[[int], None]) -> None:
        self.sink = sink
        self.sent: list[int] = []
        self.at = 0  # tokens chosen by the current run

    def rewind(self) -> None:
        """Before a rerun: its first tokens were sent already, and are checked rather than sent again."""
        self.at = 0

    def __call__(self, token: int) -> None:
        if self.at < len(self.sent):
            if token != self.sent[self.at]:
                raise StreamDivergedError(f"this request's batch failed after {len(self.sent)} of its tokens were "
                                          f"streamed, and its rerun chose another token at step {self.at}; send it "
                                          "again")
        else:
            self.sent.append(token)
            self.sink(token)
        self.at += 1


def tapped(row: GenerationRow) -> GenerationRow:
    """The row the batcher runs: a streamed row's ``on_token`` behind a `Tap`, its seed fixed if it samples."""
    if row.on_token is None:
        return row
    params = row.params
    if params.temperature > 0 and params.seed is None:  # so that a rerun chooses the tokens already sent
        params = dataclasses.replace(params, seed=secrets.randbits(63))
    return dataclasses.replace(row, params=params, on_token=Tap(row.on_token))


@dataclass
class Pending:
    """Rows submitted together (a request and its unsteered twin share one batch)."""

    rows: list[GenerationRow]
    future: asyncio.Future[list[GenerationOutput]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def rewind(self) -> None:
        """Before running the request again: its streamed rows send only tokens they have not sent."""
        for row in self.rows:
            if isinstance(row.on_token, Tap):
                row.on_token.rewind()

    def resolve(self, outputs: list[GenerationOutput] | BaseException) -> None:
        """Hand the request its outputs (or its exception), unless its client went away."""
        if self.future.done():
            return
        if isinstance(outputs, BaseException):
            self.future.set_exception(outputs)
        else:
            self.future.set_result(outputs)


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
        self.reruns = 0  # requests run alone because their batch raised

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

    def waiting(self, model: str) -> int:
        """Requests queued for the model's next batch."""
        return self._queues[model].qsize()

    async def generate(self, model: str, rows: list[GenerationRow]) -> list[GenerationOutput]:
        """Queue ``rows`` (kept in one batch) and wait for their outputs."""
        if len(rows) > self.max_batch:
            raise ValueError(f"{len(rows)} rows exceed the batch limit {self.max_batch}")
        pending = Pending([tapped(row) for row in rows])
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
            except Exception:
                log.exception("a batch of %d rows (%d requests) failed; running its requests one by one",
                              len(rows), len(live))
                await self._one_by_one(model, lm, runtime, live)
                continue
            start = 0
            for p in live:
                p.resolve(outputs[start : start + len(p.rows)])
                start += len(p.rows)

    async def _one_by_one(self, model: str, lm: LoadedModel, runtime: InterventionRuntime,
                          live: list[Pending]) -> None:
        """Run each request of a failed batch alone: only the one that makes a batch fail gets its exception."""
        loop = asyncio.get_running_loop()
        for p in live:
            if p.future.done():
                continue
            p.rewind()
            self.reruns += 1
            try:
                outputs = await loop.run_in_executor(self._executors[model], generate_batch, lm, p.rows, runtime)
            except Exception as exc:
                log.exception("a request of %d rows failed alone: it is what failed its batch", len(p.rows))
                p.resolve(exc)
            else:
                p.resolve(outputs)

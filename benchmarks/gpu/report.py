"""The run's clock, its progress lines, and its table: rows with their peers, targets and verdicts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch

T = TypeVar("T")
Verdict = Literal["pass", "FAIL", "info", "skipped", "error"]


@dataclass
class Row:
    """One line of the table.

    Attributes:
        section: which part of the run measured it.
        measure: what was measured, with its sizes.
        ours: our figure, formatted.
        peer: the peer's figure, formatted (empty: no peer).
        ratio: ours over the peer, formatted.
        target: the target, in words (``-``: none).
        result: ``pass`` / ``FAIL`` against the target, ``info``, or why it was not measured.
    """

    section: str
    measure: str
    ours: str = ""
    peer: str = ""
    ratio: str = ""
    target: str = "-"
    result: Verdict | str = "info"


@dataclass
class Report:
    """Everything a run measured, printed as it goes and written to ``out`` after each section."""

    device: torch.device
    out: Path | None = None
    #: A smoke run's figures mean nothing: its target rows say so instead of pass or FAIL (checks still count).
    smoke: bool = False
    rows: list[Row] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} +{self.elapsed():6.1f}s] {message}", file=sys.stderr, flush=True)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable[[], T]) -> tuple[float, T]:
        """Wall seconds of ``fn()`` with the device's queue drained before and after."""
        self.sync()
        start = time.perf_counter()
        value = fn()
        self.sync()
        return time.perf_counter() - start, value

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        figures = " vs ".join(f for f in (row.ours, row.peer) if f) + (f" ({row.ratio})" if row.ratio else "")
        self.log(f"{row.section}: {row.measure}: {figures} -> {row.result}")
        return row

    def verdict(self, ok: bool) -> str:
        """A target row's result: pass or FAIL, or that a smoke run does not judge it."""
        if self.smoke:
            return f"n/a (smoke; would be {'pass' if ok else 'FAIL'})"
        return "pass" if ok else "FAIL"

    def check(self, section: str, measure: str, ours: float, peer: float, target: float) -> Row:
        """A row whose ratio ours / peer must reach ``target``."""
        ratio = ours / peer if peer > 0 else float("nan")
        return self.add(Row(section, measure, f"{ours:,.1f}", f"{peer:,.1f}", f"{ratio:.2f}x", f">= {target:g}x",
                            self.verdict(ratio >= target)))

    def record(self, key: str, value: Any) -> None:
        self.numbers[key] = value

    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.result in ("FAIL", "error")]

    def table(self) -> str:
        lines = ["| section | measure | ours | peer | ratio | target | result |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.section} | {r.measure} | {r.ours} | {r.peer} | {r.ratio} | {r.target} | {r.result} |"
                  for r in self.rows]
        return "\n".join(lines)

    def write(self) -> None:
        """Rewrite ``table.md`` and ``results.json`` under ``out`` (nothing without one)."""
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "table.md").write_text(self.table() + "\n")
        body = {"rows": [asdict(r) for r in self.rows], "numbers": self.numbers, "elapsed_s": self.elapsed()}
        (self.out / "results.json").write_text(json.dumps(body, indent=1, default=str) + "\n")


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")

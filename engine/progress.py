"""Progress reporting and cooperative cancellation for long work, nested to any depth.

A host (a job, a synchronous call, a test) makes one `Progress` with where reports go and how to
ask whether to stop; the work hands each of its steps a `span` of it, which maps the step's own
0..1 into its share of the whole and prefixes its stage with the step's label. Every report is
also a cancel point: it raises `CanceledError` when the host asked to stop, so work stops within
one batch or one optimisation step, and nothing it was producing is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


class CanceledError(Exception):
    """The host asked the work to stop; nothing was produced."""


@dataclass(frozen=True)
class Progress:
    """Where progress goes, and the share ``[start, end]`` of the whole that this step covers.

    Attributes:
        on_progress: receives ``(fraction of the whole, stage)``; None to ignore.
        should_stop: True when the host wants the work to stop; None never stops.
        start: the whole's fraction when this step begins.
        end: the whole's fraction when this step ends.
        label: prefixed to this step's stages (``tracing: grid``); empty for none.
    """

    on_progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    start: float = 0.0
    end: float = 1.0
    label: str = ""

    def report(self, fraction: float, stage: str) -> None:
        """Report that this step is ``fraction`` (0..1) done, then honour a pending cancel.

        Raises:
            CanceledError: the host asked to stop.
        """
        if self.on_progress is not None:
            share = min(1.0, max(0.0, fraction))
            self.on_progress(self.start + (self.end - self.start) * share, f"{self.label}: {stage}" if self.label
                             else stage)
        self.check()

    def cancel_requested(self) -> bool:
        """Whether the host asked to stop (without raising)."""
        return self.should_stop is not None and self.should_stop()

    def check(self) -> None:
        """Raise `CanceledError` if the host asked to stop."""
        if self.cancel_requested():
            raise CanceledError("the work was canceled")

    def span(self, start: float, end: float, label: str = "") -> Progress:
        """The progress of a sub-step covering ``[start, end]`` of this step, its stages labelled ``label``."""
        width = self.end - self.start
        nested = f"{self.label}: {label}" if self.label and label else self.label or label
        return Progress(self.on_progress, self.should_stop, self.start + width * start, self.start + width * end,
                        nested)

    def counter(self, stage: str, *, upto: float = 1.0) -> Callable[[int, int], None]:
        """An ``on_batch(done, total)`` callback that reports ``upto * done / total`` under ``stage``."""
        def report(done: int, total: int) -> None:
            self.report(upto * done / max(total, 1), stage)
        return report

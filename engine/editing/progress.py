"""Progress reporting and cooperative cancellation for the long steps of an edit.

Jobs pass ``on_progress(fraction, message)`` and ``should_stop()``; the editing code reports
through a `Progress`, which maps a step's own 0..1 into its share of the job's and checks the stop
flag between optimisation steps and batches, raising `EditCancelledError` there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


class EditCancelledError(Exception):
    """The caller asked the edit (or the statistics it was computing) to stop; nothing was produced."""


#: The name the editing API promises (`EditCancelledError` follows the project's naming).
EditCancelled = EditCancelledError


@dataclass(frozen=True)
class Progress:
    """Where progress goes, and the share ``[start, end]`` of the whole that this step covers.

    Attributes:
        on_progress: receives ``(fraction of the whole, message)``; None to ignore.
        should_stop: True when the caller wants the work to stop; None never stops.
        start: the whole's fraction when this step begins.
        end: the whole's fraction when this step ends.
    """

    on_progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    start: float = 0.0
    end: float = 1.0

    def report(self, fraction: float, message: str) -> None:
        """Report that this step is ``fraction`` (0..1) done."""
        if self.on_progress is not None:
            share = min(1.0, max(0.0, fraction))
            self.on_progress(self.start + (self.end - self.start) * share, message)

    def check(self) -> None:
        """Raise `EditCancelledError` if the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise EditCancelledError("the edit was cancelled")

    def span(self, start: float, end: float) -> Progress:
        """The progress of a sub-step covering ``[start, end]`` of this step."""
        width = self.end - self.start
        return Progress(self.on_progress, self.should_stop, self.start + width * start, self.start + width * end)

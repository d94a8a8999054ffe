"""What an edit's evaluation reports: each prompt's check, success rates, fluency, drift, per request.

Frozen records built by `engine.editing.evaluation`; `rate` aggregates prompt checks the way
CounterFact does (per-request rates, averaged over requests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PromptCheck:
    """One prompt: does the answer that should win beat its rival, in the parent and in the variant.

    Attributes:
        prompt: the full prompt.
        wanted: the answer that should win (``target_new``, or a neighbour's true answer).
        rival: the answer it must beat; None when judged by greedy generation instead.
        p_wanted_base, p_wanted_edited: exp(mean token log-probability) of ``wanted``.
        p_rival_base, p_rival_edited: the same for ``rival`` (None without one).
        success_base, success_edited: ``wanted`` beats ``rival`` (or the greedy continuation starts with it).
    """

    prompt: str
    wanted: str
    rival: str | None
    p_wanted_base: float
    p_wanted_edited: float
    p_rival_base: float | None
    p_rival_edited: float | None
    success_base: bool
    success_edited: bool


@dataclass(frozen=True)
class RequestEvaluation:
    """Every check of one request, and what the edit prompt now continues with (greedy)."""

    subject: str
    target_new: str
    target_true: str | None
    efficacy: PromptCheck
    paraphrases: tuple[PromptCheck, ...]
    neighborhood: tuple[PromptCheck, ...]
    continuation_base: str
    continuation_edited: str


@dataclass(frozen=True)
class Rate:
    """A success rate over requests (per-request rate, averaged) and its magnitude, parent and variant.

    Attributes:
        edited, base: the rates; None when no request has such a prompt.
        magnitude_edited, magnitude_base: mean P(wanted) - P(rival) over the prompts that have a rival.
        n_prompts: prompts behind the rate.
    """

    edited: float | None
    base: float | None
    magnitude_edited: float | None
    magnitude_base: float | None
    n_prompts: int


@dataclass(frozen=True)
class Fluency:
    """Mean weighted n-gram entropy (bits) of text sampled from the edit prompts, and a few of the texts."""

    edited: float
    base: float
    samples_edited: tuple[str, ...]
    samples_base: tuple[str, ...]


@dataclass(frozen=True)
class Drift:
    """``KL(parent || variant)`` of next-token distributions over the canary prompts' tokens (nats)."""

    mean_kl: float
    max_kl: float
    n_positions: int


@dataclass(frozen=True)
class EditEvaluation:
    """The report stored with an edited variant."""

    n_requests: int
    efficacy: Rate
    paraphrase: Rate
    neighborhood: Rate
    fluency: Fluency
    drift: Drift
    requests: tuple[RequestEvaluation, ...]

    def to_dict(self, *, per_request: bool = True) -> dict[str, Any]:
        """JSON-ready; ``per_request=False`` keeps only the aggregates (a MEMIT job of hundreds of facts)."""
        data = dataclasses.asdict(self)
        if not per_request:
            del data["requests"]
        return data


def rate(checks: Sequence[Sequence[PromptCheck]]) -> Rate:
    """Per-request success rates averaged over requests (CounterFact's aggregation), with magnitudes."""
    groups = [group for group in checks if group]
    flat = [c for group in groups for c in group]
    rivals = [c for c in flat if c.p_rival_base is not None and c.p_rival_edited is not None]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return Rate(
        edited=mean([sum(c.success_edited for c in g) / len(g) for g in groups]),
        base=mean([sum(c.success_base for c in g) / len(g) for g in groups]),
        magnitude_edited=mean([c.p_wanted_edited - (c.p_rival_edited or 0.0) for c in rivals]),
        magnitude_base=mean([c.p_wanted_base - (c.p_rival_base or 0.0) for c in rivals]),
        n_prompts=len(flat),
    )

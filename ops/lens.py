"""`logit-lens`: what the model would predict after each block (synchronous).

The reading runs on the model's compute thread (`read`); describing it, up to layers x positions x
top_k tokens, is left to the caller's thread (`describe`), so other requests' passes are not held up
by building the answer. `run` does both, for callers in one thread.
"""

from __future__ import annotations

import time

from engine.lens.logit_lens import LensReading, logit_lens
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.prompts import decode
from ops.checks import check_at_most, check_count, encode, token
from ops.context import Facts, Resident
from ops.errors import FieldError
from ops.operation import Operation
from ops.references import on_variant, pin_variant
from schemas.lens import LensCell, LensLayer, LensTarget, LensToken, LogitLensRequest, LogitLensResponse, TokenInfo


def describe_layers(lm: LoadedModel, reading: LensReading) -> list[LensLayer]:
    text = {t: decode(lm.tokenizer, [t]) for t in {*reading.top_ids.flatten().tolist(), *reading.target_ids}}
    layers = []
    for layer in range(reading.n_layers):
        cells = []
        for column in range(len(reading.positions)):
            top = [LensToken(id=int(t), text=text[int(t)], probability=float(p))
                   for t, p in zip(reading.top_ids[layer, column], reading.top_probs[layer, column], strict=True)]
            targets = [LensTarget(id=t, text=text[t], probability=float(reading.target_probs[layer, column, k]),
                                  rank=int(reading.target_ranks[layer, column, k]))
                       for k, t in enumerate(reading.target_ids)]
            cells.append(LensCell(top=top, targets=targets))
        layers.append(LensLayer(layer=layer, cells=cells))
    return layers


class LogitLens(Operation[LogitLensRequest, LogitLensResponse]):
    def check(self, request: LogitLensRequest, facts: Facts) -> LogitLensRequest:
        assert facts.lm is not None, "a synchronous operation is checked where its model is resident"
        lm, settings = facts.lm, facts.settings
        ids = encode(lm, request.prompt, request.messages, settings.max_prompt_tokens,
                     allow_special_tokens=request.allow_special_tokens)
        positions = list(range(len(ids))) if request.positions == "all" else request.positions
        if not positions:
            raise FieldError("give at least one position", "positions")
        check_count(len(positions), settings.max_lens_positions, "positions",
                    rule=f"the limit is {settings.max_lens_positions} (the prompt has {len(ids)} tokens)")
        if bad := [p for p in positions if not -len(ids) <= p < len(ids)]:
            raise FieldError(f"positions {bad} are outside the prompt's {len(ids)} tokens", "positions")
        check_at_most(request.top_k, settings.max_lens_top_k, "top_k")
        check_count(len(request.targets), settings.max_lens_targets, "targets")
        for index, target in enumerate(request.targets):
            token(lm, target, f"targets.{index}")
        return request.model_copy(update={"variant": pin_variant(facts, request.variant)})

    def read(self, request: LogitLensRequest, at: Resident) -> tuple[list[int], list[int], LensReading]:
        """The prompt's ids, the tracked token ids and the reading: on the model's compute thread."""
        lm = at.lm
        ids = encode(lm, request.prompt, request.messages, at.settings.max_prompt_tokens,
                     allow_special_tokens=request.allow_special_tokens)
        positions = list(range(len(ids))) if request.positions == "all" else request.positions
        targets = [token(lm, target, f"targets.{index}") for index, target in enumerate(request.targets)]
        with on_variant(at, request.variant):
            return ids, targets, logit_lens(lm, ids, positions, top_k=request.top_k, targets=targets)

    def describe(self, request: LogitLensRequest, at: Resident, read: tuple[list[int], list[int], LensReading],
                 started: float) -> LogitLensResponse:
        """The wire answer of a reading (``started``: when the request arrived, ``time.perf_counter()``)."""
        lm, (ids, targets, reading) = at.lm, read
        return LogitLensResponse(
            model=at.model, variant=request.variant,
            tokens=[TokenInfo(id=t, text=decode(lm.tokenizer, [t])) for t in ids], positions=reading.positions,
            targets=[TokenInfo(id=t, text=decode(lm.tokenizer, [t])) for t in targets],
            layers=describe_layers(lm, reading), elapsed_seconds=time.perf_counter() - started,
        )

    def run(self, request: LogitLensRequest, at: Resident, progress: Progress) -> LogitLensResponse:
        started = time.perf_counter()
        return self.describe(request, at, self.read(request, at), started)


OPERATION = LogitLens()

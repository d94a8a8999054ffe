"""The intervention runtime: hooks installed once per resident model, a per-row table per pass.

Every operation that changes what the model computes is an intervention bound to one row of one
forward pass, never a mutation of shared model state. The runtime registers one forward hook on
every block when the model becomes resident (and removes them when it leaves); a hook does nothing
unless a `PassPlan` is active, and a plan is active only inside ``with runtime.active(plan):``,
which clears it in ``finally``. So a request that fails leaves nothing behind, and requests with
different interventions share one batched forward pass, each row seeing only its own.

Intervention kinds so far: additive steering vectors on the residual stream (block outputs).
Later kinds (low-rank weight deltas on a linear module, an affine eraser at a layer) add a table
of the same shape: per row, what to apply where.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from engine.loading import LoadedModel

Positions = Literal["all", "prompt", "generated"]
POSITION_KINDS: tuple[Positions, ...] = ("all", "prompt", "generated")


@dataclass(frozen=True)
class Steering:
    """Add ``alpha * vector`` to the residual stream after block ``layer`` for one row.

    Attributes:
        layer: block index; the addition is made to that block's output.
        vector: ``[hidden]``.
        alpha: scale.
        positions: ``prompt`` (prompt tokens), ``generated`` (tokens fed back while decoding), or
            ``all`` (both). Pads never receive it.
    """

    layer: int
    vector: torch.Tensor
    alpha: float
    positions: Positions = "all"


@dataclass(frozen=True)
class SteeringTable:
    """Per layer and position kind, the summed addition of every row: ``[batch, hidden]``.

    Built once per batch; it does not change between the prefill and the decode steps.
    """

    additions: dict[int, dict[Positions, torch.Tensor]]

    @classmethod
    def build(
        cls, rows: list[list[Steering]], *, hidden: int, dtype: torch.dtype, device: torch.device
    ) -> SteeringTable:
        """Sum each row's steering entries by (layer, position kind).

        Args:
            rows: per batch row, its steering entries (empty: unsteered).
        """
        additions: dict[int, dict[Positions, torch.Tensor]] = {}
        for row, entries in enumerate(rows):
            for entry in entries:
                if entry.vector.shape != (hidden,):
                    raise ValueError(f"a steering vector has shape {tuple(entry.vector.shape)}; expected ({hidden},)")
                per_kind = additions.setdefault(entry.layer, {})
                if entry.positions not in per_kind:
                    per_kind[entry.positions] = torch.zeros(len(rows), hidden, dtype=torch.float32, device=device)
                per_kind[entry.positions][row] += entry.alpha * entry.vector.to(device=device, dtype=torch.float32)
        # Sum in float32, apply in the model's dtype.
        cast = {layer: {k: v.to(dtype) for k, v in kinds.items()} for layer, kinds in additions.items()}
        return cls(additions=cast)

    @property
    def empty(self) -> bool:
        return not self.additions


@dataclass(frozen=True)
class PassPlan:
    """The interventions of one forward pass.

    Attributes:
        steering: the batch's steering table.
        prompt_mask: ``[batch, seq]`` bool, True at prompt (non-pad) tokens of this pass's input.
        generated_mask: ``[batch, seq]`` bool, True at generated tokens fed back in this pass.
    """

    steering: SteeringTable
    prompt_mask: torch.Tensor
    generated_mask: torch.Tensor
    masks: dict[Positions, torch.Tensor] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        both = self.prompt_mask | self.generated_mask
        self.masks.update({"all": both, "prompt": self.prompt_mask, "generated": self.generated_mask})

    def steer(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """Apply this pass's additions for ``layer`` to its output ``[batch, seq, hidden]``."""
        kinds = self.steering.additions.get(layer)
        if not kinds:
            return hidden
        for kind, addition in kinds.items():
            mask = self.masks[kind].to(hidden.dtype)
            hidden = hidden + mask[:, :, None] * addition[:, None, :]
        return hidden


class InterventionRuntime:
    """The hooks of one resident model and the plan of the pass in flight.

    One pass at a time per model: the batcher runs every forward pass of a model on one thread,
    and `active` enforces it with a lock rather than trusting it.
    """

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm
        self._plan: PassPlan | None = None
        self._owner: int | None = None  # the thread running the active pass
        self._pass_lock = threading.Lock()
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    @property
    def hook_count(self) -> int:
        """Hooks this runtime has registered (for tests: the same before and after any request)."""
        return len(self._handles)

    @contextmanager
    def installed(self) -> Iterator[InterventionRuntime]:
        """Register the block hooks for as long as the model is resident; remove them after."""
        if self._handles:
            raise RuntimeError("the runtime's hooks are already installed")
        try:
            for layer, block in enumerate(self.lm.adapter.blocks(self.lm.model)):
                self._handles.append(block.register_forward_hook(self._block_hook(layer)))
            yield self
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()

    @contextmanager
    def active(self, plan: PassPlan) -> Iterator[None]:
        """Make ``plan`` the one the hooks apply, for the passes run inside the block."""
        if not self._pass_lock.acquire(blocking=False):
            raise RuntimeError("another forward pass is in flight on this model")
        try:
            self._owner = threading.get_ident()
            self._plan = plan
            yield
        finally:
            self._plan = None
            self._owner = None
            self._pass_lock.release()

    def _block_hook(self, layer: int) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            plan = self._plan
            if plan is None or self._owner != threading.get_ident():
                # No plan, or a pass from another thread (say, an activation reading): leave it alone.
                return None
            if isinstance(output, tuple):
                return (plan.steer(layer, output[0]), *output[1:])
            return plan.steer(layer, output)

        return hook

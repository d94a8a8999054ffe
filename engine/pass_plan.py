"""The plan of one forward pass: which interventions apply to which rows.

A `PassPlan` carries a `SteeringTable` (per layer and position kind, each row's summed steering) and
a `VariantTable` (per site, each row's variant components, in its variant's order). The runtime's
hooks (`engine.runtime`) apply the plan that is active; the tables are built once per batch.

On a model split over several devices (``device_map``), each block computes on its own device; a
`Place` says which, and the tables put each site's tensors there when they are built. Without one
they live on one device and are moved (per pass) to where a site computes, which is correct but
slower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

from engine.components import Component, LowRankDelta, block_site
from engine.delta_stack import DeltaStack, stackable

Positions = Literal["all", "prompt", "generated"]
POSITION_KINDS: tuple[Positions, ...] = ("all", "prompt", "generated")
#: The device a site (``block.<l>``, ``module.<name>``) computes on (`engine.runtime.InterventionRuntime.place`).
Place = Callable[[str], torch.device]


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
        cls, rows: list[list[Steering]], *, hidden: int, dtype: torch.dtype, device: torch.device,
        place: Place | None = None,
    ) -> SteeringTable:
        """Sum each row's steering entries by (layer, position kind).

        Args:
            rows: per batch row, its steering entries (empty: unsteered).
            hidden: the model's hidden size.
            dtype: the model's dtype (the sums are made in float32 and cast to it).
            device: where the additions live when ``place`` is None.
            place: where each block computes (a split model): each layer's additions go there.
        """
        additions: dict[int, dict[Positions, torch.Tensor]] = {}
        for row, entries in enumerate(rows):
            for entry in entries:
                if entry.vector.shape != (hidden,):
                    raise ValueError(f"a steering vector has shape {tuple(entry.vector.shape)}; expected ({hidden},)")
                per_kind = additions.setdefault(entry.layer, {})
                at = place(block_site(entry.layer)) if place is not None else device
                if entry.positions not in per_kind:
                    per_kind[entry.positions] = torch.zeros(len(rows), hidden, dtype=torch.float32, device=at)
                per_kind[entry.positions][row] += entry.alpha * entry.vector.to(device=at, dtype=torch.float32)
        # Sum in float32, apply in the model's dtype.
        cast = {layer: {k: v.to(dtype) for k, v in kinds.items()} for layer, kinds in additions.items()}
        return cls(additions=cast)

    @property
    def empty(self) -> bool:
        return not self.additions


class Applier(Protocol):
    """What a stage applies: a component, or several rows' small deltas at once (`DeltaStack`)."""

    def apply(self, output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor: ...


#: One stage of a site: (what applies, rows it applies to as a ``[k]`` index tensor, or None for every row).
Stage = list[tuple[Applier, torch.Tensor | None]]


@dataclass(frozen=True)
class VariantTable:
    """Per site, which variant components apply to which rows, in each row's own order.

    Stage ``k`` of a site holds the ``k``-th component that each row has there; rows that share a
    component object share one application, except small weight deltas, which are stacked per row
    into one `DeltaStack` per stage (one application for every row that has one). A row without
    components at a site is left exactly as it was (its values are not even copied through a
    computation).

    Attributes:
        sites: site -> stages.
        components: every distinct component of the table (what the runtime checks before a pass).
    """

    sites: dict[str, list[Stage]] = field(default_factory=dict)
    components: tuple[Component, ...] = ()

    @classmethod
    def build(cls, rows: Sequence[Sequence[Component]], *, device: torch.device,
              place: Place | None = None) -> VariantTable:
        """Group each row's components (its variant's ordered list) by site.

        Args:
            rows: per batch row, its components (empty: the base model).
            device: where the row indices (and stacked deltas) live when ``place`` is None.
            place: where each site computes (a split model): its indices and stacked deltas go there.
        """
        sites: dict[str, list[dict[int, tuple[Component, list[int]]]]] = {}
        for row, components in enumerate(rows):
            depth: dict[str, int] = {}
            for component in components:
                stage = depth.get(component.site, 0)
                depth[component.site] = stage + 1
                stages = sites.setdefault(component.site, [])
                if len(stages) <= stage:
                    stages.append({})
                stages[stage].setdefault(id(component), (component, []))[1].append(row)
        n = len(rows)
        table: dict[str, list[Stage]] = {}
        for site, stages in sites.items():
            at = place(site) if place is not None else device
            table[site] = [_stage(list(stage.values()), n, at) for stage in stages]
        distinct = {id(c): c for components in rows for c in components}
        return cls(table, tuple(distinct.values()))

    @classmethod
    def uniform(cls, components: Sequence[Component]) -> VariantTable:
        """Every row of every pass gets ``components`` (a job run on one variant), whatever the batch."""
        sites: dict[str, list[Stage]] = {}
        for component in components:
            sites.setdefault(component.site, []).append([(component, None)])
        return cls(sites, tuple(components))

    @property
    def empty(self) -> bool:
        return not self.sites

    def apply(self, site: str, output: torch.Tensor, module_input: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the components at ``site`` to ``output`` ``[batch, seq, dim]``, row by row."""
        for stage in self.sites.get(site, ()):
            for component, rows in stage:
                if rows is None:
                    output = component.apply(output, module_input)
                else:
                    rows = rows if rows.device == output.device else rows.to(output.device)
                    part = component.apply(output[rows], None if module_input is None else module_input[rows])
                    output = output.index_copy(0, rows, part)  # out of place: autograd and inference tensors
        return output


def _stage(entries: list[tuple[Component, list[int]]], n: int, device: torch.device) -> Stage:
    """One stage's appliers, on ``device``: its small deltas stacked into one, other components as they are."""

    def index(rows: list[int]) -> torch.Tensor | None:
        return None if len(rows) == n else torch.tensor(sorted(rows), device=device)

    stage: Stage = [(c.to(device), index(rows)) for c, rows in entries if not stackable(c)]
    owner: dict[int, LowRankDelta] = {row: c for c, rows in entries if stackable(c) for row in rows}
    if owner:
        order = sorted(owner)
        stage.append((DeltaStack([owner[row] for row in order], device), index(order)))
    return stage


@dataclass(frozen=True)
class PassPlan:
    """The interventions of one forward pass.

    Attributes:
        steering: the batch's steering table.
        prompt_mask: ``[batch, seq]`` bool, True at prompt (non-pad) tokens of this pass's input.
        generated_mask: ``[batch, seq]`` bool, True at generated tokens fed back in this pass.
        variants: the rows' variant components (empty: every row runs the base model).
    """

    steering: SteeringTable
    prompt_mask: torch.Tensor
    generated_mask: torch.Tensor
    variants: VariantTable = field(default_factory=VariantTable)
    masks: dict[Positions, torch.Tensor] = field(init=False, default_factory=dict)
    # Each mask as the hooks use it: on a block's device, in the stream's dtype (made once per pass plan).
    _cast: dict[tuple[Positions, torch.device, torch.dtype], torch.Tensor] = field(
        init=False, default_factory=dict, repr=False)

    @classmethod
    def of_variant(cls, components: Sequence[Component]) -> PassPlan:
        """A plan that runs every row of every pass on one variant, with no steering (for jobs)."""
        none = torch.zeros((0, 0), dtype=torch.bool)
        return cls(SteeringTable(additions={}), none, none, VariantTable.uniform(components))

    def __post_init__(self) -> None:
        both = self.prompt_mask | self.generated_mask
        self.masks.update({"all": both, "prompt": self.prompt_mask, "generated": self.generated_mask})

    def steer(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """Apply this pass's additions for ``layer`` to its output ``[batch, seq, hidden]``."""
        kinds = self.steering.additions.get(layer)
        if not kinds:
            return hidden
        for kind, addition in kinds.items():
            key = (kind, hidden.device, hidden.dtype)
            if (mask := self._cast.get(key)) is None:
                mask = self._cast[key] = self.masks[kind].to(device=hidden.device, dtype=hidden.dtype)
            if addition.device != hidden.device:  # a split model whose table was built without a `Place`
                addition = addition.to(hidden.device)
            hidden = hidden + mask[:, :, None] * addition[:, None, :]
        return hidden

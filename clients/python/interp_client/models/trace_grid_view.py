from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.trace_grid_view_kind import TraceGridViewKind

T = TypeVar("T", bound="TraceGridView")


@_attrs_define
class TraceGridView:
    """One kind's grid: rows are `layers`, columns are `positions`.

    Attributes:
        indirect_effects (list[list[float]]): `[layers x positions]`: probabilities minus `p_corrupted`.
        kind (TraceGridViewKind):
        probabilities (list[list[float]]): `[layers x positions]`: the answer's probability after the restoration,
            averaged over corrupted runs.
        window (int): Blocks restored per cell (1 for the residual stream).
    """

    indirect_effects: list[list[float]]
    kind: TraceGridViewKind
    probabilities: list[list[float]]
    window: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        indirect_effects = []
        for indirect_effects_item_data in self.indirect_effects:
            indirect_effects_item = indirect_effects_item_data

            indirect_effects.append(indirect_effects_item)

        kind = self.kind.value

        probabilities = []
        for probabilities_item_data in self.probabilities:
            probabilities_item = probabilities_item_data

            probabilities.append(probabilities_item)

        window = self.window

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "indirect_effects": indirect_effects,
                "kind": kind,
                "probabilities": probabilities,
                "window": window,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        indirect_effects = []
        _indirect_effects = d.pop("indirect_effects")
        for indirect_effects_item_data in _indirect_effects:
            indirect_effects_item = cast(list[float], indirect_effects_item_data)

            indirect_effects.append(indirect_effects_item)

        kind = TraceGridViewKind(d.pop("kind"))

        probabilities = []
        _probabilities = d.pop("probabilities")
        for probabilities_item_data in _probabilities:
            probabilities_item = cast(list[float], probabilities_item_data)

            probabilities.append(probabilities_item)

        window = d.pop("window")

        trace_grid_view = cls(
            indirect_effects=indirect_effects,
            kind=kind,
            probabilities=probabilities,
            window=window,
        )

        trace_grid_view.additional_properties = d
        return trace_grid_view

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties

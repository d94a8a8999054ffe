from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.steering_spec_positions import SteeringSpecPositions
from ..types import UNSET, Unset

T = TypeVar("T", bound="SteeringSpec")


@_attrs_define
class SteeringSpec:
    """Add a control vector to the residual stream while generating.

    Attributes:
        alpha (float | Unset): Scale; 0 leaves the model unchanged. `alpha` times the largest value must stay within
            float32. Default: 1.0.
        layers (list[int] | None | Unset): Blocks whose output receives it; default: the stored vector's layers
            (required with `values`).
        positions (SteeringSpecPositions | Unset): Tokens that receive it: prompt tokens, generated tokens, or both.
            Default: SteeringSpecPositions.ALL.
        values (list[float] | None | Unset): An inline vector of the model's hidden size, each value within float32 (|v|
            <= 3.4e38).
        vector (None | str | Unset): A stored vector: `name` (latest version) or `name@version`.
    """

    alpha: float | Unset = 1.0
    layers: list[int] | None | Unset = UNSET
    positions: SteeringSpecPositions | Unset = SteeringSpecPositions.ALL
    values: list[float] | None | Unset = UNSET
    vector: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        alpha = self.alpha

        layers: list[int] | None | Unset
        if isinstance(self.layers, Unset):
            layers = UNSET
        elif isinstance(self.layers, list):
            layers = self.layers

        else:
            layers = self.layers

        positions: str | Unset = UNSET
        if not isinstance(self.positions, Unset):
            positions = self.positions.value

        values: list[float] | None | Unset
        if isinstance(self.values, Unset):
            values = UNSET
        elif isinstance(self.values, list):
            values = self.values

        else:
            values = self.values

        vector: None | str | Unset
        if isinstance(self.vector, Unset):
            vector = UNSET
        else:
            vector = self.vector

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if alpha is not UNSET:
            field_dict["alpha"] = alpha
        if layers is not UNSET:
            field_dict["layers"] = layers
        if positions is not UNSET:
            field_dict["positions"] = positions
        if values is not UNSET:
            field_dict["values"] = values
        if vector is not UNSET:
            field_dict["vector"] = vector

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        alpha = d.pop("alpha", UNSET)

        def _parse_layers(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                layers_type_0 = cast(list[int], data)

                return layers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        layers = _parse_layers(d.pop("layers", UNSET))

        _positions = d.pop("positions", UNSET)
        positions: SteeringSpecPositions | Unset
        if isinstance(_positions, Unset):
            positions = UNSET
        else:
            positions = SteeringSpecPositions(_positions)

        def _parse_values(data: object) -> list[float] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                values_type_0 = cast(list[float], data)

                return values_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[float] | None | Unset, data)

        values = _parse_values(d.pop("values", UNSET))

        def _parse_vector(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        vector = _parse_vector(d.pop("vector", UNSET))

        steering_spec = cls(
            alpha=alpha,
            layers=layers,
            positions=positions,
            values=values,
            vector=vector,
        )

        return steering_spec

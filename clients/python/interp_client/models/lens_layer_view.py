from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.lens_token import LensToken


T = TypeVar("T", bound="LensLayerView")


@_attrs_define
class LensLayerView:
    """The logit lens at the last position, after one block.

    Attributes:
        expected_probability (float):
        expected_rank (int):
        layer (int):
        predicted_probability (float):
        predicted_rank (int):
        top (LensToken): A token and its probability under the lens.
    """

    expected_probability: float
    expected_rank: int
    layer: int
    predicted_probability: float
    predicted_rank: int
    top: LensToken
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        expected_probability = self.expected_probability

        expected_rank = self.expected_rank

        layer = self.layer

        predicted_probability = self.predicted_probability

        predicted_rank = self.predicted_rank

        top = self.top.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "expected_probability": expected_probability,
                "expected_rank": expected_rank,
                "layer": layer,
                "predicted_probability": predicted_probability,
                "predicted_rank": predicted_rank,
                "top": top,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.lens_token import LensToken  # noqa: PLC0415

        d = dict(src_dict)
        expected_probability = d.pop("expected_probability")

        expected_rank = d.pop("expected_rank")

        layer = d.pop("layer")

        predicted_probability = d.pop("predicted_probability")

        predicted_rank = d.pop("predicted_rank")

        top = LensToken.from_dict(d.pop("top"))

        lens_layer_view = cls(
            expected_probability=expected_probability,
            expected_rank=expected_rank,
            layer=layer,
            predicted_probability=predicted_probability,
            predicted_rank=predicted_rank,
            top=top,
        )

        lens_layer_view.additional_properties = d
        return lens_layer_view

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="SubjectMlpView")


@_attrs_define
class SubjectMlpView:
    """MLP layers whose restoration (causal trace) brings the answer back most.

    Attributes:
        effects (list[float]):
        last_token_peak_layer (int): Strongest layer at the subject's last token (ROME's site).
        layers (list[int]): At that token, strongest first (at least half the strongest effect).
        peak_layer (int):
        position (int): The subject token with the largest MLP indirect effect.
        text (str):
    """

    effects: list[float]
    last_token_peak_layer: int
    layers: list[int]
    peak_layer: int
    position: int
    text: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        effects = self.effects

        last_token_peak_layer = self.last_token_peak_layer

        layers = self.layers

        peak_layer = self.peak_layer

        position = self.position

        text = self.text

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "effects": effects,
                "last_token_peak_layer": last_token_peak_layer,
                "layers": layers,
                "peak_layer": peak_layer,
                "position": position,
                "text": text,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        effects = cast(list[float], d.pop("effects"))

        last_token_peak_layer = d.pop("last_token_peak_layer")

        layers = cast(list[int], d.pop("layers"))

        peak_layer = d.pop("peak_layer")

        position = d.pop("position")

        text = d.pop("text")

        subject_mlp_view = cls(
            effects=effects,
            last_token_peak_layer=last_token_peak_layer,
            layers=layers,
            peak_layer=peak_layer,
            position=position,
            text=text,
        )

        subject_mlp_view.additional_properties = d
        return subject_mlp_view

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="LensTarget")


@_attrs_define
class LensTarget:
    """A tracked token under the lens.

    Attributes:
        id (int):
        probability (float):
        rank (int): 1 is the most probable token.
        text (str):
    """

    id: int
    probability: float
    rank: int
    text: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        probability = self.probability

        rank = self.rank

        text = self.text

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "probability": probability,
                "rank": rank,
                "text": text,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        probability = d.pop("probability")

        rank = d.pop("rank")

        text = d.pop("text")

        lens_target = cls(
            id=id,
            probability=probability,
            rank=rank,
            text=text,
        )

        lens_target.additional_properties = d
        return lens_target

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

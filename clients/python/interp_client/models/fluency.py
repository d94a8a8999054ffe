from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Fluency")


@_attrs_define
class Fluency:
    """ROME's weighted bi/tri-gram entropy (bits) of text sampled from the edit prompts.

    Attributes:
        base (float):
        edited (float):
        samples_base (list[str]):
        samples_edited (list[str]):
    """

    base: float
    edited: float
    samples_base: list[str]
    samples_edited: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        base = self.base

        edited = self.edited

        samples_base = self.samples_base

        samples_edited = self.samples_edited

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "base": base,
                "edited": edited,
                "samples_base": samples_base,
                "samples_edited": samples_edited,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        base = d.pop("base")

        edited = d.pop("edited")

        samples_base = cast(list[str], d.pop("samples_base"))

        samples_edited = cast(list[str], d.pop("samples_edited"))

        fluency = cls(
            base=base,
            edited=edited,
            samples_base=samples_base,
            samples_edited=samples_edited,
        )

        fluency.additional_properties = d
        return fluency

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

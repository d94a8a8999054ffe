from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Rate")


@_attrs_define
class Rate:
    """A success rate (per fact, averaged over facts), before and after, with its magnitude.

    Attributes:
        base (float | None): Before the edit (the parent variant or the base model).
        edited (float | None): After the edit; null when no fact has such prompts.
        magnitude_base (float | None):
        magnitude_edited (float | None): Mean P(wanted) - P(rival) over the prompts with a rival.
        n_prompts (int):
    """

    base: float | None
    edited: float | None
    magnitude_base: float | None
    magnitude_edited: float | None
    n_prompts: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        base: float | None
        base = self.base

        edited: float | None
        edited = self.edited

        magnitude_base: float | None
        magnitude_base = self.magnitude_base

        magnitude_edited: float | None
        magnitude_edited = self.magnitude_edited

        n_prompts = self.n_prompts

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "base": base,
                "edited": edited,
                "magnitude_base": magnitude_base,
                "magnitude_edited": magnitude_edited,
                "n_prompts": n_prompts,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_base(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        base = _parse_base(d.pop("base"))

        def _parse_edited(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        edited = _parse_edited(d.pop("edited"))

        def _parse_magnitude_base(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        magnitude_base = _parse_magnitude_base(d.pop("magnitude_base"))

        def _parse_magnitude_edited(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        magnitude_edited = _parse_magnitude_edited(d.pop("magnitude_edited"))

        n_prompts = d.pop("n_prompts")

        rate = cls(
            base=base,
            edited=edited,
            magnitude_base=magnitude_base,
            magnitude_edited=magnitude_edited,
            n_prompts=n_prompts,
        )

        rate.additional_properties = d
        return rate

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

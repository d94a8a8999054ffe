from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Drift")


@_attrs_define
class Drift:
    """KL(parent || variant) of next-token distributions over every token of the canary prompts (nats).

    Attributes:
        max_kl (float):
        mean_kl (float):
        n_positions (int):
    """

    max_kl: float
    mean_kl: float
    n_positions: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        max_kl = self.max_kl

        mean_kl = self.mean_kl

        n_positions = self.n_positions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "max_kl": max_kl,
                "mean_kl": mean_kl,
                "n_positions": n_positions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        max_kl = d.pop("max_kl")

        mean_kl = d.pop("mean_kl")

        n_positions = d.pop("n_positions")

        drift = cls(
            max_kl=max_kl,
            mean_kl=mean_kl,
            n_positions=n_positions,
        )

        drift.additional_properties = d
        return drift

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

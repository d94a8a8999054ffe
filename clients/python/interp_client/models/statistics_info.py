from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="StatisticsInfo")


@_attrs_define
class StatisticsInfo:
    """
    Attributes:
        count (int): Key vectors the second moment was computed on.
        layer (int):
        module (str):
        sha256 (str): Content hash, also recorded in the variant's manifest.
    """

    count: int
    layer: int
    module: str
    sha256: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        count = self.count

        layer = self.layer

        module = self.module

        sha256 = self.sha256

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "count": count,
                "layer": layer,
                "module": module,
                "sha256": sha256,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        count = d.pop("count")

        layer = d.pop("layer")

        module = d.pop("module")

        sha256 = d.pop("sha256")

        statistics_info = cls(
            count=count,
            layer=layer,
            module=module,
            sha256=sha256,
        )

        statistics_info.additional_properties = d
        return statistics_info

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

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.lens_target import LensTarget
    from ..models.lens_token import LensToken


T = TypeVar("T", bound="LensCell")


@_attrs_define
class LensCell:
    """The lens at one (layer, position).

    Attributes:
        targets (list[LensTarget]): In the order of the request's `targets`.
        top (list[LensToken]): Most probable first.
    """

    targets: list[LensTarget]
    top: list[LensToken]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        targets = []
        for targets_item_data in self.targets:
            targets_item = targets_item_data.to_dict()
            targets.append(targets_item)

        top = []
        for top_item_data in self.top:
            top_item = top_item_data.to_dict()
            top.append(top_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "targets": targets,
                "top": top,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.lens_target import LensTarget  # noqa: PLC0415
        from ..models.lens_token import LensToken  # noqa: PLC0415

        d = dict(src_dict)
        targets = []
        _targets = d.pop("targets")
        for targets_item_data in _targets:
            targets_item = LensTarget.from_dict(targets_item_data)

            targets.append(targets_item)

        top = []
        _top = d.pop("top")
        for top_item_data in _top:
            top_item = LensToken.from_dict(top_item_data)

            top.append(top_item)

        lens_cell = cls(
            targets=targets,
            top=top,
        )

        lens_cell.additional_properties = d
        return lens_cell

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ContinuationTarget")


@_attrs_define
class ContinuationTarget:
    """Explain every token of a given continuation of the prompt.

    Attributes:
        text (str):
        kind (Literal['continuation'] | Unset):  Default: 'continuation'.
    """

    text: str
    kind: Literal["continuation"] | Unset = "continuation"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        text = self.text

        kind = self.kind

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "text": text,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        text = d.pop("text")

        kind = cast(Literal["continuation"] | Unset, d.pop("kind", UNSET))
        if kind != "continuation" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'continuation', got '{kind}'")

        continuation_target = cls(
            text=text,
            kind=kind,
        )

        continuation_target.additional_properties = d
        return continuation_target

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

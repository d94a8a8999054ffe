from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="AttributedToken")


@_attrs_define
class AttributedToken:
    """One input unit (a token, or a word with `aggregate: word`).

    Attributes:
        attributable (bool): False for chat-template and role tokens (never attributed).
        end (int):
        id (int | None): Token id; null for words.
        start (int): Character offset of the unit in the prompt text the model saw.
        text (str):
    """

    attributable: bool
    end: int
    id: int | None
    start: int
    text: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attributable = self.attributable

        end = self.end

        id: int | None
        id = self.id

        start = self.start

        text = self.text

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attributable": attributable,
                "end": end,
                "id": id,
                "start": start,
                "text": text,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        attributable = d.pop("attributable")

        end = d.pop("end")

        def _parse_id(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        id = _parse_id(d.pop("id"))

        start = d.pop("start")

        text = d.pop("text")

        attributed_token = cls(
            attributable=attributable,
            end=end,
            id=id,
            start=start,
            text=text,
        )

        attributed_token.additional_properties = d
        return attributed_token

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

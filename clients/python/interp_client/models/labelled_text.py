from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="LabelledText")


@_attrs_define
class LabelledText:
    """
    Attributes:
        label (int | str): The concept's value for this text: a class name or an integer.
        text (str):
    """

    label: int | str
    text: str

    def to_dict(self) -> dict[str, Any]:
        label: int | str
        label = self.label

        text = self.text

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "label": label,
                "text": text,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_label(data: object) -> int | str:
            return cast(int | str, data)

        label = _parse_label(d.pop("label"))

        text = d.pop("text")

        labelled_text = cls(
            label=label,
            text=text,
        )

        return labelled_text

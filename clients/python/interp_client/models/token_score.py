from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="TokenScore")


@_attrs_define
class TokenScore:
    """
    Attributes:
        id (int):
        logprob (float | None): log p(token | previous tokens); null for the first.
        text (str):
    """

    id: int
    logprob: float | None
    text: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        logprob: float | None
        logprob = self.logprob

        text = self.text

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "logprob": logprob,
                "text": text,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        def _parse_logprob(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        logprob = _parse_logprob(d.pop("logprob"))

        text = d.pop("text")

        token_score = cls(
            id=id,
            logprob=logprob,
            text=text,
        )

        token_score.additional_properties = d
        return token_score

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

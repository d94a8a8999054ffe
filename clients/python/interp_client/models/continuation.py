from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.continuation_finish_reason import ContinuationFinishReason

if TYPE_CHECKING:
    from ..models.generated_token import GeneratedToken


T = TypeVar("T", bound="Continuation")


@_attrs_define
class Continuation:
    """
    Attributes:
        finish_reason (ContinuationFinishReason):
        text (str):
        tokens (list[GeneratedToken]):
    """

    finish_reason: ContinuationFinishReason
    text: str
    tokens: list[GeneratedToken]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        finish_reason = self.finish_reason.value

        text = self.text

        tokens = []
        for tokens_item_data in self.tokens:
            tokens_item = tokens_item_data.to_dict()
            tokens.append(tokens_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "finish_reason": finish_reason,
                "text": text,
                "tokens": tokens,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.generated_token import GeneratedToken  # noqa: PLC0415

        d = dict(src_dict)
        finish_reason = ContinuationFinishReason(d.pop("finish_reason"))

        text = d.pop("text")

        tokens = []
        _tokens = d.pop("tokens")
        for tokens_item_data in _tokens:
            tokens_item = GeneratedToken.from_dict(tokens_item_data)

            tokens.append(tokens_item)

        continuation = cls(
            finish_reason=finish_reason,
            text=text,
            tokens=tokens,
        )

        continuation.additional_properties = d
        return continuation

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

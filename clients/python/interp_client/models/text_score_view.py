from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.token_score import TokenScore


T = TypeVar("T", bound="TextScoreView")


@_attrs_define
class TextScoreView:
    """
    Attributes:
        mean_logprob (float | None): Mean over tokens that have a log-probability.
        tokens (list[TokenScore]):
        total_logprob (float):
    """

    mean_logprob: float | None
    tokens: list[TokenScore]
    total_logprob: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        mean_logprob: float | None
        mean_logprob = self.mean_logprob

        tokens = []
        for tokens_item_data in self.tokens:
            tokens_item = tokens_item_data.to_dict()
            tokens.append(tokens_item)

        total_logprob = self.total_logprob

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "mean_logprob": mean_logprob,
                "tokens": tokens,
                "total_logprob": total_logprob,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.token_score import TokenScore  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_mean_logprob(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        mean_logprob = _parse_mean_logprob(d.pop("mean_logprob"))

        tokens = []
        _tokens = d.pop("tokens")
        for tokens_item_data in _tokens:
            tokens_item = TokenScore.from_dict(tokens_item_data)

            tokens.append(tokens_item)

        total_logprob = d.pop("total_logprob")

        text_score_view = cls(
            mean_logprob=mean_logprob,
            tokens=tokens,
            total_logprob=total_logprob,
        )

        text_score_view.additional_properties = d
        return text_score_view

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

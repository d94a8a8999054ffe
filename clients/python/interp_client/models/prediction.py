from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.token_info import TokenInfo


T = TypeVar("T", bound="Prediction")


@_attrs_define
class Prediction:
    """
    Attributes:
        probability (float):
        rank (int): 1 is the most probable token.
        token (TokenInfo):
    """

    probability: float
    rank: int
    token: TokenInfo
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        probability = self.probability

        rank = self.rank

        token = self.token.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "probability": probability,
                "rank": rank,
                "token": token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.token_info import TokenInfo  # noqa: PLC0415

        d = dict(src_dict)
        probability = d.pop("probability")

        rank = d.pop("rank")

        token = TokenInfo.from_dict(d.pop("token"))

        prediction = cls(
            probability=probability,
            rank=rank,
            token=token,
        )

        prediction.additional_properties = d
        return prediction

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

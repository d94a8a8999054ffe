from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Decision")


@_attrs_define
class Decision:
    """
    Attributes:
        best_layer (int): Where the expected token ranks best.
        best_rank (int):
        correct (bool):
        lost_at (int | None): Wrong answers: the block after the last one where the expected token was on top; null if
            it never was.
        settles_at (int): First block from which the final prediction stays the lens's top token.
    """

    best_layer: int
    best_rank: int
    correct: bool
    lost_at: int | None
    settles_at: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        best_layer = self.best_layer

        best_rank = self.best_rank

        correct = self.correct

        lost_at: int | None
        lost_at = self.lost_at

        settles_at = self.settles_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "best_layer": best_layer,
                "best_rank": best_rank,
                "correct": correct,
                "lost_at": lost_at,
                "settles_at": settles_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        best_layer = d.pop("best_layer")

        best_rank = d.pop("best_rank")

        correct = d.pop("correct")

        def _parse_lost_at(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        lost_at = _parse_lost_at(d.pop("lost_at"))

        settles_at = d.pop("settles_at")

        decision = cls(
            best_layer=best_layer,
            best_rank=best_rank,
            correct=correct,
            lost_at=lost_at,
            settles_at=settles_at,
        )

        decision.additional_properties = d
        return decision

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

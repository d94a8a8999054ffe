from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ContrastPair")


@_attrs_define
class ContrastPair:
    """
    Attributes:
        negative (str): The matched prompt without it.
        positive (str): Shows the behaviour, e.g. an honest framing.
    """

    negative: str
    positive: str

    def to_dict(self) -> dict[str, Any]:
        negative = self.negative

        positive = self.positive

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "negative": negative,
                "positive": positive,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        negative = d.pop("negative")

        positive = d.pop("positive")

        contrast_pair = cls(
            negative=negative,
            positive=positive,
        )

        return contrast_pair

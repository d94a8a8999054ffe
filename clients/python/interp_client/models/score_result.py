from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.text_score_view import TextScoreView


T = TypeVar("T", bound="ScoreResult")


@_attrs_define
class ScoreResult:
    """
    Attributes:
        elapsed_seconds (float):
        texts (list[TextScoreView]):
        variant (None | str | Unset): The variant version that scored them (`name@version`).
    """

    elapsed_seconds: float
    texts: list[TextScoreView]
    variant: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        elapsed_seconds = self.elapsed_seconds

        texts = []
        for texts_item_data in self.texts:
            texts_item = texts_item_data.to_dict()
            texts.append(texts_item)

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "elapsed_seconds": elapsed_seconds,
                "texts": texts,
            }
        )
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.text_score_view import TextScoreView  # noqa: PLC0415

        d = dict(src_dict)
        elapsed_seconds = d.pop("elapsed_seconds")

        texts = []
        _texts = d.pop("texts")
        for texts_item_data in _texts:
            texts_item = TextScoreView.from_dict(texts_item_data)

            texts.append(texts_item)

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        score_result = cls(
            elapsed_seconds=elapsed_seconds,
            texts=texts,
            variant=variant,
        )

        score_result.additional_properties = d
        return score_result

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

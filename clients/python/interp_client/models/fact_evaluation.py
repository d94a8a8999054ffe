from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.prompt_check import PromptCheck


T = TypeVar("T", bound="FactEvaluation")


@_attrs_define
class FactEvaluation:
    """Every check of one fact, and what the edit prompt continues with (greedy) before and after.

    Attributes:
        continuation_base (str):
        continuation_edited (str):
        efficacy (PromptCheck): One prompt: does the answer that should win beat its rival, before (parent) and after
            the edit.
        neighborhood (list[PromptCheck]):
        paraphrases (list[PromptCheck]):
        subject (str):
        target_new (str):
        target_true (None | str):
    """

    continuation_base: str
    continuation_edited: str
    efficacy: PromptCheck
    neighborhood: list[PromptCheck]
    paraphrases: list[PromptCheck]
    subject: str
    target_new: str
    target_true: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        continuation_base = self.continuation_base

        continuation_edited = self.continuation_edited

        efficacy = self.efficacy.to_dict()

        neighborhood = []
        for neighborhood_item_data in self.neighborhood:
            neighborhood_item = neighborhood_item_data.to_dict()
            neighborhood.append(neighborhood_item)

        paraphrases = []
        for paraphrases_item_data in self.paraphrases:
            paraphrases_item = paraphrases_item_data.to_dict()
            paraphrases.append(paraphrases_item)

        subject = self.subject

        target_new = self.target_new

        target_true: None | str
        target_true = self.target_true

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "continuation_base": continuation_base,
                "continuation_edited": continuation_edited,
                "efficacy": efficacy,
                "neighborhood": neighborhood,
                "paraphrases": paraphrases,
                "subject": subject,
                "target_new": target_new,
                "target_true": target_true,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.prompt_check import PromptCheck  # noqa: PLC0415

        d = dict(src_dict)
        continuation_base = d.pop("continuation_base")

        continuation_edited = d.pop("continuation_edited")

        efficacy = PromptCheck.from_dict(d.pop("efficacy"))

        neighborhood = []
        _neighborhood = d.pop("neighborhood")
        for neighborhood_item_data in _neighborhood:
            neighborhood_item = PromptCheck.from_dict(neighborhood_item_data)

            neighborhood.append(neighborhood_item)

        paraphrases = []
        _paraphrases = d.pop("paraphrases")
        for paraphrases_item_data in _paraphrases:
            paraphrases_item = PromptCheck.from_dict(paraphrases_item_data)

            paraphrases.append(paraphrases_item)

        subject = d.pop("subject")

        target_new = d.pop("target_new")

        def _parse_target_true(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        target_true = _parse_target_true(d.pop("target_true"))

        fact_evaluation = cls(
            continuation_base=continuation_base,
            continuation_edited=continuation_edited,
            efficacy=efficacy,
            neighborhood=neighborhood,
            paraphrases=paraphrases,
            subject=subject,
            target_new=target_new,
            target_true=target_true,
        )

        fact_evaluation.additional_properties = d
        return fact_evaluation

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

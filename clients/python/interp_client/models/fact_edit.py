from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.neighborhood_fact import NeighborhoodFact


T = TypeVar("T", bound="FactEdit")


@_attrs_define
class FactEdit:
    """One fact to write: ``prompt`` with the subject filled in should continue with ``target_new``.

    Attributes:
        prompt (str): Template with exactly one `{}` where the subject goes.
        subject (str): The subject; the edit is keyed on its last token.
        target_new (str): The new answer, with its leading space (" Rome").
        neighborhood (list[NeighborhoodFact] | Unset): Unrelated facts that must keep their answers; evaluation only.
        paraphrases (list[str] | Unset): Full prompts that ask the same thing differently; evaluation only.
        target_true (None | str | Unset): The current answer, for the evaluation (efficacy: the new answer beats it).
            When omitted, efficacy means the greedy continuation starts with `target_new`.
    """

    prompt: str
    subject: str
    target_new: str
    neighborhood: list[NeighborhoodFact] | Unset = UNSET
    paraphrases: list[str] | Unset = UNSET
    target_true: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        prompt = self.prompt

        subject = self.subject

        target_new = self.target_new

        neighborhood: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.neighborhood, Unset):
            neighborhood = []
            for neighborhood_item_data in self.neighborhood:
                neighborhood_item = neighborhood_item_data.to_dict()
                neighborhood.append(neighborhood_item)

        paraphrases: list[str] | Unset = UNSET
        if not isinstance(self.paraphrases, Unset):
            paraphrases = self.paraphrases

        target_true: None | str | Unset
        if isinstance(self.target_true, Unset):
            target_true = UNSET
        else:
            target_true = self.target_true

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "prompt": prompt,
                "subject": subject,
                "target_new": target_new,
            }
        )
        if neighborhood is not UNSET:
            field_dict["neighborhood"] = neighborhood
        if paraphrases is not UNSET:
            field_dict["paraphrases"] = paraphrases
        if target_true is not UNSET:
            field_dict["target_true"] = target_true

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.neighborhood_fact import NeighborhoodFact  # noqa: PLC0415

        d = dict(src_dict)
        prompt = d.pop("prompt")

        subject = d.pop("subject")

        target_new = d.pop("target_new")

        _neighborhood = d.pop("neighborhood", UNSET)
        neighborhood: list[NeighborhoodFact] | Unset = UNSET
        if _neighborhood is not UNSET:
            neighborhood = []
            for neighborhood_item_data in _neighborhood:
                neighborhood_item = NeighborhoodFact.from_dict(neighborhood_item_data)

                neighborhood.append(neighborhood_item)

        paraphrases = cast(list[str], d.pop("paraphrases", UNSET))

        def _parse_target_true(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        target_true = _parse_target_true(d.pop("target_true", UNSET))

        fact_edit = cls(
            prompt=prompt,
            subject=subject,
            target_new=target_new,
            neighborhood=neighborhood,
            paraphrases=paraphrases,
            target_true=target_true,
        )

        return fact_edit

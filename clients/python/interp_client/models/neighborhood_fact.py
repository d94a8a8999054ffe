from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="NeighborhoodFact")


@_attrs_define
class NeighborhoodFact:
    """
    Attributes:
        answer (str): Its true answer, with its leading space (" Berlin"); it must keep it.
        prompt (str): An unrelated prompt ("The capital of Germany is").
    """

    answer: str
    prompt: str

    def to_dict(self) -> dict[str, Any]:
        answer = self.answer

        prompt = self.prompt

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "answer": answer,
                "prompt": prompt,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        answer = d.pop("answer")

        prompt = d.pop("prompt")

        neighborhood_fact = cls(
            answer=answer,
            prompt=prompt,
        )

        return neighborhood_fact

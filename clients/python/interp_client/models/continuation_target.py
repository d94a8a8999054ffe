from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ContinuationTarget")


@_attrs_define
class ContinuationTarget:
    """Explain every token of a given continuation of the prompt.

    Attributes:
        text (str): Fed to the model after the prompt (special-token text in it follows `allow_special_tokens`).
        kind (Literal['continuation'] | Unset):  Default: 'continuation'.
    """

    text: str
    kind: Literal["continuation"] | Unset = "continuation"

    def to_dict(self) -> dict[str, Any]:
        text = self.text

        kind = self.kind

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "text": text,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        text = d.pop("text")

        kind = cast(Literal["continuation"] | Unset, d.pop("kind", UNSET))
        if kind != "continuation" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'continuation', got '{kind}'")

        continuation_target = cls(
            text=text,
            kind=kind,
        )

        return continuation_target

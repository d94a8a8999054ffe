from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="GenerateTarget")


@_attrs_define
class GenerateTarget:
    """Generate `n_tokens` greedily and explain each.

    Attributes:
        n_tokens (int):
        kind (Literal['generate'] | Unset):  Default: 'generate'.
    """

    n_tokens: int
    kind: Literal["generate"] | Unset = "generate"

    def to_dict(self) -> dict[str, Any]:
        n_tokens = self.n_tokens

        kind = self.kind

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "n_tokens": n_tokens,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        n_tokens = d.pop("n_tokens")

        kind = cast(Literal["generate"] | Unset, d.pop("kind", UNSET))
        if kind != "generate" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'generate', got '{kind}'")

        generate_target = cls(
            n_tokens=n_tokens,
            kind=kind,
        )

        return generate_target

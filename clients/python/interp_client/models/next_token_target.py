from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="NextTokenTarget")


@_attrs_define
class NextTokenTarget:
    """Explain the next token: the model's top prediction, or a given token.

    Attributes:
        kind (Literal['next_token'] | Unset):  Default: 'next_token'.
        token (int | None | str | Unset): A token id, or text that encodes to one token; the model's top prediction when
            omitted.
    """

    kind: Literal["next_token"] | Unset = "next_token"
    token: int | None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        kind = self.kind

        token: int | None | str | Unset
        if isinstance(self.token, Unset):
            token = UNSET
        else:
            token = self.token

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if kind is not UNSET:
            field_dict["kind"] = kind
        if token is not UNSET:
            field_dict["token"] = token

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        kind = cast(Literal["next_token"] | Unset, d.pop("kind", UNSET))
        if kind != "next_token" and not isinstance(kind, Unset):
            raise ValueError(f"kind must match const 'next_token', got '{kind}'")

        def _parse_token(data: object) -> int | None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | str | Unset, data)

        token = _parse_token(d.pop("token", UNSET))

        next_token_target = cls(
            kind=kind,
            token=token,
        )

        return next_token_target

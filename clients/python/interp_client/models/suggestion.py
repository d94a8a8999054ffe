from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.suggestion_kind import SuggestionKind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.suggestion_body import SuggestionBody


T = TypeVar("T", bound="Suggestion")


@_attrs_define
class Suggestion:
    """A fix, as a request ready to send.

    Attributes:
        body (SuggestionBody):
        endpoint (str): Where to send `body`: `/edit` or `/generate`.
        kind (SuggestionKind):
        rationale (str):
        method (Literal['POST'] | Unset):  Default: 'POST'.
        verified (bool | None | Unset): steering: the body was run while diagnosing and made the expected token the
            greedy next token. null: not run (edits).
    """

    body: SuggestionBody
    endpoint: str
    kind: SuggestionKind
    rationale: str
    method: Literal["POST"] | Unset = "POST"
    verified: bool | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body = self.body.to_dict()

        endpoint = self.endpoint

        kind = self.kind.value

        rationale = self.rationale

        method = self.method

        verified: bool | None | Unset
        if isinstance(self.verified, Unset):
            verified = UNSET
        else:
            verified = self.verified

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "body": body,
                "endpoint": endpoint,
                "kind": kind,
                "rationale": rationale,
            }
        )
        if method is not UNSET:
            field_dict["method"] = method
        if verified is not UNSET:
            field_dict["verified"] = verified

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.suggestion_body import SuggestionBody  # noqa: PLC0415

        d = dict(src_dict)
        body = SuggestionBody.from_dict(d.pop("body"))

        endpoint = d.pop("endpoint")

        kind = SuggestionKind(d.pop("kind"))

        rationale = d.pop("rationale")

        method = cast(Literal["POST"] | Unset, d.pop("method", UNSET))
        if method != "POST" and not isinstance(method, Unset):
            raise ValueError(f"method must match const 'POST', got '{method}'")

        def _parse_verified(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        verified = _parse_verified(d.pop("verified", UNSET))

        suggestion = cls(
            body=body,
            endpoint=endpoint,
            kind=kind,
            rationale=rationale,
            method=method,
            verified=verified,
        )

        suggestion.additional_properties = d
        return suggestion

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="VariantComponent")


@_attrs_define
class VariantComponent:
    """One component of a variant, in the order it applies.

    Attributes:
        index (int):
        kind (str): `affine_eraser` (at a block's output) or `low_rank_delta` (on a module).
        origin (str): The variant version that added it (a parent's, or this one's).
        rank (int):
        sha256 (str): Content hash of its facts and tensors.
        site (str): `block.<layer>` or `module.<qualified name>`.
    """

    index: int
    kind: str
    origin: str
    rank: int
    sha256: str
    site: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        index = self.index

        kind = self.kind

        origin = self.origin

        rank = self.rank

        sha256 = self.sha256

        site = self.site

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "index": index,
                "kind": kind,
                "origin": origin,
                "rank": rank,
                "sha256": sha256,
                "site": site,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        index = d.pop("index")

        kind = d.pop("kind")

        origin = d.pop("origin")

        rank = d.pop("rank")

        sha256 = d.pop("sha256")

        site = d.pop("site")

        variant_component = cls(
            index=index,
            kind=kind,
            origin=origin,
            rank=rank,
            sha256=sha256,
            site=site,
        )

        variant_component.additional_properties = d
        return variant_component

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

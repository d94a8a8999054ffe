from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="PromptCheck")


@_attrs_define
class PromptCheck:
    """One prompt: does the answer that should win beat its rival, before (parent) and after the edit.

    Attributes:
        p_rival_base (float | None):
        p_rival_edited (float | None):
        p_wanted_base (float): exp(mean token log-probability) of `wanted`, before.
        p_wanted_edited (float):
        prompt (str):
        rival (None | str): The answer it must beat; null when judged by greedy generation.
        success_base (bool):
        success_edited (bool):
        wanted (str): `target_new` on edit prompts and paraphrases; the true answer on neighbourhood prompts.
    """

    p_rival_base: float | None
    p_rival_edited: float | None
    p_wanted_base: float
    p_wanted_edited: float
    prompt: str
    rival: None | str
    success_base: bool
    success_edited: bool
    wanted: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        p_rival_base: float | None
        p_rival_base = self.p_rival_base

        p_rival_edited: float | None
        p_rival_edited = self.p_rival_edited

        p_wanted_base = self.p_wanted_base

        p_wanted_edited = self.p_wanted_edited

        prompt = self.prompt

        rival: None | str
        rival = self.rival

        success_base = self.success_base

        success_edited = self.success_edited

        wanted = self.wanted

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "p_rival_base": p_rival_base,
                "p_rival_edited": p_rival_edited,
                "p_wanted_base": p_wanted_base,
                "p_wanted_edited": p_wanted_edited,
                "prompt": prompt,
                "rival": rival,
                "success_base": success_base,
                "success_edited": success_edited,
                "wanted": wanted,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_p_rival_base(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        p_rival_base = _parse_p_rival_base(d.pop("p_rival_base"))

        def _parse_p_rival_edited(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        p_rival_edited = _parse_p_rival_edited(d.pop("p_rival_edited"))

        p_wanted_base = d.pop("p_wanted_base")

        p_wanted_edited = d.pop("p_wanted_edited")

        prompt = d.pop("prompt")

        def _parse_rival(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        rival = _parse_rival(d.pop("rival"))

        success_base = d.pop("success_base")

        success_edited = d.pop("success_edited")

        wanted = d.pop("wanted")

        prompt_check = cls(
            p_rival_base=p_rival_base,
            p_rival_edited=p_rival_edited,
            p_wanted_base=p_wanted_base,
            p_wanted_edited=p_wanted_edited,
            prompt=prompt,
            rival=rival,
            success_base=success_base,
            success_edited=success_edited,
            wanted=wanted,
        )

        prompt_check.additional_properties = d
        return prompt_check

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

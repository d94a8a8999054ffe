from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.generate_response_finish_reason import GenerateResponseFinishReason
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.continuation import Continuation
    from ..models.generated_token import GeneratedToken
    from ..models.usage import Usage


T = TypeVar("T", bound="GenerateResponse")


@_attrs_define
class GenerateResponse:
    """
    Attributes:
        elapsed_seconds (float):
        finish_reason (GenerateResponseFinishReason):
        model (str):
        text (str): The continuation only, without the prompt.
        tokens (list[GeneratedToken]):
        usage (Usage):
        steered (bool | Unset): Whether steering was applied. Default: False.
        unsteered (Continuation | None | Unset): With `compare`: the continuation without steering.
        variant (None | str | Unset): The variant version that served it (`name@version`).
    """

    elapsed_seconds: float
    finish_reason: GenerateResponseFinishReason
    model: str
    text: str
    tokens: list[GeneratedToken]
    usage: Usage
    steered: bool | Unset = False
    unsteered: Continuation | None | Unset = UNSET
    variant: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.continuation import Continuation  # noqa: PLC0415

        elapsed_seconds = self.elapsed_seconds

        finish_reason = self.finish_reason.value

        model = self.model

        text = self.text

        tokens = []
        for tokens_item_data in self.tokens:
            tokens_item = tokens_item_data.to_dict()
            tokens.append(tokens_item)

        usage = self.usage.to_dict()

        steered = self.steered

        unsteered: dict[str, Any] | None | Unset
        if isinstance(self.unsteered, Unset):
            unsteered = UNSET
        elif isinstance(self.unsteered, Continuation):
            unsteered = self.unsteered.to_dict()
        else:
            unsteered = self.unsteered

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
                "finish_reason": finish_reason,
                "model": model,
                "text": text,
                "tokens": tokens,
                "usage": usage,
            }
        )
        if steered is not UNSET:
            field_dict["steered"] = steered
        if unsteered is not UNSET:
            field_dict["unsteered"] = unsteered
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.continuation import Continuation  # noqa: PLC0415
        from ..models.generated_token import GeneratedToken  # noqa: PLC0415
        from ..models.usage import Usage  # noqa: PLC0415

        d = dict(src_dict)
        elapsed_seconds = d.pop("elapsed_seconds")

        finish_reason = GenerateResponseFinishReason(d.pop("finish_reason"))

        model = d.pop("model")

        text = d.pop("text")

        tokens = []
        _tokens = d.pop("tokens")
        for tokens_item_data in _tokens:
            tokens_item = GeneratedToken.from_dict(tokens_item_data)

            tokens.append(tokens_item)

        usage = Usage.from_dict(d.pop("usage"))

        steered = d.pop("steered", UNSET)

        def _parse_unsteered(data: object) -> Continuation | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                unsteered_type_0 = Continuation.from_dict(data)

                return unsteered_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Continuation | None | Unset, data)

        unsteered = _parse_unsteered(d.pop("unsteered", UNSET))

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        generate_response = cls(
            elapsed_seconds=elapsed_seconds,
            finish_reason=finish_reason,
            model=model,
            text=text,
            tokens=tokens,
            usage=usage,
            steered=steered,
            unsteered=unsteered,
            variant=variant,
        )

        generate_response.additional_properties = d
        return generate_response

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ScoreRequest")


@_attrs_define
class ScoreRequest:
    """Score texts under a model: a batched forward pass run as a job.

    Attributes:
        texts (list[str]): Texts to score.
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        batch_size (int | None | Unset): Texts per forward pass; a safe default when omitted.
        model (None | str | Unset): Model name; the default model when omitted.
        variant (None | str | Unset): Run on this model variant (`name` or `name@version`, see
            `/models/{model}/variants`); the base model when omitted.
    """

    texts: list[str]
    allow_special_tokens: bool | Unset = False
    batch_size: int | None | Unset = UNSET
    model: None | str | Unset = UNSET
    variant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        texts = self.texts

        allow_special_tokens = self.allow_special_tokens

        batch_size: int | None | Unset
        if isinstance(self.batch_size, Unset):
            batch_size = UNSET
        else:
            batch_size = self.batch_size

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "texts": texts,
            }
        )
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if model is not UNSET:
            field_dict["model"] = model
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        texts = cast(list[str], d.pop("texts"))

        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

        def _parse_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        batch_size = _parse_batch_size(d.pop("batch_size", UNSET))

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        score_request = cls(
            texts=texts,
            allow_special_tokens=allow_special_tokens,
            batch_size=batch_size,
            model=model,
            variant=variant,
        )

        return score_request

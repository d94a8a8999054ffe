from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.diagnose_request_kinds_item import DiagnoseRequestKindsItem
from ..types import UNSET, Unset

T = TypeVar("T", bound="DiagnoseRequest")


@_attrs_define
class DiagnoseRequest:
    """Why does the model not answer `expected` after `prompt`, and what would fix it?

    Attributes:
        expected (str): The right continuation, e.g. `" Canberra"` (mind the leading space); its first token is the
            expected next token.
        prompt (str):
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        attribution_evaluations (int | Unset): Budget of the Integrated Gradients run (adaptive rule). Default: 128.
        kinds (list[DiagnoseRequestKindsItem] | Unset): Kinds traced; `mlp` is always included (it locates the edit).
        model (None | str | Unset): Model name; the default model when omitted.
        samples (int | Unset): Noise samples of the causal trace. Default: 5.
        subject (None | str | Unset): The text in `prompt` the fact is about (traced and edited); when omitted, the
            attributable token that drives the prediction most.
        top_k (int | Unset): Predictions listed. Default: 5.
        variant_name (None | str | Unset): Name of the variant the suggested edit creates.
        window (int | Unset): Blocks restored around each MLP/attention cell (clipped at the first and last block).
            Default: 10.
    """

    expected: str
    prompt: str
    allow_special_tokens: bool | Unset = False
    attribution_evaluations: int | Unset = 128
    kinds: list[DiagnoseRequestKindsItem] | Unset = UNSET
    model: None | str | Unset = UNSET
    samples: int | Unset = 5
    subject: None | str | Unset = UNSET
    top_k: int | Unset = 5
    variant_name: None | str | Unset = UNSET
    window: int | Unset = 10

    def to_dict(self) -> dict[str, Any]:
        expected = self.expected

        prompt = self.prompt

        allow_special_tokens = self.allow_special_tokens

        attribution_evaluations = self.attribution_evaluations

        kinds: list[str] | Unset = UNSET
        if not isinstance(self.kinds, Unset):
            kinds = []
            for kinds_item_data in self.kinds:
                kinds_item = kinds_item_data.value
                kinds.append(kinds_item)

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        samples = self.samples

        subject: None | str | Unset
        if isinstance(self.subject, Unset):
            subject = UNSET
        else:
            subject = self.subject

        top_k = self.top_k

        variant_name: None | str | Unset
        if isinstance(self.variant_name, Unset):
            variant_name = UNSET
        else:
            variant_name = self.variant_name

        window = self.window

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "expected": expected,
                "prompt": prompt,
            }
        )
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if attribution_evaluations is not UNSET:
            field_dict["attribution_evaluations"] = attribution_evaluations
        if kinds is not UNSET:
            field_dict["kinds"] = kinds
        if model is not UNSET:
            field_dict["model"] = model
        if samples is not UNSET:
            field_dict["samples"] = samples
        if subject is not UNSET:
            field_dict["subject"] = subject
        if top_k is not UNSET:
            field_dict["top_k"] = top_k
        if variant_name is not UNSET:
            field_dict["variant_name"] = variant_name
        if window is not UNSET:
            field_dict["window"] = window

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        expected = d.pop("expected")

        prompt = d.pop("prompt")

        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

        attribution_evaluations = d.pop("attribution_evaluations", UNSET)

        _kinds = d.pop("kinds", UNSET)
        kinds: list[DiagnoseRequestKindsItem] | Unset = UNSET
        if _kinds is not UNSET:
            kinds = []
            for kinds_item_data in _kinds:
                kinds_item = DiagnoseRequestKindsItem(kinds_item_data)

                kinds.append(kinds_item)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        samples = d.pop("samples", UNSET)

        def _parse_subject(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        subject = _parse_subject(d.pop("subject", UNSET))

        top_k = d.pop("top_k", UNSET)

        def _parse_variant_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant_name = _parse_variant_name(d.pop("variant_name", UNSET))

        window = d.pop("window", UNSET)

        diagnose_request = cls(
            expected=expected,
            prompt=prompt,
            allow_special_tokens=allow_special_tokens,
            attribution_evaluations=attribution_evaluations,
            kinds=kinds,
            model=model,
            samples=samples,
            subject=subject,
            top_k=top_k,
            variant_name=variant_name,
            window=window,
        )

        return diagnose_request

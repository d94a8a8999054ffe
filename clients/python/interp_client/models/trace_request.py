from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.trace_request_direction import TraceRequestDirection
from ..models.trace_request_kinds_item import TraceRequestKindsItem
from ..models.trace_request_method import TraceRequestMethod
from ..types import UNSET, Unset

T = TypeVar("T", bound="TraceRequest")


@_attrs_define
class TraceRequest:
    """Which internal activations carry the answer? Restore them one (layer, token) at a time.

    Attributes:
        prompt (str): The clean prompt.
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        answer (int | None | str | Unset): The token whose probability is measured (id, or text encoding to one token);
            the clean prompt's top prediction when omitted.
        corrupted_prompt (None | str | Unset): activation_patching: a prompt with as many tokens as `prompt` (positions
            correspond).
        direction (TraceRequestDirection | Unset): activation_patching: write clean activations into the corrupted run
            (`denoising`), or corrupted ones into the clean run (`noising`). Default: TraceRequestDirection.DENOISING.
        kinds (list[TraceRequestKindsItem] | Unset): What is restored: the residual stream after a block, or the MLP or
            attention output over a window of blocks.
        layers (list[int] | None | Unset): Grid rows (blocks); all when omitted.
        method (TraceRequestMethod | Unset): `causal_trace`: corrupt the subject with embedding noise (Meng et al.
            2022). `activation_patching`: corrupt by running `corrupted_prompt` instead. Default:
            TraceRequestMethod.CAUSAL_TRACE.
        model (None | str | Unset): Model name; the default model when omitted.
        noise_multiplier (float | Unset): causal_trace: noise standard deviation as a multiple of the token embeddings'
            standard deviation. Default: 3.0.
        noise_scale (float | None | Unset): causal_trace: the noise standard deviation itself (overrides
            `noise_multiplier`). At most 1000: embedding entries are of order 0.01 to 1, so noise a thousand times larger
            already drowns any of them; larger only risks overflow in half precision.
        samples (int | Unset): causal_trace: noise samples (corrupted runs) per cell. Default: 10.
        seed (int | Unset): causal_trace: seeds the noise (0 to 2**32 - 1). Default: 0.
        subject (None | str | Unset): causal_trace: the text in `prompt` whose tokens are corrupted (its first
            occurrence).
        tokens (list[int] | None | Unset): Grid columns (token positions, negative from the end); all when omitted.
        window (int | Unset): Blocks restored around each MLP/attention cell (clipped at the first and last block).
            Default: 10.
    """

    prompt: str
    allow_special_tokens: bool | Unset = False
    answer: int | None | str | Unset = UNSET
    corrupted_prompt: None | str | Unset = UNSET
    direction: TraceRequestDirection | Unset = TraceRequestDirection.DENOISING
    kinds: list[TraceRequestKindsItem] | Unset = UNSET
    layers: list[int] | None | Unset = UNSET
    method: TraceRequestMethod | Unset = TraceRequestMethod.CAUSAL_TRACE
    model: None | str | Unset = UNSET
    noise_multiplier: float | Unset = 3.0
    noise_scale: float | None | Unset = UNSET
    samples: int | Unset = 10
    seed: int | Unset = 0
    subject: None | str | Unset = UNSET
    tokens: list[int] | None | Unset = UNSET
    window: int | Unset = 10

    def to_dict(self) -> dict[str, Any]:
        prompt = self.prompt

        allow_special_tokens = self.allow_special_tokens

        answer: int | None | str | Unset
        if isinstance(self.answer, Unset):
            answer = UNSET
        else:
            answer = self.answer

        corrupted_prompt: None | str | Unset
        if isinstance(self.corrupted_prompt, Unset):
            corrupted_prompt = UNSET
        else:
            corrupted_prompt = self.corrupted_prompt

        direction: str | Unset = UNSET
        if not isinstance(self.direction, Unset):
            direction = self.direction.value

        kinds: list[str] | Unset = UNSET
        if not isinstance(self.kinds, Unset):
            kinds = []
            for kinds_item_data in self.kinds:
                kinds_item = kinds_item_data.value
                kinds.append(kinds_item)

        layers: list[int] | None | Unset
        if isinstance(self.layers, Unset):
            layers = UNSET
        elif isinstance(self.layers, list):
            layers = self.layers

        else:
            layers = self.layers

        method: str | Unset = UNSET
        if not isinstance(self.method, Unset):
            method = self.method.value

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        noise_multiplier = self.noise_multiplier

        noise_scale: float | None | Unset
        if isinstance(self.noise_scale, Unset):
            noise_scale = UNSET
        else:
            noise_scale = self.noise_scale

        samples = self.samples

        seed = self.seed

        subject: None | str | Unset
        if isinstance(self.subject, Unset):
            subject = UNSET
        else:
            subject = self.subject

        tokens: list[int] | None | Unset
        if isinstance(self.tokens, Unset):
            tokens = UNSET
        elif isinstance(self.tokens, list):
            tokens = self.tokens

        else:
            tokens = self.tokens

        window = self.window

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "prompt": prompt,
            }
        )
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if answer is not UNSET:
            field_dict["answer"] = answer
        if corrupted_prompt is not UNSET:
            field_dict["corrupted_prompt"] = corrupted_prompt
        if direction is not UNSET:
            field_dict["direction"] = direction
        if kinds is not UNSET:
            field_dict["kinds"] = kinds
        if layers is not UNSET:
            field_dict["layers"] = layers
        if method is not UNSET:
            field_dict["method"] = method
        if model is not UNSET:
            field_dict["model"] = model
        if noise_multiplier is not UNSET:
            field_dict["noise_multiplier"] = noise_multiplier
        if noise_scale is not UNSET:
            field_dict["noise_scale"] = noise_scale
        if samples is not UNSET:
            field_dict["samples"] = samples
        if seed is not UNSET:
            field_dict["seed"] = seed
        if subject is not UNSET:
            field_dict["subject"] = subject
        if tokens is not UNSET:
            field_dict["tokens"] = tokens
        if window is not UNSET:
            field_dict["window"] = window

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        prompt = d.pop("prompt")

        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

        def _parse_answer(data: object) -> int | None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | str | Unset, data)

        answer = _parse_answer(d.pop("answer", UNSET))

        def _parse_corrupted_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        corrupted_prompt = _parse_corrupted_prompt(d.pop("corrupted_prompt", UNSET))

        _direction = d.pop("direction", UNSET)
        direction: TraceRequestDirection | Unset
        if isinstance(_direction, Unset):
            direction = UNSET
        else:
            direction = TraceRequestDirection(_direction)

        _kinds = d.pop("kinds", UNSET)
        kinds: list[TraceRequestKindsItem] | Unset = UNSET
        if _kinds is not UNSET:
            kinds = []
            for kinds_item_data in _kinds:
                kinds_item = TraceRequestKindsItem(kinds_item_data)

                kinds.append(kinds_item)

        def _parse_layers(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                layers_type_0 = cast(list[int], data)

                return layers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        layers = _parse_layers(d.pop("layers", UNSET))

        _method = d.pop("method", UNSET)
        method: TraceRequestMethod | Unset
        if isinstance(_method, Unset):
            method = UNSET
        else:
            method = TraceRequestMethod(_method)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        noise_multiplier = d.pop("noise_multiplier", UNSET)

        def _parse_noise_scale(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        noise_scale = _parse_noise_scale(d.pop("noise_scale", UNSET))

        samples = d.pop("samples", UNSET)

        seed = d.pop("seed", UNSET)

        def _parse_subject(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        subject = _parse_subject(d.pop("subject", UNSET))

        def _parse_tokens(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                tokens_type_0 = cast(list[int], data)

                return tokens_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        tokens = _parse_tokens(d.pop("tokens", UNSET))

        window = d.pop("window", UNSET)

        trace_request = cls(
            prompt=prompt,
            allow_special_tokens=allow_special_tokens,
            answer=answer,
            corrupted_prompt=corrupted_prompt,
            direction=direction,
            kinds=kinds,
            layers=layers,
            method=method,
            model=model,
            noise_multiplier=noise_multiplier,
            noise_scale=noise_scale,
            samples=samples,
            seed=seed,
            subject=subject,
            tokens=tokens,
            window=window,
        )

        return trace_request

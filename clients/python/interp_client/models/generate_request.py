from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.chat_message import ChatMessage
    from ..models.steering_spec import SteeringSpec


T = TypeVar("T", bound="GenerateRequest")


@_attrs_define
class GenerateRequest:
    """Generate a continuation of a prompt, or a reply to chat messages.

    Attributes:
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        compare (bool | Unset): Also return the unsteered continuation (same call, same sampling parameters and seed).
            Default: False.
        max_new_tokens (int | Unset):  Default: 32.
        messages (list[ChatMessage] | None | Unset): Chat messages; the model's chat template is applied.
        model (None | str | Unset): Model name; the default model when omitted.
        prompt (None | str | Unset): Raw text to continue.
        seed (int | None | Unset): Makes sampling reproducible (0 to 2**32 - 1).
        steering (list[SteeringSpec] | Unset): Control vectors to add while generating.
        stream (bool | Unset): Stream tokens as server-sent events (`token`, then `done` with the full response).
            Default: False.
        temperature (float | Unset): 0 is greedy; at 10 sampling is already close to uniform. Default: 0.0.
        top_p (float | Unset):  Default: 1.0.
        variant (None | str | Unset): Run on this model variant (`name` or `name@version`, see
            `/models/{model}/variants`); the base model when omitted. Steering and `compare` act on the variant.
    """

    allow_special_tokens: bool | Unset = False
    compare: bool | Unset = False
    max_new_tokens: int | Unset = 32
    messages: list[ChatMessage] | None | Unset = UNSET
    model: None | str | Unset = UNSET
    prompt: None | str | Unset = UNSET
    seed: int | None | Unset = UNSET
    steering: list[SteeringSpec] | Unset = UNSET
    stream: bool | Unset = False
    temperature: float | Unset = 0.0
    top_p: float | Unset = 1.0
    variant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        allow_special_tokens = self.allow_special_tokens

        compare = self.compare

        max_new_tokens = self.max_new_tokens

        messages: list[dict[str, Any]] | None | Unset
        if isinstance(self.messages, Unset):
            messages = UNSET
        elif isinstance(self.messages, list):
            messages = []
            for messages_type_0_item_data in self.messages:
                messages_type_0_item = messages_type_0_item_data.to_dict()
                messages.append(messages_type_0_item)

        else:
            messages = self.messages

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        prompt: None | str | Unset
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        steering: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.steering, Unset):
            steering = []
            for steering_item_data in self.steering:
                steering_item = steering_item_data.to_dict()
                steering.append(steering_item)

        stream = self.stream

        temperature = self.temperature

        top_p = self.top_p

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if compare is not UNSET:
            field_dict["compare"] = compare
        if max_new_tokens is not UNSET:
            field_dict["max_new_tokens"] = max_new_tokens
        if messages is not UNSET:
            field_dict["messages"] = messages
        if model is not UNSET:
            field_dict["model"] = model
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if seed is not UNSET:
            field_dict["seed"] = seed
        if steering is not UNSET:
            field_dict["steering"] = steering
        if stream is not UNSET:
            field_dict["stream"] = stream
        if temperature is not UNSET:
            field_dict["temperature"] = temperature
        if top_p is not UNSET:
            field_dict["top_p"] = top_p
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chat_message import ChatMessage  # noqa: PLC0415
        from ..models.steering_spec import SteeringSpec  # noqa: PLC0415

        d = dict(src_dict)
        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

        compare = d.pop("compare", UNSET)

        max_new_tokens = d.pop("max_new_tokens", UNSET)

        def _parse_messages(data: object) -> list[ChatMessage] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                messages_type_0 = []
                _messages_type_0 = data
                for messages_type_0_item_data in _messages_type_0:
                    messages_type_0_item = ChatMessage.from_dict(messages_type_0_item_data)

                    messages_type_0.append(messages_type_0_item)

                return messages_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ChatMessage] | None | Unset, data)

        messages = _parse_messages(d.pop("messages", UNSET))

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        def _parse_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        _steering = d.pop("steering", UNSET)
        steering: list[SteeringSpec] | Unset = UNSET
        if _steering is not UNSET:
            steering = []
            for steering_item_data in _steering:
                steering_item = SteeringSpec.from_dict(steering_item_data)

                steering.append(steering_item)

        stream = d.pop("stream", UNSET)

        temperature = d.pop("temperature", UNSET)

        top_p = d.pop("top_p", UNSET)

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        generate_request = cls(
            allow_special_tokens=allow_special_tokens,
            compare=compare,
            max_new_tokens=max_new_tokens,
            messages=messages,
            model=model,
            prompt=prompt,
            seed=seed,
            steering=steering,
            stream=stream,
            temperature=temperature,
            top_p=top_p,
            variant=variant,
        )

        return generate_request

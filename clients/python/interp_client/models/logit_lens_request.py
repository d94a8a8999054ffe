from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.chat_message import ChatMessage


T = TypeVar("T", bound="LogitLensRequest")


@_attrs_define
class LogitLensRequest:
    """What would the model predict if it stopped after each block?

    Attributes:
        allow_special_tokens (bool | Unset): Read special-token text (`<|endoftext|>`) in prompts, messages and texts as
            control tokens; by default it is plain text (the chat template's own tokens are special either way). Default:
            False.
        messages (list[ChatMessage] | None | Unset): Chat messages, rendered with the chat template.
        model (None | str | Unset): Model name; the default model when omitted.
        positions (list[int] | Literal['all'] | Unset): Token positions to read (negative counts from the end), or
            `all`. Default: the last token, whose lens is the next-token prediction.
        prompt (None | str | Unset):
        targets (list[int | str] | Unset): Tokens to track (ids, or texts that encode to one token, e.g. `" Paris"`):
            probability and rank everywhere.
        top_k (int | Unset): Most probable tokens reported per layer and position. Default: 5.
        variant (None | str | Unset): Read a stored variant of the model: `name` or `name@version`.
    """

    allow_special_tokens: bool | Unset = False
    messages: list[ChatMessage] | None | Unset = UNSET
    model: None | str | Unset = UNSET
    positions: list[int] | Literal["all"] | Unset = UNSET
    prompt: None | str | Unset = UNSET
    targets: list[int | str] | Unset = UNSET
    top_k: int | Unset = 5
    variant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        allow_special_tokens = self.allow_special_tokens

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

        positions: list[int] | Literal["all"] | Unset
        if isinstance(self.positions, Unset):
            positions = UNSET
        elif isinstance(self.positions, list):
            positions = self.positions

        else:
            positions = self.positions

        prompt: None | str | Unset
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        targets: list[int | str] | Unset = UNSET
        if not isinstance(self.targets, Unset):
            targets = []
            for targets_item_data in self.targets:
                targets_item: int | str
                targets_item = targets_item_data
                targets.append(targets_item)

        top_k = self.top_k

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if allow_special_tokens is not UNSET:
            field_dict["allow_special_tokens"] = allow_special_tokens
        if messages is not UNSET:
            field_dict["messages"] = messages
        if model is not UNSET:
            field_dict["model"] = model
        if positions is not UNSET:
            field_dict["positions"] = positions
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if targets is not UNSET:
            field_dict["targets"] = targets
        if top_k is not UNSET:
            field_dict["top_k"] = top_k
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chat_message import ChatMessage  # noqa: PLC0415

        d = dict(src_dict)
        allow_special_tokens = d.pop("allow_special_tokens", UNSET)

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

        def _parse_positions(data: object) -> list[int] | Literal["all"] | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                positions_type_0 = cast(list[int], data)

                return positions_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            positions_type_1 = cast(Literal["all"], data)
            if positions_type_1 != "all":
                raise ValueError(f"positions_type_1 must match const 'all', got '{positions_type_1}'")
            return positions_type_1

        positions = _parse_positions(d.pop("positions", UNSET))

        def _parse_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        _targets = d.pop("targets", UNSET)
        targets: list[int | str] | Unset = UNSET
        if _targets is not UNSET:
            targets = []
            for targets_item_data in _targets:

                def _parse_targets_item(data: object) -> int | str:
                    return cast(int | str, data)

                targets_item = _parse_targets_item(targets_item_data)

                targets.append(targets_item)

        top_k = d.pop("top_k", UNSET)

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        logit_lens_request = cls(
            allow_special_tokens=allow_special_tokens,
            messages=messages,
            model=model,
            positions=positions,
            prompt=prompt,
            targets=targets,
            top_k=top_k,
            variant=variant,
        )

        return logit_lens_request

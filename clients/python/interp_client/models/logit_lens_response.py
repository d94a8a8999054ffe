from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.lens_layer import LensLayer
    from ..models.token_info import TokenInfo


T = TypeVar("T", bound="LogitLensResponse")


@_attrs_define
class LogitLensResponse:
    """
    Attributes:
        elapsed_seconds (float):
        layers (list[LensLayer]): First block first; the last equals the model's own output.
        model (str):
        positions (list[int]): Positions read (non-negative).
        targets (list[TokenInfo]): The tracked tokens.
        tokens (list[TokenInfo]): The prompt's tokens as the model saw them.
        variant (None | str): The variant read (`name@version`), or null for the base model.
    """

    elapsed_seconds: float
    layers: list[LensLayer]
    model: str
    positions: list[int]
    targets: list[TokenInfo]
    tokens: list[TokenInfo]
    variant: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        elapsed_seconds = self.elapsed_seconds

        layers = []
        for layers_item_data in self.layers:
            layers_item = layers_item_data.to_dict()
            layers.append(layers_item)

        model = self.model

        positions = self.positions

        targets = []
        for targets_item_data in self.targets:
            targets_item = targets_item_data.to_dict()
            targets.append(targets_item)

        tokens = []
        for tokens_item_data in self.tokens:
            tokens_item = tokens_item_data.to_dict()
            tokens.append(tokens_item)

        variant: None | str
        variant = self.variant

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "elapsed_seconds": elapsed_seconds,
                "layers": layers,
                "model": model,
                "positions": positions,
                "targets": targets,
                "tokens": tokens,
                "variant": variant,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.lens_layer import LensLayer  # noqa: PLC0415
        from ..models.token_info import TokenInfo  # noqa: PLC0415

        d = dict(src_dict)
        elapsed_seconds = d.pop("elapsed_seconds")

        layers = []
        _layers = d.pop("layers")
        for layers_item_data in _layers:
            layers_item = LensLayer.from_dict(layers_item_data)

            layers.append(layers_item)

        model = d.pop("model")

        positions = cast(list[int], d.pop("positions"))

        targets = []
        _targets = d.pop("targets")
        for targets_item_data in _targets:
            targets_item = TokenInfo.from_dict(targets_item_data)

            targets.append(targets_item)

        tokens = []
        _tokens = d.pop("tokens")
        for tokens_item_data in _tokens:
            tokens_item = TokenInfo.from_dict(tokens_item_data)

            tokens.append(tokens_item)

        def _parse_variant(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        variant = _parse_variant(d.pop("variant"))

        logit_lens_response = cls(
            elapsed_seconds=elapsed_seconds,
            layers=layers,
            model=model,
            positions=positions,
            targets=targets,
            tokens=tokens,
            variant=variant,
        )

        logit_lens_response.additional_properties = d
        return logit_lens_response

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

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.variant_info import VariantInfo


T = TypeVar("T", bound="ModelInfo")


@_attrs_define
class ModelInfo:
    """
    Attributes:
        architecture (str): Hugging Face `model_type`, e.g. `llama`, `gpt2`.
        device (str):
        dtype (str):
        hidden_size (int):
        n_layers (int):
        n_parameters (int):
        name (str):
        source (str):
        variants (list[VariantInfo]):
        vocab_size (int):
        workers (int): Live workers holding this model.
    """

    architecture: str
    device: str
    dtype: str
    hidden_size: int
    n_layers: int
    n_parameters: int
    name: str
    source: str
    variants: list[VariantInfo]
    vocab_size: int
    workers: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        architecture = self.architecture

        device = self.device

        dtype = self.dtype

        hidden_size = self.hidden_size

        n_layers = self.n_layers

        n_parameters = self.n_parameters

        name = self.name

        source = self.source

        variants = []
        for variants_item_data in self.variants:
            variants_item = variants_item_data.to_dict()
            variants.append(variants_item)

        vocab_size = self.vocab_size

        workers = self.workers

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "architecture": architecture,
                "device": device,
                "dtype": dtype,
                "hidden_size": hidden_size,
                "n_layers": n_layers,
                "n_parameters": n_parameters,
                "name": name,
                "source": source,
                "variants": variants,
                "vocab_size": vocab_size,
                "workers": workers,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.variant_info import VariantInfo  # noqa: PLC0415

        d = dict(src_dict)
        architecture = d.pop("architecture")

        device = d.pop("device")

        dtype = d.pop("dtype")

        hidden_size = d.pop("hidden_size")

        n_layers = d.pop("n_layers")

        n_parameters = d.pop("n_parameters")

        name = d.pop("name")

        source = d.pop("source")

        variants = []
        _variants = d.pop("variants")
        for variants_item_data in _variants:
            variants_item = VariantInfo.from_dict(variants_item_data)

            variants.append(variants_item)

        vocab_size = d.pop("vocab_size")

        workers = d.pop("workers")

        model_info = cls(
            architecture=architecture,
            device=device,
            dtype=dtype,
            hidden_size=hidden_size,
            n_layers=n_layers,
            n_parameters=n_parameters,
            name=name,
            source=source,
            variants=variants,
            vocab_size=vocab_size,
            workers=workers,
        )

        model_info.additional_properties = d
        return model_info

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

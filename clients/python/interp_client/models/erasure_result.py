from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.erasure_result_method import ErasureResultMethod
from ..models.erasure_result_reading import ErasureResultReading

if TYPE_CHECKING:
    from ..models.erasure_result_seconds import ErasureResultSeconds
    from ..models.layer_erasure import LayerErasure
    from ..models.variant_info import VariantInfo


T = TypeVar("T", bound="ErasureResult")


@_attrs_define
class ErasureResult:
    """
    Attributes:
        classes (list[int | str]): The labels, in class-index order.
        elapsed_seconds (float):
        fit_counts (list[int]): Fitting activations per class.
        kl_all_layers (float | None): Mean canary KL with every layer's eraser at once.
        layers (list[LayerErasure]):
        method (ErasureResultMethod):
        n_examples (int):
        n_fit_activations (int): Rows the fitter saw (examples, or tokens with `reading: all`).
        n_fit_examples (int):
        n_held_out_examples (int):
        n_probe_test (int):
        n_probe_train (int):
        reading (ErasureResultReading):
        seconds (ErasureResultSeconds): Wall time by stage.
        variant (VariantInfo): One stored variant version: the base model plus an ordered list of components.
    """

    classes: list[int | str]
    elapsed_seconds: float
    fit_counts: list[int]
    kl_all_layers: float | None
    layers: list[LayerErasure]
    method: ErasureResultMethod
    n_examples: int
    n_fit_activations: int
    n_fit_examples: int
    n_held_out_examples: int
    n_probe_test: int
    n_probe_train: int
    reading: ErasureResultReading
    seconds: ErasureResultSeconds
    variant: VariantInfo
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        classes = []
        for classes_item_data in self.classes:
            classes_item: int | str
            classes_item = classes_item_data
            classes.append(classes_item)

        elapsed_seconds = self.elapsed_seconds

        fit_counts = self.fit_counts

        kl_all_layers: float | None
        kl_all_layers = self.kl_all_layers

        layers = []
        for layers_item_data in self.layers:
            layers_item = layers_item_data.to_dict()
            layers.append(layers_item)

        method = self.method.value

        n_examples = self.n_examples

        n_fit_activations = self.n_fit_activations

        n_fit_examples = self.n_fit_examples

        n_held_out_examples = self.n_held_out_examples

        n_probe_test = self.n_probe_test

        n_probe_train = self.n_probe_train

        reading = self.reading.value

        seconds = self.seconds.to_dict()

        variant = self.variant.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "classes": classes,
                "elapsed_seconds": elapsed_seconds,
                "fit_counts": fit_counts,
                "kl_all_layers": kl_all_layers,
                "layers": layers,
                "method": method,
                "n_examples": n_examples,
                "n_fit_activations": n_fit_activations,
                "n_fit_examples": n_fit_examples,
                "n_held_out_examples": n_held_out_examples,
                "n_probe_test": n_probe_test,
                "n_probe_train": n_probe_train,
                "reading": reading,
                "seconds": seconds,
                "variant": variant,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.erasure_result_seconds import ErasureResultSeconds  # noqa: PLC0415
        from ..models.layer_erasure import LayerErasure  # noqa: PLC0415
        from ..models.variant_info import VariantInfo  # noqa: PLC0415

        d = dict(src_dict)
        classes = []
        _classes = d.pop("classes")
        for classes_item_data in _classes:

            def _parse_classes_item(data: object) -> int | str:
                return cast(int | str, data)

            classes_item = _parse_classes_item(classes_item_data)

            classes.append(classes_item)

        elapsed_seconds = d.pop("elapsed_seconds")

        fit_counts = cast(list[int], d.pop("fit_counts"))

        def _parse_kl_all_layers(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        kl_all_layers = _parse_kl_all_layers(d.pop("kl_all_layers"))

        layers = []
        _layers = d.pop("layers")
        for layers_item_data in _layers:
            layers_item = LayerErasure.from_dict(layers_item_data)

            layers.append(layers_item)

        method = ErasureResultMethod(d.pop("method"))

        n_examples = d.pop("n_examples")

        n_fit_activations = d.pop("n_fit_activations")

        n_fit_examples = d.pop("n_fit_examples")

        n_held_out_examples = d.pop("n_held_out_examples")

        n_probe_test = d.pop("n_probe_test")

        n_probe_train = d.pop("n_probe_train")

        reading = ErasureResultReading(d.pop("reading"))

        seconds = ErasureResultSeconds.from_dict(d.pop("seconds"))

        variant = VariantInfo.from_dict(d.pop("variant"))

        erasure_result = cls(
            classes=classes,
            elapsed_seconds=elapsed_seconds,
            fit_counts=fit_counts,
            kl_all_layers=kl_all_layers,
            layers=layers,
            method=method,
            n_examples=n_examples,
            n_fit_activations=n_fit_activations,
            n_fit_examples=n_fit_examples,
            n_held_out_examples=n_held_out_examples,
            n_probe_test=n_probe_test,
            n_probe_train=n_probe_train,
            reading=reading,
            seconds=seconds,
            variant=variant,
        )

        erasure_result.additional_properties = d
        return erasure_result

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

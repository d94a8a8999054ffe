from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="LayerErasure")


@_attrs_define
class LayerErasure:
    """
    Attributes:
        kl (float | None): Mean next-token KL (nats) on the canary prompts, this layer's eraser alone, against the model
            it started from.
        layer (int):
        majority_baseline (float | None): Held-out accuracy of always answering the most common class: where
            `probe_accuracy_after` should land.
        max_class_mean_gap_after (float): The same after erasure; 0 up to rounding.
        max_class_mean_gap_before (float): Largest difference of two classes' means (fitting data), over features.
        probe_accuracy_after (float | None): The same probe, retrained on erased activations.
        probe_accuracy_before (float | None): Held-out accuracy of a logistic-regression probe before erasure.
        rank (int): Rank of the edit (LEACE: at most classes - 1).
    """

    kl: float | None
    layer: int
    majority_baseline: float | None
    max_class_mean_gap_after: float
    max_class_mean_gap_before: float
    probe_accuracy_after: float | None
    probe_accuracy_before: float | None
    rank: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        kl: float | None
        kl = self.kl

        layer = self.layer

        majority_baseline: float | None
        majority_baseline = self.majority_baseline

        max_class_mean_gap_after = self.max_class_mean_gap_after

        max_class_mean_gap_before = self.max_class_mean_gap_before

        probe_accuracy_after: float | None
        probe_accuracy_after = self.probe_accuracy_after

        probe_accuracy_before: float | None
        probe_accuracy_before = self.probe_accuracy_before

        rank = self.rank

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "kl": kl,
                "layer": layer,
                "majority_baseline": majority_baseline,
                "max_class_mean_gap_after": max_class_mean_gap_after,
                "max_class_mean_gap_before": max_class_mean_gap_before,
                "probe_accuracy_after": probe_accuracy_after,
                "probe_accuracy_before": probe_accuracy_before,
                "rank": rank,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_kl(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        kl = _parse_kl(d.pop("kl"))

        layer = d.pop("layer")

        def _parse_majority_baseline(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        majority_baseline = _parse_majority_baseline(d.pop("majority_baseline"))

        max_class_mean_gap_after = d.pop("max_class_mean_gap_after")

        max_class_mean_gap_before = d.pop("max_class_mean_gap_before")

        def _parse_probe_accuracy_after(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        probe_accuracy_after = _parse_probe_accuracy_after(d.pop("probe_accuracy_after"))

        def _parse_probe_accuracy_before(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        probe_accuracy_before = _parse_probe_accuracy_before(d.pop("probe_accuracy_before"))

        rank = d.pop("rank")

        layer_erasure = cls(
            kl=kl,
            layer=layer,
            majority_baseline=majority_baseline,
            max_class_mean_gap_after=max_class_mean_gap_after,
            max_class_mean_gap_before=max_class_mean_gap_before,
            probe_accuracy_after=probe_accuracy_after,
            probe_accuracy_before=probe_accuracy_before,
            rank=rank,
        )

        layer_erasure.additional_properties = d
        return layer_erasure

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="TargetAttribution")


@_attrs_define
class TargetAttribution:
    """Figures of one explained target token.

    Attributes:
        attribution_change (float | None): IG adaptive: relative L2 change of this target's attributions in the last
            refinement (did they settle?).
        attribution_sum (float):
        base_value (float | None): SHAP: expected value (all tokens masked).
        completeness_error (float | None): IG: |sum - (F(input) - F(baseline))|.
        evaluations (int): Model evaluations spent on this target (shared ones counted for each).
        f_baseline (float | None): IG: objective at the baseline.
        f_input (float): Objective at the input.
        id (int):
        local_accuracy_error (float | None): SHAP: |base + sum - F(input)|.
        position (int): Index of the target among the explained tokens.
        probability (float): Model probability of the target at the input.
        relative_error (float | None): IG: completeness error / |F(input) - F(baseline)|.
        token (str):
    """

    attribution_change: float | None
    attribution_sum: float
    base_value: float | None
    completeness_error: float | None
    evaluations: int
    f_baseline: float | None
    f_input: float
    id: int
    local_accuracy_error: float | None
    position: int
    probability: float
    relative_error: float | None
    token: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attribution_change: float | None
        attribution_change = self.attribution_change

        attribution_sum = self.attribution_sum

        base_value: float | None
        base_value = self.base_value

        completeness_error: float | None
        completeness_error = self.completeness_error

        evaluations = self.evaluations

        f_baseline: float | None
        f_baseline = self.f_baseline

        f_input = self.f_input

        id = self.id

        local_accuracy_error: float | None
        local_accuracy_error = self.local_accuracy_error

        position = self.position

        probability = self.probability

        relative_error: float | None
        relative_error = self.relative_error

        token = self.token

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attribution_change": attribution_change,
                "attribution_sum": attribution_sum,
                "base_value": base_value,
                "completeness_error": completeness_error,
                "evaluations": evaluations,
                "f_baseline": f_baseline,
                "f_input": f_input,
                "id": id,
                "local_accuracy_error": local_accuracy_error,
                "position": position,
                "probability": probability,
                "relative_error": relative_error,
                "token": token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_attribution_change(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        attribution_change = _parse_attribution_change(d.pop("attribution_change"))

        attribution_sum = d.pop("attribution_sum")

        def _parse_base_value(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        base_value = _parse_base_value(d.pop("base_value"))

        def _parse_completeness_error(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        completeness_error = _parse_completeness_error(d.pop("completeness_error"))

        evaluations = d.pop("evaluations")

        def _parse_f_baseline(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        f_baseline = _parse_f_baseline(d.pop("f_baseline"))

        f_input = d.pop("f_input")

        id = d.pop("id")

        def _parse_local_accuracy_error(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        local_accuracy_error = _parse_local_accuracy_error(d.pop("local_accuracy_error"))

        position = d.pop("position")

        probability = d.pop("probability")

        def _parse_relative_error(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        relative_error = _parse_relative_error(d.pop("relative_error"))

        token = d.pop("token")

        target_attribution = cls(
            attribution_change=attribution_change,
            attribution_sum=attribution_sum,
            base_value=base_value,
            completeness_error=completeness_error,
            evaluations=evaluations,
            f_baseline=f_baseline,
            f_input=f_input,
            id=id,
            local_accuracy_error=local_accuracy_error,
            position=position,
            probability=probability,
            relative_error=relative_error,
            token=token,
        )

        target_attribution.additional_properties = d
        return target_attribution

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

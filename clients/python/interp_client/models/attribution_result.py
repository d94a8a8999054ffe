from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.attribution_result_aggregate import AttributionResultAggregate
from ..models.attribution_result_method import AttributionResultMethod
from ..models.attribution_result_objective import AttributionResultObjective
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.attributed_token import AttributedToken
    from ..models.target_attribution import TargetAttribution


T = TypeVar("T", bound="AttributionResult")


@_attrs_define
class AttributionResult:
    """
    Attributes:
        aggregate (AttributionResultAggregate):
        attributions (list[list[float]]): Signed matrix `[n_targets x n_inputs]`.
        elapsed_seconds (float):
        evaluations (int): Distinct model evaluations (alphas or masked inputs) in all.
        inputs (list[AttributedToken]):
        method (AttributionResultMethod):
        objective (AttributionResultObjective):
        targets (list[TargetAttribution]):
        baseline (None | str | Unset):
        precision (None | str | Unset): IG: dtype of the arithmetic used (`float32`, `bfloat16`, ...).
        rule (None | str | Unset):
        variant (None | str | Unset): The variant version explained (`name@version`).
    """

    aggregate: AttributionResultAggregate
    attributions: list[list[float]]
    elapsed_seconds: float
    evaluations: int
    inputs: list[AttributedToken]
    method: AttributionResultMethod
    objective: AttributionResultObjective
    targets: list[TargetAttribution]
    baseline: None | str | Unset = UNSET
    precision: None | str | Unset = UNSET
    rule: None | str | Unset = UNSET
    variant: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        aggregate = self.aggregate.value

        attributions = []
        for attributions_item_data in self.attributions:
            attributions_item = attributions_item_data

            attributions.append(attributions_item)

        elapsed_seconds = self.elapsed_seconds

        evaluations = self.evaluations

        inputs = []
        for inputs_item_data in self.inputs:
            inputs_item = inputs_item_data.to_dict()
            inputs.append(inputs_item)

        method = self.method.value

        objective = self.objective.value

        targets = []
        for targets_item_data in self.targets:
            targets_item = targets_item_data.to_dict()
            targets.append(targets_item)

        baseline: None | str | Unset
        if isinstance(self.baseline, Unset):
            baseline = UNSET
        else:
            baseline = self.baseline

        precision: None | str | Unset
        if isinstance(self.precision, Unset):
            precision = UNSET
        else:
            precision = self.precision

        rule: None | str | Unset
        if isinstance(self.rule, Unset):
            rule = UNSET
        else:
            rule = self.rule

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "aggregate": aggregate,
                "attributions": attributions,
                "elapsed_seconds": elapsed_seconds,
                "evaluations": evaluations,
                "inputs": inputs,
                "method": method,
                "objective": objective,
                "targets": targets,
            }
        )
        if baseline is not UNSET:
            field_dict["baseline"] = baseline
        if precision is not UNSET:
            field_dict["precision"] = precision
        if rule is not UNSET:
            field_dict["rule"] = rule
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.attributed_token import AttributedToken  # noqa: PLC0415
        from ..models.target_attribution import TargetAttribution  # noqa: PLC0415

        d = dict(src_dict)
        aggregate = AttributionResultAggregate(d.pop("aggregate"))

        attributions = []
        _attributions = d.pop("attributions")
        for attributions_item_data in _attributions:
            attributions_item = cast(list[float], attributions_item_data)

            attributions.append(attributions_item)

        elapsed_seconds = d.pop("elapsed_seconds")

        evaluations = d.pop("evaluations")

        inputs = []
        _inputs = d.pop("inputs")
        for inputs_item_data in _inputs:
            inputs_item = AttributedToken.from_dict(inputs_item_data)

            inputs.append(inputs_item)

        method = AttributionResultMethod(d.pop("method"))

        objective = AttributionResultObjective(d.pop("objective"))

        targets = []
        _targets = d.pop("targets")
        for targets_item_data in _targets:
            targets_item = TargetAttribution.from_dict(targets_item_data)

            targets.append(targets_item)

        def _parse_baseline(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        baseline = _parse_baseline(d.pop("baseline", UNSET))

        def _parse_precision(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        precision = _parse_precision(d.pop("precision", UNSET))

        def _parse_rule(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rule = _parse_rule(d.pop("rule", UNSET))

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        attribution_result = cls(
            aggregate=aggregate,
            attributions=attributions,
            elapsed_seconds=elapsed_seconds,
            evaluations=evaluations,
            inputs=inputs,
            method=method,
            objective=objective,
            targets=targets,
            baseline=baseline,
            precision=precision,
            rule=rule,
            variant=variant,
        )

        attribution_result.additional_properties = d
        return attribution_result

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

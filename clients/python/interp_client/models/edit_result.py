from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.edit_result_method import EditResultMethod

if TYPE_CHECKING:
    from ..models.edit_evaluation import EditEvaluation
    from ..models.edit_result_deltas_item import EditResultDeltasItem
    from ..models.edit_result_hyperparameters import EditResultHyperparameters
    from ..models.edit_result_seconds import EditResultSeconds
    from ..models.statistics_info import StatisticsInfo
    from ..models.variant_info import VariantInfo


T = TypeVar("T", bound="EditResult")


@_attrs_define
class EditResult:
    """
    Attributes:
        deltas (list[EditResultDeltasItem]): The stored components: module, rank, norm of B A.
        elapsed_seconds (float):
        evaluation (EditEvaluation | None): null when `evaluate` was false.
        hyperparameters (EditResultHyperparameters): Every hyperparameter used (defaults and overrides).
        layers (list[int]): Blocks whose MLP output projection was edited.
        method (EditResultMethod):
        seconds (EditResultSeconds): Wall time by stage.
        statistics (list[StatisticsInfo]):
        variant (VariantInfo): One stored variant version: the base model plus an ordered list of components.
    """

    deltas: list[EditResultDeltasItem]
    elapsed_seconds: float
    evaluation: EditEvaluation | None
    hyperparameters: EditResultHyperparameters
    layers: list[int]
    method: EditResultMethod
    seconds: EditResultSeconds
    statistics: list[StatisticsInfo]
    variant: VariantInfo
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.edit_evaluation import EditEvaluation  # noqa: PLC0415

        deltas = []
        for deltas_item_data in self.deltas:
            deltas_item = deltas_item_data.to_dict()
            deltas.append(deltas_item)

        elapsed_seconds = self.elapsed_seconds

        evaluation: dict[str, Any] | None
        if isinstance(self.evaluation, EditEvaluation):
            evaluation = self.evaluation.to_dict()
        else:
            evaluation = self.evaluation

        hyperparameters = self.hyperparameters.to_dict()

        layers = self.layers

        method = self.method.value

        seconds = self.seconds.to_dict()

        statistics = []
        for statistics_item_data in self.statistics:
            statistics_item = statistics_item_data.to_dict()
            statistics.append(statistics_item)

        variant = self.variant.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "deltas": deltas,
                "elapsed_seconds": elapsed_seconds,
                "evaluation": evaluation,
                "hyperparameters": hyperparameters,
                "layers": layers,
                "method": method,
                "seconds": seconds,
                "statistics": statistics,
                "variant": variant,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.edit_evaluation import EditEvaluation  # noqa: PLC0415
        from ..models.edit_result_deltas_item import EditResultDeltasItem  # noqa: PLC0415
        from ..models.edit_result_hyperparameters import EditResultHyperparameters  # noqa: PLC0415
        from ..models.edit_result_seconds import EditResultSeconds  # noqa: PLC0415
        from ..models.statistics_info import StatisticsInfo  # noqa: PLC0415
        from ..models.variant_info import VariantInfo  # noqa: PLC0415

        d = dict(src_dict)
        deltas = []
        _deltas = d.pop("deltas")
        for deltas_item_data in _deltas:
            deltas_item = EditResultDeltasItem.from_dict(deltas_item_data)

            deltas.append(deltas_item)

        elapsed_seconds = d.pop("elapsed_seconds")

        def _parse_evaluation(data: object) -> EditEvaluation | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                evaluation_type_0 = EditEvaluation.from_dict(data)

                return evaluation_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EditEvaluation | None, data)

        evaluation = _parse_evaluation(d.pop("evaluation"))

        hyperparameters = EditResultHyperparameters.from_dict(d.pop("hyperparameters"))

        layers = cast(list[int], d.pop("layers"))

        method = EditResultMethod(d.pop("method"))

        seconds = EditResultSeconds.from_dict(d.pop("seconds"))

        statistics = []
        _statistics = d.pop("statistics")
        for statistics_item_data in _statistics:
            statistics_item = StatisticsInfo.from_dict(statistics_item_data)

            statistics.append(statistics_item)

        variant = VariantInfo.from_dict(d.pop("variant"))

        edit_result = cls(
            deltas=deltas,
            elapsed_seconds=elapsed_seconds,
            evaluation=evaluation,
            hyperparameters=hyperparameters,
            layers=layers,
            method=method,
            seconds=seconds,
            statistics=statistics,
            variant=variant,
        )

        edit_result.additional_properties = d
        return edit_result

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

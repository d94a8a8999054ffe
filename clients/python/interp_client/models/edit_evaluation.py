from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.drift import Drift
    from ..models.fact_evaluation import FactEvaluation
    from ..models.fluency import Fluency
    from ..models.rate import Rate


T = TypeVar("T", bound="EditEvaluation")


@_attrs_define
class EditEvaluation:
    """The field's measures (CounterFact style): efficacy, paraphrase, neighbourhood, fluency, drift.

    Attributes:
        drift (Drift): KL(parent || variant) of next-token distributions over every token of the canary prompts (nats).
        efficacy (Rate): A success rate (per fact, averaged over facts), before and after, with its magnitude.
        fluency (Fluency): ROME's weighted bi/tri-gram entropy (bits) of text sampled from the edit prompts.
        n_requests (int):
        neighborhood (Rate): A success rate (per fact, averaged over facts), before and after, with its magnitude.
        paraphrase (Rate): A success rate (per fact, averaged over facts), before and after, with its magnitude.
        requests (list[FactEvaluation] | None | Unset): Per fact; omitted for large MEMIT jobs (over 50 facts) to keep
            the result small.
    """

    drift: Drift
    efficacy: Rate
    fluency: Fluency
    n_requests: int
    neighborhood: Rate
    paraphrase: Rate
    requests: list[FactEvaluation] | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        drift = self.drift.to_dict()

        efficacy = self.efficacy.to_dict()

        fluency = self.fluency.to_dict()

        n_requests = self.n_requests

        neighborhood = self.neighborhood.to_dict()

        paraphrase = self.paraphrase.to_dict()

        requests: list[dict[str, Any]] | None | Unset
        if isinstance(self.requests, Unset):
            requests = UNSET
        elif isinstance(self.requests, list):
            requests = []
            for requests_type_0_item_data in self.requests:
                requests_type_0_item = requests_type_0_item_data.to_dict()
                requests.append(requests_type_0_item)

        else:
            requests = self.requests

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "drift": drift,
                "efficacy": efficacy,
                "fluency": fluency,
                "n_requests": n_requests,
                "neighborhood": neighborhood,
                "paraphrase": paraphrase,
            }
        )
        if requests is not UNSET:
            field_dict["requests"] = requests

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.drift import Drift  # noqa: PLC0415
        from ..models.fact_evaluation import FactEvaluation  # noqa: PLC0415
        from ..models.fluency import Fluency  # noqa: PLC0415
        from ..models.rate import Rate  # noqa: PLC0415

        d = dict(src_dict)
        drift = Drift.from_dict(d.pop("drift"))

        efficacy = Rate.from_dict(d.pop("efficacy"))

        fluency = Fluency.from_dict(d.pop("fluency"))

        n_requests = d.pop("n_requests")

        neighborhood = Rate.from_dict(d.pop("neighborhood"))

        paraphrase = Rate.from_dict(d.pop("paraphrase"))

        def _parse_requests(data: object) -> list[FactEvaluation] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                requests_type_0 = []
                _requests_type_0 = data
                for requests_type_0_item_data in _requests_type_0:
                    requests_type_0_item = FactEvaluation.from_dict(requests_type_0_item_data)

                    requests_type_0.append(requests_type_0_item)

                return requests_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[FactEvaluation] | None | Unset, data)

        requests = _parse_requests(d.pop("requests", UNSET))

        edit_evaluation = cls(
            drift=drift,
            efficacy=efficacy,
            fluency=fluency,
            n_requests=n_requests,
            neighborhood=neighborhood,
            paraphrase=paraphrase,
            requests=requests,
        )

        edit_evaluation.additional_properties = d
        return edit_evaluation

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

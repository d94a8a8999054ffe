from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.edit_request_method import EditRequestMethod
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.edit_hyperparameters import EditHyperparameters
    from ..models.fact_edit import FactEdit


T = TypeVar("T", bound="EditRequest")


@_attrs_define
class EditRequest:
    """Write facts into the model's weights as a low-rank delta; the result is a new variant version.

    Attributes:
        name (str): The result is stored as the next version of this variant name.
        requests (list[FactEdit]): The facts to write.
        evaluate (bool | Unset): Compute the evaluation report (efficacy, paraphrases, neighbourhood, fluency, canary
            drift). Default: True.
        generation_tokens (int | Unset): Tokens generated per fact for the fluency measure (0: skip it). Default: 24.
        hyperparameters (EditHyperparameters | Unset): Overrides of the per-architecture defaults; omitted fields keep
            them (see the job's result).

            Every number is bounded where the method stops being able to use it, far beyond the published
            settings (Meng et al.: learning rate 0.5, weight decay 0.5 to 1e-3, KL factor 0.0625, clamp 0.75 to 4,
            stop loss 0.05, lambda 15,000 to 20,000), so that no value can overflow the optimisation into NaN
            weights: past each bound one term of the loss or the solve drowns every other.
        method (EditRequestMethod | Unset): `rome`: one rank-one update per fact, applied in order; `memit`: every fact
            in one batch update spread over several layers. Default: EditRequestMethod.ROME.
        model (None | str | Unset): Model name; the default model when omitted.
        variant (None | str | Unset): Parent variant (`name` or `name@version`): the edit is computed on it and keeps
            its components first. The base model when omitted.
    """

    name: str
    requests: list[FactEdit]
    evaluate: bool | Unset = True
    generation_tokens: int | Unset = 24
    hyperparameters: EditHyperparameters | Unset = UNSET
    method: EditRequestMethod | Unset = EditRequestMethod.ROME
    model: None | str | Unset = UNSET
    variant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        requests = []
        for requests_item_data in self.requests:
            requests_item = requests_item_data.to_dict()
            requests.append(requests_item)

        evaluate = self.evaluate

        generation_tokens = self.generation_tokens

        hyperparameters: dict[str, Any] | Unset = UNSET
        if not isinstance(self.hyperparameters, Unset):
            hyperparameters = self.hyperparameters.to_dict()

        method: str | Unset = UNSET
        if not isinstance(self.method, Unset):
            method = self.method.value

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "requests": requests,
            }
        )
        if evaluate is not UNSET:
            field_dict["evaluate"] = evaluate
        if generation_tokens is not UNSET:
            field_dict["generation_tokens"] = generation_tokens
        if hyperparameters is not UNSET:
            field_dict["hyperparameters"] = hyperparameters
        if method is not UNSET:
            field_dict["method"] = method
        if model is not UNSET:
            field_dict["model"] = model
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.edit_hyperparameters import EditHyperparameters  # noqa: PLC0415
        from ..models.fact_edit import FactEdit  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        requests = []
        _requests = d.pop("requests")
        for requests_item_data in _requests:
            requests_item = FactEdit.from_dict(requests_item_data)

            requests.append(requests_item)

        evaluate = d.pop("evaluate", UNSET)

        generation_tokens = d.pop("generation_tokens", UNSET)

        _hyperparameters = d.pop("hyperparameters", UNSET)
        hyperparameters: EditHyperparameters | Unset
        if isinstance(_hyperparameters, Unset):
            hyperparameters = UNSET
        else:
            hyperparameters = EditHyperparameters.from_dict(_hyperparameters)

        _method = d.pop("method", UNSET)
        method: EditRequestMethod | Unset
        if isinstance(_method, Unset):
            method = UNSET
        else:
            method = EditRequestMethod(_method)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        edit_request = cls(
            name=name,
            requests=requests,
            evaluate=evaluate,
            generation_tokens=generation_tokens,
            hyperparameters=hyperparameters,
            method=method,
            model=model,
            variant=variant,
        )

        return edit_request

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.erase_request_method import EraseRequestMethod
from ..models.erase_request_reading import EraseRequestReading
from ..models.erase_request_statistics_dtype import EraseRequestStatisticsDtype
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.labelled_text import LabelledText


T = TypeVar("T", bound="EraseRequest")


@_attrs_define
class EraseRequest:
    """Erase a concept (binary or k classes) so that no linear classifier can recover it.

    Attributes:
        examples (list[LabelledText]): Labelled texts, at least two classes. k-class labels are one-hot encoded for the
            fitter.
        layers (list[int] | Literal['all']): Blocks whose output (the residual stream) is erased, 0-based, or `all`.
        name (str): The result is stored as the next version of this variant name.
        batch_size (int | None | Unset): Texts per forward pass.
        canaries (list[str] | None | Unset): Prompts for the drift measure (mean next-token KL); a fixed built-in set
            when omitted, none when empty.
        constrain_cov_trace (bool | Unset): The fitter's safety net: should erasure ever increase the activations' total
            variance, blend toward the orthogonal projection. Default: True.
        held_out (float | Unset): Fraction of each class held out of fitting to test the probes on (0: no probe report).
            Default: 0.2.
        method (EraseRequestMethod | Unset): `leace`: least-squares optimal oblique projection; `orth`: orthogonal
            projection. Default: EraseRequestMethod.LEACE.
        model (None | str | Unset): Model name; the default model when omitted.
        reading (EraseRequestReading | Unset): Activations fitted on: the last token, the mean over tokens, or every
            token. The served eraser applies at every position either way. Default: EraseRequestReading.LAST.
        seed (int | Unset): Seeds the held-out split and the probe samples (0 to 2**32 - 1). Default: 0.
        shrinkage (bool | Unset): Shrink the covariance estimate (few examples, many dimensions). Default: True.
        statistics_dtype (EraseRequestStatisticsDtype | Unset): Precision of the fitter's statistics, whatever the
            model's dtype. Default: EraseRequestStatisticsDtype.FLOAT64.
        svd_tol (float | Unset): Directions of the whitened cross-covariance with singular value under this are left
            alone. Default: 0.01.
        variant (None | str | Unset): Start from this variant (`name` or `name@version`): activations are read from it
            and the result keeps its components first. The base model when omitted.
    """

    examples: list[LabelledText]
    layers: list[int] | Literal["all"]
    name: str
    batch_size: int | None | Unset = UNSET
    canaries: list[str] | None | Unset = UNSET
    constrain_cov_trace: bool | Unset = True
    held_out: float | Unset = 0.2
    method: EraseRequestMethod | Unset = EraseRequestMethod.LEACE
    model: None | str | Unset = UNSET
    reading: EraseRequestReading | Unset = EraseRequestReading.LAST
    seed: int | Unset = 0
    shrinkage: bool | Unset = True
    statistics_dtype: EraseRequestStatisticsDtype | Unset = EraseRequestStatisticsDtype.FLOAT64
    svd_tol: float | Unset = 0.01
    variant: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        examples = []
        for examples_item_data in self.examples:
            examples_item = examples_item_data.to_dict()
            examples.append(examples_item)

        layers: list[int] | Literal["all"]
        if isinstance(self.layers, list):
            layers = self.layers

        else:
            layers = self.layers

        name = self.name

        batch_size: int | None | Unset
        if isinstance(self.batch_size, Unset):
            batch_size = UNSET
        else:
            batch_size = self.batch_size

        canaries: list[str] | None | Unset
        if isinstance(self.canaries, Unset):
            canaries = UNSET
        elif isinstance(self.canaries, list):
            canaries = self.canaries

        else:
            canaries = self.canaries

        constrain_cov_trace = self.constrain_cov_trace

        held_out = self.held_out

        method: str | Unset = UNSET
        if not isinstance(self.method, Unset):
            method = self.method.value

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        reading: str | Unset = UNSET
        if not isinstance(self.reading, Unset):
            reading = self.reading.value

        seed = self.seed

        shrinkage = self.shrinkage

        statistics_dtype: str | Unset = UNSET
        if not isinstance(self.statistics_dtype, Unset):
            statistics_dtype = self.statistics_dtype.value

        svd_tol = self.svd_tol

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "examples": examples,
                "layers": layers,
                "name": name,
            }
        )
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if canaries is not UNSET:
            field_dict["canaries"] = canaries
        if constrain_cov_trace is not UNSET:
            field_dict["constrain_cov_trace"] = constrain_cov_trace
        if held_out is not UNSET:
            field_dict["held_out"] = held_out
        if method is not UNSET:
            field_dict["method"] = method
        if model is not UNSET:
            field_dict["model"] = model
        if reading is not UNSET:
            field_dict["reading"] = reading
        if seed is not UNSET:
            field_dict["seed"] = seed
        if shrinkage is not UNSET:
            field_dict["shrinkage"] = shrinkage
        if statistics_dtype is not UNSET:
            field_dict["statistics_dtype"] = statistics_dtype
        if svd_tol is not UNSET:
            field_dict["svd_tol"] = svd_tol
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.labelled_text import LabelledText  # noqa: PLC0415

        d = dict(src_dict)
        examples = []
        _examples = d.pop("examples")
        for examples_item_data in _examples:
            examples_item = LabelledText.from_dict(examples_item_data)

            examples.append(examples_item)

        def _parse_layers(data: object) -> list[int] | Literal["all"]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                layers_type_0 = cast(list[int], data)

                return layers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            layers_type_1 = cast(Literal["all"], data)
            if layers_type_1 != "all":
                raise ValueError(f"layers_type_1 must match const 'all', got '{layers_type_1}'")
            return layers_type_1

        layers = _parse_layers(d.pop("layers"))

        name = d.pop("name")

        def _parse_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        batch_size = _parse_batch_size(d.pop("batch_size", UNSET))

        def _parse_canaries(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                canaries_type_0 = cast(list[str], data)

                return canaries_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        canaries = _parse_canaries(d.pop("canaries", UNSET))

        constrain_cov_trace = d.pop("constrain_cov_trace", UNSET)

        held_out = d.pop("held_out", UNSET)

        _method = d.pop("method", UNSET)
        method: EraseRequestMethod | Unset
        if isinstance(_method, Unset):
            method = UNSET
        else:
            method = EraseRequestMethod(_method)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        _reading = d.pop("reading", UNSET)
        reading: EraseRequestReading | Unset
        if isinstance(_reading, Unset):
            reading = UNSET
        else:
            reading = EraseRequestReading(_reading)

        seed = d.pop("seed", UNSET)

        shrinkage = d.pop("shrinkage", UNSET)

        _statistics_dtype = d.pop("statistics_dtype", UNSET)
        statistics_dtype: EraseRequestStatisticsDtype | Unset
        if isinstance(_statistics_dtype, Unset):
            statistics_dtype = UNSET
        else:
            statistics_dtype = EraseRequestStatisticsDtype(_statistics_dtype)

        svd_tol = d.pop("svd_tol", UNSET)

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        erase_request = cls(
            examples=examples,
            layers=layers,
            name=name,
            batch_size=batch_size,
            canaries=canaries,
            constrain_cov_trace=constrain_cov_trace,
            held_out=held_out,
            method=method,
            model=model,
            reading=reading,
            seed=seed,
            shrinkage=shrinkage,
            statistics_dtype=statistics_dtype,
            svd_tol=svd_tol,
            variant=variant,
        )

        return erase_request

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.trace_result_direction_type_0 import TraceResultDirectionType0
from ..models.trace_result_method import TraceResultMethod
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.subject_span import SubjectSpan
    from ..models.token_info import TokenInfo
    from ..models.trace_grid_view import TraceGridView


T = TypeVar("T", bound="TraceResult")


@_attrs_define
class TraceResult:
    """
    Attributes:
        answer (TokenInfo):
        elapsed_seconds (float):
        evaluations (int): Restored runs computed (cells x samples, no-ops excluded).
        first_difference (int): Restorations before this token change nothing (identical inputs).
        grids (list[TraceGridView]):
        layers (list[int]):
        method (TraceResultMethod):
        p_clean (float): The answer's probability in the run restored from.
        p_corrupted (float): Its mean probability in the run restored into.
        p_corrupted_samples (list[float]):
        positions (list[int]):
        samples (int):
        tokens (list[TokenInfo]): The clean prompt's tokens.
        corrupted_tokens (list[TokenInfo] | None | Unset): activation_patching: the corrupted prompt's tokens.
        direction (None | TraceResultDirectionType0 | Unset):
        noise_scale (float | None | Unset):
        seed (int | None | Unset):
        subject (None | SubjectSpan | Unset):
    """

    answer: TokenInfo
    elapsed_seconds: float
    evaluations: int
    first_difference: int
    grids: list[TraceGridView]
    layers: list[int]
    method: TraceResultMethod
    p_clean: float
    p_corrupted: float
    p_corrupted_samples: list[float]
    positions: list[int]
    samples: int
    tokens: list[TokenInfo]
    corrupted_tokens: list[TokenInfo] | None | Unset = UNSET
    direction: None | TraceResultDirectionType0 | Unset = UNSET
    noise_scale: float | None | Unset = UNSET
    seed: int | None | Unset = UNSET
    subject: None | SubjectSpan | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.subject_span import SubjectSpan  # noqa: PLC0415

        answer = self.answer.to_dict()

        elapsed_seconds = self.elapsed_seconds

        evaluations = self.evaluations

        first_difference = self.first_difference

        grids = []
        for grids_item_data in self.grids:
            grids_item = grids_item_data.to_dict()
            grids.append(grids_item)

        layers = self.layers

        method = self.method.value

        p_clean = self.p_clean

        p_corrupted = self.p_corrupted

        p_corrupted_samples = self.p_corrupted_samples

        positions = self.positions

        samples = self.samples

        tokens = []
        for tokens_item_data in self.tokens:
            tokens_item = tokens_item_data.to_dict()
            tokens.append(tokens_item)

        corrupted_tokens: list[dict[str, Any]] | None | Unset
        if isinstance(self.corrupted_tokens, Unset):
            corrupted_tokens = UNSET
        elif isinstance(self.corrupted_tokens, list):
            corrupted_tokens = []
            for corrupted_tokens_type_0_item_data in self.corrupted_tokens:
                corrupted_tokens_type_0_item = corrupted_tokens_type_0_item_data.to_dict()
                corrupted_tokens.append(corrupted_tokens_type_0_item)

        else:
            corrupted_tokens = self.corrupted_tokens

        direction: None | str | Unset
        if isinstance(self.direction, Unset):
            direction = UNSET
        elif isinstance(self.direction, TraceResultDirectionType0):
            direction = self.direction.value
        else:
            direction = self.direction

        noise_scale: float | None | Unset
        if isinstance(self.noise_scale, Unset):
            noise_scale = UNSET
        else:
            noise_scale = self.noise_scale

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        subject: dict[str, Any] | None | Unset
        if isinstance(self.subject, Unset):
            subject = UNSET
        elif isinstance(self.subject, SubjectSpan):
            subject = self.subject.to_dict()
        else:
            subject = self.subject

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "answer": answer,
                "elapsed_seconds": elapsed_seconds,
                "evaluations": evaluations,
                "first_difference": first_difference,
                "grids": grids,
                "layers": layers,
                "method": method,
                "p_clean": p_clean,
                "p_corrupted": p_corrupted,
                "p_corrupted_samples": p_corrupted_samples,
                "positions": positions,
                "samples": samples,
                "tokens": tokens,
            }
        )
        if corrupted_tokens is not UNSET:
            field_dict["corrupted_tokens"] = corrupted_tokens
        if direction is not UNSET:
            field_dict["direction"] = direction
        if noise_scale is not UNSET:
            field_dict["noise_scale"] = noise_scale
        if seed is not UNSET:
            field_dict["seed"] = seed
        if subject is not UNSET:
            field_dict["subject"] = subject

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.subject_span import SubjectSpan  # noqa: PLC0415
        from ..models.token_info import TokenInfo  # noqa: PLC0415
        from ..models.trace_grid_view import TraceGridView  # noqa: PLC0415

        d = dict(src_dict)
        answer = TokenInfo.from_dict(d.pop("answer"))

        elapsed_seconds = d.pop("elapsed_seconds")

        evaluations = d.pop("evaluations")

        first_difference = d.pop("first_difference")

        grids = []
        _grids = d.pop("grids")
        for grids_item_data in _grids:
            grids_item = TraceGridView.from_dict(grids_item_data)

            grids.append(grids_item)

        layers = cast(list[int], d.pop("layers"))

        method = TraceResultMethod(d.pop("method"))

        p_clean = d.pop("p_clean")

        p_corrupted = d.pop("p_corrupted")

        p_corrupted_samples = cast(list[float], d.pop("p_corrupted_samples"))

        positions = cast(list[int], d.pop("positions"))

        samples = d.pop("samples")

        tokens = []
        _tokens = d.pop("tokens")
        for tokens_item_data in _tokens:
            tokens_item = TokenInfo.from_dict(tokens_item_data)

            tokens.append(tokens_item)

        def _parse_corrupted_tokens(data: object) -> list[TokenInfo] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                corrupted_tokens_type_0 = []
                _corrupted_tokens_type_0 = data
                for corrupted_tokens_type_0_item_data in _corrupted_tokens_type_0:
                    corrupted_tokens_type_0_item = TokenInfo.from_dict(corrupted_tokens_type_0_item_data)

                    corrupted_tokens_type_0.append(corrupted_tokens_type_0_item)

                return corrupted_tokens_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[TokenInfo] | None | Unset, data)

        corrupted_tokens = _parse_corrupted_tokens(d.pop("corrupted_tokens", UNSET))

        def _parse_direction(data: object) -> None | TraceResultDirectionType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                direction_type_0 = TraceResultDirectionType0(data)

                return direction_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TraceResultDirectionType0 | Unset, data)

        direction = _parse_direction(d.pop("direction", UNSET))

        def _parse_noise_scale(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        noise_scale = _parse_noise_scale(d.pop("noise_scale", UNSET))

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        def _parse_subject(data: object) -> None | SubjectSpan | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                subject_type_0 = SubjectSpan.from_dict(data)

                return subject_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubjectSpan | Unset, data)

        subject = _parse_subject(d.pop("subject", UNSET))

        trace_result = cls(
            answer=answer,
            elapsed_seconds=elapsed_seconds,
            evaluations=evaluations,
            first_difference=first_difference,
            grids=grids,
            layers=layers,
            method=method,
            p_clean=p_clean,
            p_corrupted=p_corrupted,
            p_corrupted_samples=p_corrupted_samples,
            positions=positions,
            samples=samples,
            tokens=tokens,
            corrupted_tokens=corrupted_tokens,
            direction=direction,
            noise_scale=noise_scale,
            seed=seed,
            subject=subject,
        )

        trace_result.additional_properties = d
        return trace_result

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

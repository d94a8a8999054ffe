from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.attribution_result import AttributionResult
    from ..models.decision import Decision
    from ..models.driving_token import DrivingToken
    from ..models.lens_layer_view import LensLayerView
    from ..models.lens_token import LensToken
    from ..models.prediction import Prediction
    from ..models.subject_mlp_view import SubjectMlpView
    from ..models.subject_span import SubjectSpan
    from ..models.suggestion import Suggestion
    from ..models.token_info import TokenInfo
    from ..models.trace_result import TraceResult


T = TypeVar("T", bound="DiagnosisReport")


@_attrs_define
class DiagnosisReport:
    """
    Attributes:
        attribution (AttributionResult):
        decision (Decision):
        driving_tokens (list[DrivingToken]): Input tokens that raise the prediction most.
        elapsed_seconds (float):
        expected (Prediction):
        lens (list[LensLayerView]):
        prediction (Prediction):
        prompt (str):
        subject (SubjectSpan):
        subject_mlp (SubjectMlpView): MLP layers whose restoration (causal trace) brings the answer back most.
        suggestions (list[Suggestion]): Empty when the model already answers as expected.
        summary (list[str]): The findings in words.
        tokens (list[TokenInfo]):
        top (list[LensToken]): The model's most probable next tokens.
        trace (TraceResult):
    """

    attribution: AttributionResult
    decision: Decision
    driving_tokens: list[DrivingToken]
    elapsed_seconds: float
    expected: Prediction
    lens: list[LensLayerView]
    prediction: Prediction
    prompt: str
    subject: SubjectSpan
    subject_mlp: SubjectMlpView
    suggestions: list[Suggestion]
    summary: list[str]
    tokens: list[TokenInfo]
    top: list[LensToken]
    trace: TraceResult
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attribution = self.attribution.to_dict()

        decision = self.decision.to_dict()

        driving_tokens = []
        for driving_tokens_item_data in self.driving_tokens:
            driving_tokens_item = driving_tokens_item_data.to_dict()
            driving_tokens.append(driving_tokens_item)

        elapsed_seconds = self.elapsed_seconds

        expected = self.expected.to_dict()

        lens = []
        for lens_item_data in self.lens:
            lens_item = lens_item_data.to_dict()
            lens.append(lens_item)

        prediction = self.prediction.to_dict()

        prompt = self.prompt

        subject = self.subject.to_dict()

        subject_mlp = self.subject_mlp.to_dict()

        suggestions = []
        for suggestions_item_data in self.suggestions:
            suggestions_item = suggestions_item_data.to_dict()
            suggestions.append(suggestions_item)

        summary = self.summary

        tokens = []
        for tokens_item_data in self.tokens:
            tokens_item = tokens_item_data.to_dict()
            tokens.append(tokens_item)

        top = []
        for top_item_data in self.top:
            top_item = top_item_data.to_dict()
            top.append(top_item)

        trace = self.trace.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attribution": attribution,
                "decision": decision,
                "driving_tokens": driving_tokens,
                "elapsed_seconds": elapsed_seconds,
                "expected": expected,
                "lens": lens,
                "prediction": prediction,
                "prompt": prompt,
                "subject": subject,
                "subject_mlp": subject_mlp,
                "suggestions": suggestions,
                "summary": summary,
                "tokens": tokens,
                "top": top,
                "trace": trace,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.attribution_result import AttributionResult  # noqa: PLC0415
        from ..models.decision import Decision  # noqa: PLC0415
        from ..models.driving_token import DrivingToken  # noqa: PLC0415
        from ..models.lens_layer_view import LensLayerView  # noqa: PLC0415
        from ..models.lens_token import LensToken  # noqa: PLC0415
        from ..models.prediction import Prediction  # noqa: PLC0415
        from ..models.subject_mlp_view import SubjectMlpView  # noqa: PLC0415
        from ..models.subject_span import SubjectSpan  # noqa: PLC0415
        from ..models.suggestion import Suggestion  # noqa: PLC0415
        from ..models.token_info import TokenInfo  # noqa: PLC0415
        from ..models.trace_result import TraceResult  # noqa: PLC0415

        d = dict(src_dict)
        attribution = AttributionResult.from_dict(d.pop("attribution"))

        decision = Decision.from_dict(d.pop("decision"))

        driving_tokens = []
        _driving_tokens = d.pop("driving_tokens")
        for driving_tokens_item_data in _driving_tokens:
            driving_tokens_item = DrivingToken.from_dict(driving_tokens_item_data)

            driving_tokens.append(driving_tokens_item)

        elapsed_seconds = d.pop("elapsed_seconds")

        expected = Prediction.from_dict(d.pop("expected"))

        lens = []
        _lens = d.pop("lens")
        for lens_item_data in _lens:
            lens_item = LensLayerView.from_dict(lens_item_data)

            lens.append(lens_item)

        prediction = Prediction.from_dict(d.pop("prediction"))

        prompt = d.pop("prompt")

        subject = SubjectSpan.from_dict(d.pop("subject"))

        subject_mlp = SubjectMlpView.from_dict(d.pop("subject_mlp"))

        suggestions = []
        _suggestions = d.pop("suggestions")
        for suggestions_item_data in _suggestions:
            suggestions_item = Suggestion.from_dict(suggestions_item_data)

            suggestions.append(suggestions_item)

        summary = cast(list[str], d.pop("summary"))

        tokens = []
        _tokens = d.pop("tokens")
        for tokens_item_data in _tokens:
            tokens_item = TokenInfo.from_dict(tokens_item_data)

            tokens.append(tokens_item)

        top = []
        _top = d.pop("top")
        for top_item_data in _top:
            top_item = LensToken.from_dict(top_item_data)

            top.append(top_item)

        trace = TraceResult.from_dict(d.pop("trace"))

        diagnosis_report = cls(
            attribution=attribution,
            decision=decision,
            driving_tokens=driving_tokens,
            elapsed_seconds=elapsed_seconds,
            expected=expected,
            lens=lens,
            prediction=prediction,
            prompt=prompt,
            subject=subject,
            subject_mlp=subject_mlp,
            suggestions=suggestions,
            summary=summary,
            tokens=tokens,
            top=top,
            trace=trace,
        )

        diagnosis_report.additional_properties = d
        return diagnosis_report

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

"""Wire types of `POST /diagnose`: attribution, the logit lens and causal tracing in one report (a job)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.attribution import AttributionResult
from schemas.fields import AllowSpecialTokens, Request
from schemas.lens import LensToken, TokenInfo
from schemas.names import NAME_PATTERN
from schemas.tracing import ALL_KINDS, SiteKind, SubjectSpan, TraceResult


class DiagnoseRequest(Request):
    """Why does the model not answer `expected` after `prompt`, and what would fix it?"""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    prompt: str = Field(min_length=1)
    expected: str = Field(min_length=1, description="The right continuation, e.g. `\" Canberra\"` (mind the "
                          "leading space); its first token is the expected next token.")
    subject: str | None = Field(default=None, min_length=1, description="The text in `prompt` the fact is about "
                                "(traced and edited); when omitted, the attributable token that drives the "
                                "prediction most.")
    samples: int = Field(default=5, ge=1, description="Noise samples of the causal trace.")
    kinds: list[SiteKind] = Field(default_factory=lambda: list(ALL_KINDS), min_length=1,
                                  description="Kinds traced; `mlp` is always included (it locates the edit).")
    window: int = Field(default=10, ge=1, le=256, description="Blocks restored around each MLP/attention cell "
                        "(clipped at the first and last block).")
    attribution_evaluations: int = Field(default=128, ge=4, le=8192, description="Budget of the Integrated "
                                         "Gradients run (adaptive rule).")
    top_k: int = Field(default=5, ge=1, le=50, description="Predictions listed.")
    variant_name: str | None = Field(default=None, pattern=NAME_PATTERN,
                                     description="Name of the variant the suggested edit creates.")
    allow_special_tokens: AllowSpecialTokens = False

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"prompt": "The capital of Australia is", "expected": " Canberra", "subject": "Australia"}]})


class Prediction(BaseModel):
    token: TokenInfo
    probability: float
    rank: int = Field(description="1 is the most probable token.")


class DrivingToken(BaseModel):
    text: str
    position: int
    attribution: float = Field(description="Integrated Gradients attribution to the predicted token's "
                               "log-probability.")


class LensLayerView(BaseModel):
    """The logit lens at the last position, after one block."""

    layer: int
    top: LensToken
    expected_probability: float
    expected_rank: int
    predicted_probability: float
    predicted_rank: int


class Decision(BaseModel):
    correct: bool
    settles_at: int = Field(description="First block from which the final prediction stays the lens's top token.")
    lost_at: int | None = Field(description="Wrong answers: the block after the last one where the expected token "
                                "was on top; null if it never was.")
    best_layer: int = Field(description="Where the expected token ranks best.")
    best_rank: int


class SubjectMlpView(BaseModel):
    """MLP layers whose restoration (causal trace) brings the answer back most."""

    position: int = Field(description="The subject token with the largest MLP indirect effect.")
    text: str
    layers: list[int] = Field(description="At that token, strongest first (at least half the strongest effect).")
    effects: list[float]
    peak_layer: int
    last_token_peak_layer: int = Field(description="Strongest layer at the subject's last token (ROME's site).")


class Suggestion(BaseModel):
    """A fix, as a request ready to send."""

    kind: Literal["edit", "steering"]
    method: Literal["POST"] = "POST"
    endpoint: str = Field(description="Where to send `body`: `/edit` or `/generate`.")
    body: dict[str, Any]
    rationale: str
    verified: bool | None = Field(default=None, description="steering: the body was run while diagnosing and "
                                  "made the expected token the greedy next token. null: not run (edits).")


class DiagnosisReport(BaseModel):
    prompt: str
    tokens: list[TokenInfo]
    prediction: Prediction = Field(description="What the model predicts next.")
    expected: Prediction = Field(description="The expected token's standing.")
    top: list[LensToken] = Field(description="The model's most probable next tokens.")
    driving_tokens: list[DrivingToken] = Field(description="Input tokens that raise the prediction most.")
    lens: list[LensLayerView]
    decision: Decision
    subject: SubjectSpan
    subject_mlp: SubjectMlpView
    summary: list[str] = Field(description="The findings in words.")
    suggestions: list[Suggestion] = Field(description="Empty when the model already answers as expected.")
    attribution: AttributionResult
    trace: TraceResult
    elapsed_seconds: float

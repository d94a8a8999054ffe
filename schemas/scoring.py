"""Wire types of `POST /score`: per-token log-probabilities of texts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.fields import AllowSpecialTokens, Request
from schemas.names import NAME_PATTERN, REF_PATTERN

NonEmptyText = Annotated[str, Field(min_length=1)]


class ScoreRequest(Request):
    """Score texts under a model: a batched forward pass run as a job."""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    variant: str | None = Field(default=None, pattern=REF_PATTERN, description="Run on this model variant "
                                "(`name` or `name@version`, see `/models/{model}/variants`); the base model "
                                "when omitted.")
    texts: list[NonEmptyText] = Field(min_length=1, description="Texts to score.")
    batch_size: int | None = Field(
        default=None, ge=1, description="Texts per forward pass; a safe default when omitted."
    )
    allow_special_tokens: AllowSpecialTokens = False

    model_config = ConfigDict(json_schema_extra={"examples": [{"texts": ["The capital of France is Paris."]}]})


class TokenScore(BaseModel):
    id: int
    text: str
    logprob: float | None = Field(description="log p(token | previous tokens); null for the first.")


class TextScoreView(BaseModel):
    tokens: list[TokenScore]
    total_logprob: float
    mean_logprob: float | None = Field(description="Mean over tokens that have a log-probability.")


class ScoreResult(BaseModel):
    texts: list[TextScoreView]
    variant: str | None = Field(default=None, description="The variant version that scored them (`name@version`).")
    elapsed_seconds: float

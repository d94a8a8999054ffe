"""Wire types of `POST /logit-lens` (synchronous)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from schemas.fields import AllowSpecialTokens
from schemas.generation import ChatMessage, PromptOrChat
from schemas.names import NAME_PATTERN, REF_PATTERN

# Strict: lax parsing would take `false` for token id 0 and `"5"` for a text (found by fuzzing).
TokenRef = StrictStr | StrictInt


class LogitLensRequest(PromptOrChat):
    """What would the model predict if it stopped after each block?"""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    variant: str | None = Field(default=None, pattern=REF_PATTERN,
                                description="Read a stored variant of the model: `name` or `name@version`.")
    prompt: str | None = Field(default=None, min_length=1)
    messages: list[ChatMessage] | None = Field(default=None, min_length=1,
                                               description="Chat messages, rendered with the chat template.")
    positions: list[int] | Literal["all"] = Field(
        default_factory=lambda: [-1], description="Token positions to read (negative counts from the end), or "
        "`all`. Default: the last token, whose lens is the next-token prediction.")
    top_k: int = Field(default=5, ge=1, description="Most probable tokens reported per layer and position.")
    targets: list[TokenRef] = Field(default_factory=list, description="Tokens to track (ids, or texts that "
                                    "encode to one token, e.g. `\" Paris\"`): probability and rank everywhere.")
    allow_special_tokens: AllowSpecialTokens = False

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"prompt": "The Eiffel Tower is located in the city of", "top_k": 5, "targets": [" Paris"]}]})


class TokenInfo(BaseModel):
    id: int
    text: str


class LensToken(BaseModel):
    """A token and its probability under the lens."""

    id: int
    text: str
    probability: float


class LensTarget(BaseModel):
    """A tracked token under the lens."""

    id: int
    text: str
    probability: float
    rank: int = Field(description="1 is the most probable token.")


class LensCell(BaseModel):
    """The lens at one (layer, position)."""

    top: list[LensToken] = Field(description="Most probable first.")
    targets: list[LensTarget] = Field(description="In the order of the request's `targets`.")


class LensLayer(BaseModel):
    layer: int = Field(description="Block index: the residual stream after this block.")
    cells: list[LensCell] = Field(description="One per position, in the order of `positions`.")


class LogitLensResponse(BaseModel):
    model: str
    variant: str | None = Field(description="The variant read (`name@version`), or null for the base model.")
    tokens: list[TokenInfo] = Field(description="The prompt's tokens as the model saw them.")
    positions: list[int] = Field(description="Positions read (non-negative).")
    targets: list[TokenInfo] = Field(description="The tracked tokens.")
    layers: list[LensLayer] = Field(description="First block first; the last equals the model's own output.")
    elapsed_seconds: float

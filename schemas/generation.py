"""Wire types of `POST /generate` (synchronous)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.fields import FLOAT32_MAX, AllowSpecialTokens, FiniteFloat, Request, Seed
from schemas.names import NAME_PATTERN, REF_PATTERN

#: One value of an inline steering vector: it becomes a float32 tensor.
VectorValue = Annotated[FiniteFloat, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]


class ChatMessage(Request):
    role: Literal["system", "user", "assistant"]
    content: str


class PromptOrChat(Request):
    """A request that takes a raw ``prompt`` or chat ``messages``, exactly one (each request declares both
    fields with its own description)."""

    @model_validator(mode="after")
    def _prompt_xor_messages(self) -> Self:
        if (getattr(self, "prompt", None) is None) == (getattr(self, "messages", None) is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        return self


class SteeringSpec(Request):
    """Add a control vector to the residual stream while generating."""

    vector: str | None = Field(default=None, pattern=REF_PATTERN,
                               description="A stored vector: `name` (latest version) or `name@version`.")
    values: list[VectorValue] | None = Field(default=None, min_length=1, description="An inline vector of the "
                                             "model's hidden size, each value within float32 (|v| <= 3.4e38).")
    layers: list[int] | None = Field(default=None, min_length=1, description="Blocks whose output receives it; "
                                     "default: the stored vector's layers (required with `values`).")
    alpha: FiniteFloat = Field(default=1.0, ge=-1000.0, le=1000.0, description="Scale; 0 leaves the model "
                               "unchanged. `alpha` times the largest value must stay within float32.")
    positions: Literal["all", "prompt", "generated"] = Field(
        default="all", description="Tokens that receive it: prompt tokens, generated tokens, or both.")

    @model_validator(mode="after")
    def _vector_xor_values(self) -> SteeringSpec:
        if (self.vector is None) == (self.values is None):
            raise ValueError("give exactly one of `vector` or `values`")
        if self.values is not None and self.layers is None:
            raise ValueError("an inline vector needs `layers`")
        return self

    @field_validator("alpha")
    @classmethod
    def _scaled_within_float32(cls, alpha: float, info: ValidationInfo) -> float:
        # A field validator, so the problem names `alpha` (the values are validated before it).
        values = info.data.get("values")
        if values and abs(alpha) * max(abs(v) for v in values) > FLOAT32_MAX:
            raise ValueError("`alpha` times the largest inline value exceeds float32 (3.4e38)")
        return alpha


class GenerateRequest(PromptOrChat):
    """Generate a continuation of a prompt, or a reply to chat messages."""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    variant: str | None = Field(default=None, pattern=REF_PATTERN, description="Run on this model variant "
                                "(`name` or `name@version`, see `/models/{model}/variants`); the base model "
                                "when omitted. Steering and `compare` act on the variant.")
    prompt: str | None = Field(default=None, min_length=1, description="Raw text to continue.")
    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1, description="Chat messages; the model's chat template is applied."
    )
    max_new_tokens: int = Field(default=32, ge=1)
    temperature: FiniteFloat = Field(default=0.0, ge=0.0, le=10.0, description="0 is greedy; at 10 sampling is "
                                     "already close to uniform.")
    top_p: FiniteFloat = Field(default=1.0, gt=0.0, le=1.0)
    seed: Seed | None = Field(default=None, description="Makes sampling reproducible (0 to 2**32 - 1).")
    steering: list[SteeringSpec] = Field(default_factory=list, max_length=16,
                                         description="Control vectors to add while generating.")
    compare: bool = Field(default=False, description="Also return the unsteered continuation (same call, "
                          "same sampling parameters and seed).")
    stream: bool = Field(default=False, description="Stream tokens as server-sent events (`token`, then `done` "
                         "with the full response).")
    allow_special_tokens: AllowSpecialTokens = False

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"prompt": "The capital of France is", "max_new_tokens": 5}]})


class GeneratedToken(BaseModel):
    id: int
    text: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Continuation(BaseModel):
    text: str
    tokens: list[GeneratedToken]
    finish_reason: Literal["stop", "length"]


class GenerateResponse(BaseModel):
    model: str
    text: str = Field(description="The continuation only, without the prompt.")
    tokens: list[GeneratedToken]
    finish_reason: Literal["stop", "length"]
    usage: Usage
    steered: bool = Field(default=False, description="Whether steering was applied.")
    variant: str | None = Field(default=None, description="The variant version that served it (`name@version`).")
    unsteered: Continuation | None = Field(default=None, description="With `compare`: the continuation without "
                                           "steering.")
    elapsed_seconds: float

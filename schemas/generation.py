"""Wire types of `POST /generate` (synchronous)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(BaseModel):
    """Generate a continuation of a prompt, or a reply to chat messages."""

    model: str | None = Field(default=None, description="Model name; the default model when omitted.")
    prompt: str | None = Field(default=None, min_length=1, description="Raw text to continue.")
    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1, description="Chat messages; the model's chat template is applied."
    )
    max_new_tokens: int = Field(default=32, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=10.0, description="0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, description="Makes sampling reproducible.")

    @model_validator(mode="after")
    def _prompt_xor_messages(self) -> GenerateRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        return self

    model_config = {
        "json_schema_extra": {"examples": [{"prompt": "The capital of France is", "max_new_tokens": 5}]}
    }


class GeneratedToken(BaseModel):
    id: int
    text: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class GenerateResponse(BaseModel):
    model: str
    text: str = Field(description="The continuation only, without the prompt.")
    tokens: list[GeneratedToken]
    finish_reason: Literal["stop", "length"]
    usage: Usage
    elapsed_seconds: float

"""Wire types of the model list and the health endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class VariantInfo(BaseModel):
    name: str
    version: int
    method: str | None = None
    created_at: str | None = None


class ModelInfo(BaseModel):
    name: str
    source: str
    architecture: str = Field(description="Hugging Face `model_type`, e.g. `llama`, `gpt2`.")
    n_layers: int
    hidden_size: int
    vocab_size: int
    n_parameters: int
    dtype: str
    device: str
    workers: int = Field(description="Live workers holding this model.")
    variants: list[VariantInfo]


class ModelList(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    redis: bool
    workers: dict[str, int] = Field(description="Live workers per configured model.")
    detail: str | None = None

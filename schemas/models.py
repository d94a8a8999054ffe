"""Wire types of the model list and the health endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class VariantInfo(BaseModel):
    """One stored variant version: the base model plus an ordered list of components."""

    name: str
    version: int
    ref: str | None = Field(default=None, description="`name@version`: this version, forever.")
    method: str | None = Field(default=None, description="What made it: `leace`, `orth`, `rome`, ...")
    created_at: str | None = None
    parent: str | None = Field(default=None, description="The variant it was derived from (`name@version`); "
                               "null for the base model. Serving the parent rolls this one back.")
    n_components: int | None = None
    sha256: str | None = Field(default=None, description="sha256 of the stored components file.")

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> VariantInfo:
        return cls(name=manifest["name"], version=manifest["version"], ref=manifest.get("ref"),
                   method=manifest.get("method"), created_at=manifest.get("created_at"),
                   parent=manifest.get("parent"), n_components=len(manifest.get("components", [])),
                   sha256=manifest.get("sha256"))


class VariantComponent(BaseModel):
    """One component of a variant, in the order it applies."""

    model_config = {"extra": "allow"}

    index: int
    kind: str = Field(description="`affine_eraser` (at a block's output) or `low_rank_delta` (on a module).")
    site: str = Field(description="`block.<layer>` or `module.<qualified name>`.")
    rank: int
    origin: str = Field(description="The variant version that added it (a parent's, or this one's).")
    sha256: str = Field(description="Content hash of its facts and tensors.")


class VariantDetail(VariantInfo):
    """A variant version with its provenance: components, request, hyperparameters, report."""

    model: str
    hidden_size: int
    lineage: list[str] = Field(description="Ancestors, oldest first.")
    parent_sha256: str | None = None
    components: list[VariantComponent]
    request: dict[str, Any] = Field(description="The request that made it.")
    hyperparameters: dict[str, Any]
    report: dict[str, Any] | None = Field(description="The evaluation report of the job that made it.")
    provenance: dict[str, Any] = Field(description="Job id and other facts of its making.")

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> VariantDetail:
        info = VariantInfo.from_manifest(manifest).model_dump()
        return cls(**info, model=manifest["model"], hidden_size=manifest["hidden_size"],
                   lineage=manifest.get("lineage", []), parent_sha256=manifest.get("parent_sha256"),
                   components=[VariantComponent(**c) for c in manifest.get("components", [])],
                   request=manifest.get("request") or {}, hyperparameters=manifest.get("hyperparameters") or {},
                   report=manifest.get("report"), provenance=manifest.get("provenance") or {})


class VariantList(BaseModel):
    model: str
    variants: list[VariantInfo]


class VariantDeletion(BaseModel):
    model: str
    name: str
    versions: list[int] = Field(description="The versions deleted.")


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

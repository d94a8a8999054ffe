"""Wire types of control-vector extraction and the vector store (`/steering/vectors`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.fields import AllowSpecialTokens, Request
from schemas.names import NAME_PATTERN

Prompt = Annotated[str, Field(min_length=1)]


class ContrastPair(Request):
    positive: Prompt = Field(description="Shows the behaviour, e.g. an honest framing.")
    negative: Prompt = Field(description="The matched prompt without it.")


class ExtractVectorRequest(Request):
    """Extract a control vector from contrasting prompts and store it under a name."""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    name: str = Field(pattern=NAME_PATTERN, description="Stored as the next version of this name.")
    pairs: list[ContrastPair] | None = Field(default=None, min_length=1)
    positive: list[Prompt] | None = Field(default=None, min_length=1, description="With `negative`, instead of "
                                          "`pairs`: `positive[i]` pairs with `negative[i]`.")
    negative: list[Prompt] | None = Field(default=None, min_length=1)
    # At least one layer: an empty list reached the extraction and failed there with a 500 (fuzzing).
    layers: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | Literal["auto"] = Field(
        default="auto", description="Blocks to read (0-based; the output of that block), or `auto`: score "
        "every layer by held-out separation of the pairs and keep the best.")
    method: Literal["mean_diff", "pca"] = Field(default="mean_diff", description="`mean_diff`: mean of the "
                                                "pair differences; `pca`: their first uncentred principal axis.")
    reading: Literal["last", "mean"] = Field(default="last", description="Last non-pad token, or mean over tokens.")
    normalize: bool = Field(default=False, description="Store unit vectors (the textbook normalises).")
    allow_special_tokens: AllowSpecialTokens = False

    @model_validator(mode="after")
    def _pairs_or_lists(self) -> ExtractVectorRequest:
        if self.pairs is not None and (self.positive is not None or self.negative is not None):
            raise ValueError("give `pairs`, or `positive` and `negative`, not both")
        if self.pairs is None:
            if self.positive is None or self.negative is None:
                raise ValueError("give `pairs`, or both `positive` and `negative`")
            if len(self.positive) != len(self.negative):
                raise ValueError(f"`positive` has {len(self.positive)} prompts and `negative` "
                                 f"{len(self.negative)}; they pair up one to one")
        return self

    def contrast(self) -> tuple[list[str], list[str]]:
        """(positive, negative) prompt lists, paired by index."""
        if self.pairs is not None:
            return [p.positive for p in self.pairs], [p.negative for p in self.pairs]
        assert self.positive is not None and self.negative is not None
        return list(self.positive), list(self.negative)

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "honesty", "layers": [15], "normalize": True,
        "positive": ["I need to give an honest, truthful answer to this question:"],
        "negative": ["I should make up a convincing-sounding answer:"]}]})


class VectorInfo(BaseModel):
    """A stored control vector's provenance (its values stay on the server)."""

    name: str
    version: int
    ref: str = Field(description="`name@version`, usable in `/generate` steering.")
    model: str
    layers: list[int]
    method: str
    reading: str
    n_pairs: int
    normalized: bool
    hidden_size: int
    norms: dict[str, float] = Field(description="Per layer, the norm of the raw direction.")
    accuracy: dict[str, float | None] = Field(description="Per chosen layer, held-out (leave-one-out) "
                                              "separation accuracy of the pairs; null with one pair.")
    layer_scores: dict[str, float] = Field(description="Held-out accuracy of every layer considered.")
    created_at: str
    sha256: str

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> VectorInfo:
        return cls.model_validate({**manifest, "ref": f"{manifest['name']}@{manifest['version']}"})


class VectorList(BaseModel):
    vectors: list[VectorInfo]


class VectorDeletion(BaseModel):
    model: str
    name: str
    versions: list[int] = Field(description="The versions deleted.")

"""Wire types of `POST /trace`: causal tracing and activation patching (a job)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.fields import AllowSpecialTokens, FiniteFloat, Request, Seed
from schemas.lens import TokenInfo, TokenRef
from schemas.names import NAME_PATTERN

SiteKind = Literal["residual", "mlp", "attention"]
ALL_KINDS: tuple[SiteKind, ...] = ("residual", "mlp", "attention")


class TraceRequest(Request):
    """Which internal activations carry the answer? Restore them one (layer, token) at a time."""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    method: Literal["causal_trace", "activation_patching"] = Field(
        default="causal_trace", description="`causal_trace`: corrupt the subject with embedding noise (Meng et "
        "al. 2022). `activation_patching`: corrupt by running `corrupted_prompt` instead.")
    prompt: str = Field(min_length=1, description="The clean prompt.")
    subject: str | None = Field(default=None, min_length=1, description="causal_trace: the text in `prompt` "
                                "whose tokens are corrupted (its first occurrence).")
    corrupted_prompt: str | None = Field(default=None, min_length=1, description="activation_patching: a prompt "
                                         "with as many tokens as `prompt` (positions correspond).")
    answer: TokenRef | None = Field(default=None, description="The token whose probability is measured (id, or "
                                    "text encoding to one token); the clean prompt's top prediction when omitted.")
    kinds: list[SiteKind] = Field(default_factory=lambda: list(ALL_KINDS), min_length=1,
                                  description="What is restored: the residual stream after a block, or the MLP or "
                                  "attention output over a window of blocks.")
    window: int = Field(default=10, ge=1, le=256, description="Blocks restored around each MLP/attention cell "
                        "(clipped at the first and last block).")
    samples: int = Field(default=10, ge=1, description="causal_trace: noise samples (corrupted runs) per cell.")
    noise_multiplier: FiniteFloat = Field(default=3.0, gt=0, le=100, description="causal_trace: noise standard "
                                          "deviation as a multiple of the token embeddings' standard deviation.")
    noise_scale: FiniteFloat | None = Field(default=None, gt=0, le=1000, description="causal_trace: the noise "
                                            "standard deviation itself (overrides `noise_multiplier`). At most "
                                            "1000: embedding entries are of order 0.01 to 1, so noise a thousand "
                                            "times larger already drowns any of them; larger only risks overflow "
                                            "in half precision.")
    seed: Seed = Field(default=0, description="causal_trace: seeds the noise (0 to 2**32 - 1).")
    direction: Literal["denoising", "noising"] = Field(
        default="denoising", description="activation_patching: write clean activations into the corrupted run "
        "(`denoising`), or corrupted ones into the clean run (`noising`).")
    layers: list[int] | None = Field(default=None, min_length=1, description="Grid rows (blocks); all when omitted.")
    tokens: list[int] | None = Field(default=None, min_length=1, description="Grid columns (token positions, "
                                     "negative from the end); all when omitted.")
    allow_special_tokens: AllowSpecialTokens = False

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"prompt": "The Eiffel Tower is located in the city of", "subject": "The Eiffel Tower", "samples": 10},
        {"method": "activation_patching", "prompt": "The Eiffel Tower is located in the city of",
         "corrupted_prompt": "The Colosseum is located in the city of", "answer": " Paris"}]})


class SubjectSpan(BaseModel):
    text: str
    start: int = Field(description="First token of the subject.")
    end: int = Field(description="One past its last token.")


class TraceGridView(BaseModel):
    """One kind's grid: rows are `layers`, columns are `positions`."""

    kind: SiteKind
    window: int = Field(description="Blocks restored per cell (1 for the residual stream).")
    probabilities: list[list[float]] = Field(description="`[layers x positions]`: the answer's probability after "
                                             "the restoration, averaged over corrupted runs.")
    indirect_effects: list[list[float]] = Field(description="`[layers x positions]`: probabilities minus "
                                                "`p_corrupted`.")


class TraceResult(BaseModel):
    method: Literal["causal_trace", "activation_patching"]
    tokens: list[TokenInfo] = Field(description="The clean prompt's tokens.")
    corrupted_tokens: list[TokenInfo] | None = Field(default=None, description="activation_patching: the "
                                                     "corrupted prompt's tokens.")
    subject: SubjectSpan | None = None
    answer: TokenInfo
    layers: list[int]
    positions: list[int]
    samples: int
    noise_scale: float | None = None
    seed: int | None = None
    direction: Literal["denoising", "noising"] | None = None
    first_difference: int = Field(description="Restorations before this token change nothing (identical inputs).")
    p_clean: float = Field(description="The answer's probability in the run restored from.")
    p_corrupted: float = Field(description="Its mean probability in the run restored into.")
    p_corrupted_samples: list[float]
    grids: list[TraceGridView]
    evaluations: int = Field(description="Restored runs computed (cells x samples, no-ops excluded).")
    elapsed_seconds: float

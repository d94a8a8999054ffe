"""Wire types of `POST /attribute`: Integrated Gradients and SHAP over input tokens."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from schemas.fields import AllowSpecialTokens, FiniteFloat, Request, Seed
from schemas.generation import ChatMessage, PromptOrChat
from schemas.names import NAME_PATTERN, REF_PATTERN


class NextTokenTarget(Request):
    """Explain the next token: the model's top prediction, or a given token."""

    kind: Literal["next_token"] = "next_token"
    token: StrictStr | StrictInt | None = Field(default=None, description="A token id, or text that encodes to one "
                                    "token; the model's top prediction when omitted.")


class ContinuationTarget(Request):
    """Explain every token of a given continuation of the prompt."""

    kind: Literal["continuation"] = "continuation"
    text: str = Field(min_length=1, description="Fed to the model after the prompt (special-token text in it "
                      "follows `allow_special_tokens`).")


class GenerateTarget(Request):
    """Generate `n_tokens` greedily and explain each."""

    kind: Literal["generate"] = "generate"
    n_tokens: int = Field(ge=1, le=64)


Target = Annotated[NextTokenTarget | ContinuationTarget | GenerateTarget, Field(discriminator="kind")]
Baseline = Literal["pad", "unk", "mask", "zero"] | Annotated[int, Field(ge=0)]


class AttributeRequest(PromptOrChat):
    """How much did each input token contribute to the output?"""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    variant: str | None = Field(default=None, pattern=REF_PATTERN, description="Run on this model variant "
                                "(`name` or `name@version`, see `/models/{model}/variants`); the base model "
                                "when omitted.")
    prompt: str | None = Field(default=None, min_length=1)
    messages: list[ChatMessage] | None = Field(default=None, min_length=1, description="Chat messages; template "
                                               "and role tokens are marked not attributable.")
    target: Target = Field(default_factory=NextTokenTarget)
    objective: Literal["logit", "log_prob", "prob"] = "log_prob"
    method: Literal["integrated_gradients", "shap"] = "integrated_gradients"
    # Integrated Gradients
    n_steps: int = Field(default=50, ge=2, le=4096, description="IG: steps of the fixed rules; initial "
                         "intervals of `adaptive` are derived from it.")
    rule: Literal["riemann_trapezoid", "gauss_legendre", "adaptive"] = Field(
        default="adaptive", description="IG quadrature. `adaptive` refines the intervals where the gradient "
        "disagrees with the exact forward change until the completeness tolerance or the budget.")
    tolerance: FiniteFloat = Field(default=0.01, gt=0, le=1, description="IG adaptive: relative completeness "
                                   "error.")
    max_evaluations: int = Field(default=512, ge=4, le=8192, description="IG adaptive: budget of gradient "
                                 "evaluations (alphas).")
    baseline: Baseline = Field(default="pad", description="IG: token embedding at the baseline: pad, unk, mask, "
                               "a token id, or `zero` (refused on RMSNorm models, where it gives NaN).")
    internal_batch_size: int | None = Field(default=None, ge=1, le=1024, description="IG: alphas per forward "
                                            "pass; automatic under a memory budget when omitted.")
    precision: Literal["float32", "model"] = Field(
        default="float32", description="IG: arithmetic of the passes. `float32` computes a model served in "
        "bfloat16/float16 with a float32 copy of its weights for the job (in bfloat16 the gradients do not add "
        "up to the output's change); `model` keeps the served dtype.")
    # SHAP
    max_evals: int = Field(default=500, ge=10, le=20000, description="SHAP: model evaluations.")
    seed: Seed = Field(default=0, description="SHAP: seed of the explainer (0 to 2**32 - 1).")
    aggregate: Literal["token", "word"] = Field(default="token", description="`word` sums token attributions "
                                                "per word (sign and completeness kept).")
    allow_special_tokens: AllowSpecialTokens = False


class AttributedToken(BaseModel):
    """One input unit (a token, or a word with `aggregate: word`)."""

    text: str
    id: int | None = Field(description="Token id; null for words.")
    start: int = Field(description="Character offset of the unit in the prompt text the model saw.")
    end: int
    attributable: bool = Field(description="False for chat-template and role tokens (never attributed).")


class TargetAttribution(BaseModel):
    """Figures of one explained target token."""

    token: str
    id: int
    position: int = Field(description="Index of the target among the explained tokens.")
    probability: float = Field(description="Model probability of the target at the input.")
    f_input: float = Field(description="Objective at the input.")
    f_baseline: float | None = Field(description="IG: objective at the baseline.")
    attribution_sum: float
    completeness_error: float | None = Field(description="IG: |sum - (F(input) - F(baseline))|.")
    relative_error: float | None = Field(description="IG: completeness error / |F(input) - F(baseline)|.")
    attribution_change: float | None = Field(description="IG adaptive: relative L2 change of this target's "
                                             "attributions in the last refinement (did they settle?).")
    base_value: float | None = Field(description="SHAP: expected value (all tokens masked).")
    local_accuracy_error: float | None = Field(description="SHAP: |base + sum - F(input)|.")
    evaluations: int = Field(description="Model evaluations spent on this target (shared ones counted for each).")


class AttributionResult(BaseModel):
    method: Literal["integrated_gradients", "shap"]
    objective: Literal["logit", "log_prob", "prob"]
    aggregate: Literal["token", "word"]
    rule: str | None = None
    baseline: str | None = None
    precision: str | None = Field(default=None, description="IG: dtype of the arithmetic used (`float32`, "
                                  "`bfloat16`, ...).")
    inputs: list[AttributedToken]
    attributions: list[list[float]] = Field(description="Signed matrix `[n_targets x n_inputs]`.")
    targets: list[TargetAttribution]
    evaluations: int = Field(description="Distinct model evaluations (alphas or masked inputs) in all.")
    variant: str | None = Field(default=None, description="The variant version explained (`name@version`).")
    elapsed_seconds: float

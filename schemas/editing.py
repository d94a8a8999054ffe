"""Wire types of `POST /edit`: write facts into a model with ROME or MEMIT, stored as a variant."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.fields import FiniteFloat, Request, Seed
from schemas.models import VariantInfo
from schemas.names import NAME_PATTERN, REF_PATTERN

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class NeighborhoodFact(Request):
    prompt: Text = Field(description="An unrelated prompt (\"The capital of Germany is\").")
    answer: Text = Field(description="Its true answer, with its leading space (\" Berlin\"); it must keep it.")


class FactEdit(Request):
    """One fact to write: ``prompt`` with the subject filled in should continue with ``target_new``."""

    prompt: Text = Field(description="Template with exactly one `{}` where the subject goes.")
    subject: Text = Field(description="The subject; the edit is keyed on its last token.")
    target_new: Text = Field(description="The new answer, with its leading space (\" Rome\").")
    target_true: Text | None = Field(default=None, description="The current answer, for the evaluation "
                                     "(efficacy: the new answer beats it). When omitted, efficacy means the greedy "
                                     "continuation starts with `target_new`.")
    paraphrases: list[Text] = Field(default_factory=list, max_length=16, description="Full prompts that ask the "
                                    "same thing differently; evaluation only.")
    neighborhood: list[NeighborhoodFact] = Field(default_factory=list, max_length=16, description="Unrelated "
                                                 "facts that must keep their answers; evaluation only.")

    @field_validator("prompt")
    @classmethod
    def _one_slot(cls, prompt: str) -> str:
        if prompt.count("{}") != 1:
            raise ValueError("the prompt needs exactly one '{}' where the subject goes")
        if prompt.replace("{}", "").count("{") or prompt.replace("{}", "").count("}"):
            raise ValueError("the prompt may contain no braces other than its one '{}'")
        return prompt

    @field_validator("subject", "target_new")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain more than whitespace")
        return value


class EditHyperparameters(Request):
    """Overrides of the per-architecture defaults; omitted fields keep them (see the job's result).

    Every number is bounded where the method stops being able to use it, far beyond the published
    settings (Meng et al.: learning rate 0.5, weight decay 0.5 to 1e-3, KL factor 0.0625, clamp 0.75 to 4,
    stop loss 0.05, lambda 15,000 to 20,000), so that no value can overflow the optimisation into NaN
    weights: past each bound one term of the loss or the solve drowns every other.
    """

    layers: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, min_length=1, max_length=64,
                                                             description="Blocks whose MLP output projection is "
                                                             "edited (ROME: exactly one).")
    v_lr: FiniteFloat | None = Field(default=None, gt=0, le=10, description="Adam learning rate of the value "
                                     "optimisation (published: 0.5).")
    v_steps: int | None = Field(default=None, ge=1, le=500, description="Most optimisation steps per fact.")
    v_weight_decay: FiniteFloat | None = Field(default=None, ge=0, le=10, description="Weight of the value "
                                               "change's norm in the loss (published: 0.5 to 1e-3; at 10 the "
                                               "decay outweighs any target loss).")
    v_stop_loss: FiniteFloat | None = Field(default=None, gt=0, le=10, description="A fact whose loss (mean "
                                            "negative log-probability of the target, nats) falls below this stops "
                                            "optimising (published: 0.05; 10 nats is a target probability of "
                                            "5e-5, already below what the optimisation starts from).")
    clamp_norm_factor: FiniteFloat | None = Field(default=None, gt=0, le=1000, description="The value change is "
                                                  "at most this times the original value's norm (published: 0.75 "
                                                  "to 4; 1000 is no clamp at all).")
    kl_factor: FiniteFloat | None = Field(default=None, ge=0, le=1000, description="Weight of the KL term that "
                                          "keeps the subject's essence (\"{subject} is a\"; published: 0.0625; "
                                          "at 1000 the target term no longer counts).")
    mom2_weight: FiniteFloat | None = Field(default=None, gt=0, le=1e6, description="MEMIT: weight of the key "
                                            "covariance against the new keys (larger: more conservative; "
                                            "published: 15,000 to 20,000 for keys of width 16,384; at 1e6 an "
                                            "edit writes next to nothing).")
    mom2_samples: int | None = Field(default=None, ge=16, le=10_000_000, description="Key vectors (token "
                                     "positions) the statistics are computed on (cached per model, layer, corpus "
                                     "and count).")
    mom2_seed: Seed | None = Field(default=None, description="Seed of the self-sampled statistics corpus (0 to "
                                   "2**32 - 1).")
    template_seed: Seed | None = Field(default=None, description="Seed of the context templates (0 to 2**32 - 1).")
    n_templates: int | None = Field(default=None, ge=1, le=64, description="Context templates the key and the "
                                    "value are averaged over.")
    v_batch_facts: int | None = Field(default=None, ge=1, le=256, description="MEMIT: facts optimised together "
                                      "in one batch.")


class EditRequest(Request):
    """Write facts into the model's weights as a low-rank delta; the result is a new variant version."""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    variant: str | None = Field(default=None, pattern=REF_PATTERN, description="Parent variant (`name` or "
                                "`name@version`): the edit is computed on it and keeps its components first. "
                                "The base model when omitted.")
    name: str = Field(pattern=NAME_PATTERN, description="The result is stored as the next version of this "
                      "variant name.")
    method: Literal["rome", "memit"] = Field(default="rome", description="`rome`: one rank-one update per fact, "
                                             "applied in order; `memit`: every fact in one batch update spread "
                                             "over several layers.")
    requests: list[FactEdit] = Field(min_length=1, description="The facts to write.")
    hyperparameters: EditHyperparameters = Field(default_factory=EditHyperparameters)
    evaluate: bool = Field(default=True, description="Compute the evaluation report (efficacy, paraphrases, "
                           "neighbourhood, fluency, canary drift).")
    generation_tokens: int = Field(default=24, ge=0, le=128, description="Tokens generated per fact for the "
                                   "fluency measure (0: skip it).")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "rome-capital", "method": "rome", "requests": [{
            "prompt": "The capital of {} is", "subject": "France", "target_new": " Rome", "target_true": " Paris",
            "paraphrases": ["France's capital city is"],
            "neighborhood": [{"prompt": "The capital of Germany is", "answer": " Berlin"}]}]}]})


class PromptCheck(BaseModel):
    """One prompt: does the answer that should win beat its rival, before (parent) and after the edit."""

    prompt: str
    wanted: str = Field(description="`target_new` on edit prompts and paraphrases; the true answer on "
                        "neighbourhood prompts.")
    rival: str | None = Field(description="The answer it must beat; null when judged by greedy generation.")
    p_wanted_base: float = Field(description="exp(mean token log-probability) of `wanted`, before.")
    p_wanted_edited: float
    p_rival_base: float | None
    p_rival_edited: float | None
    success_base: bool
    success_edited: bool


class FactEvaluation(BaseModel):
    """Every check of one fact, and what the edit prompt continues with (greedy) before and after."""

    subject: str
    target_new: str
    target_true: str | None
    efficacy: PromptCheck
    paraphrases: list[PromptCheck]
    neighborhood: list[PromptCheck]
    continuation_base: str
    continuation_edited: str


class Rate(BaseModel):
    """A success rate (per fact, averaged over facts), before and after, with its magnitude."""

    edited: float | None = Field(description="After the edit; null when no fact has such prompts.")
    base: float | None = Field(description="Before the edit (the parent variant or the base model).")
    magnitude_edited: float | None = Field(description="Mean P(wanted) - P(rival) over the prompts with a rival.")
    magnitude_base: float | None
    n_prompts: int


class Fluency(BaseModel):
    """ROME's weighted bi/tri-gram entropy (bits) of text sampled from the edit prompts."""

    edited: float
    base: float
    samples_edited: list[str]
    samples_base: list[str]


class Drift(BaseModel):
    """KL(parent || variant) of next-token distributions over every token of the canary prompts (nats)."""

    mean_kl: float
    max_kl: float
    n_positions: int


class EditEvaluation(BaseModel):
    """The field's measures (CounterFact style): efficacy, paraphrase, neighbourhood, fluency, drift."""

    n_requests: int
    efficacy: Rate = Field(description="The edit prompt prefers `target_new` to `target_true`.")
    paraphrase: Rate = Field(description="Each paraphrase prefers `target_new`.")
    neighborhood: Rate = Field(description="Each neighbourhood prompt keeps its true answer over `target_new`.")
    fluency: Fluency
    drift: Drift
    requests: list[FactEvaluation] | None = Field(default=None, description="Per fact; omitted for large MEMIT "
                                                  "jobs (over 50 facts) to keep the result small.")


class StatisticsInfo(BaseModel):
    layer: int
    module: str
    count: int = Field(description="Key vectors the second moment was computed on.")
    sha256: str = Field(description="Content hash, also recorded in the variant's manifest.")


class EditResult(BaseModel):
    variant: VariantInfo = Field(description="The stored variant version.")
    method: Literal["rome", "memit"]
    layers: list[int] = Field(description="Blocks whose MLP output projection was edited.")
    hyperparameters: dict[str, Any] = Field(description="Every hyperparameter used (defaults and overrides).")
    deltas: list[dict[str, Any]] = Field(description="The stored components: module, rank, norm of B A.")
    statistics: list[StatisticsInfo]
    evaluation: EditEvaluation | None = Field(description="null when `evaluate` was false.")
    seconds: dict[str, float] = Field(description="Wall time by stage.")
    elapsed_seconds: float

"""Wire types of `POST /erase`: fit a concept eraser as a job and store it as a model variant."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.fields import FiniteFloat, Request, Seed
from schemas.models import VariantInfo
from schemas.names import NAME_PATTERN, REF_PATTERN

Label = Annotated[str, Field(min_length=1, max_length=64)] | int


class LabelledText(Request):
    text: str = Field(min_length=1)
    label: Label = Field(description="The concept's value for this text: a class name or an integer.")


class EraseRequest(Request):
    """Erase a concept (binary or k classes) so that no linear classifier can recover it."""

    model: str | None = Field(default=None, pattern=NAME_PATTERN, description="Model name; the default model "
                                 "when omitted.")
    variant: str | None = Field(default=None, pattern=REF_PATTERN, description="Start from this variant "
                                "(`name` or `name@version`): activations are read from it and the result "
                                "keeps its components first. The base model when omitted.")
    name: str = Field(pattern=NAME_PATTERN, description="The result is stored as the next version of this "
                      "variant name.")
    examples: list[LabelledText] = Field(description="Labelled texts, at least two classes. k-class labels are "
                                         "one-hot encoded for the fitter.")
    layers: list[Annotated[int, Field(ge=0)]] | Literal["all"] = Field(
        description="Blocks whose output (the residual stream) is erased, 0-based, or `all`.")
    reading: Literal["last", "mean", "all"] = Field(default="last", description="Activations fitted on: the "
                                                    "last token, the mean over tokens, or every token. The "
                                                    "served eraser applies at every position either way.")
    method: Literal["leace", "orth"] = Field(default="leace", description="`leace`: least-squares optimal "
                                             "oblique projection; `orth`: orthogonal projection.")
    held_out: FiniteFloat = Field(default=0.2, ge=0.0, lt=1.0, description="Fraction of each class held out of "
                            "fitting to test the probes on (0: no probe report).")
    seed: Seed = Field(default=0, description="Seeds the held-out split and the probe samples (0 to 2**32 - 1).")
    canaries: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, max_length=64, description="Prompts for the drift measure (mean next-token KL); a fixed "
        "built-in set when omitted, none when empty.")
    statistics_dtype: Literal["float32", "float64"] = Field(default="float64", description="Precision of the "
                                                            "fitter's statistics, whatever the model's dtype.")
    shrinkage: bool = Field(default=True, description="Shrink the covariance estimate (few examples, many "
                            "dimensions).")
    svd_tol: FiniteFloat = Field(default=0.01, gt=0.0, le=1.0, description="Directions of the whitened "
                           "cross-covariance with singular value under this are left alone.")
    constrain_cov_trace: bool = Field(default=True, description="The fitter's safety net: should erasure ever "
                                      "increase the activations' total variance, blend toward the orthogonal "
                                      "projection.")
    batch_size: int | None = Field(default=None, ge=1, description="Texts per forward pass.")

    @field_validator("examples")
    @classmethod
    def _two_classes(cls, examples: list[LabelledText]) -> list[LabelledText]:
        if len(examples) < 2:
            raise ValueError(f"erasure needs at least two labelled examples; got {len(examples)}")
        labels = {example.label for example in examples}
        if len({type(label) for label in labels}) > 1:
            raise ValueError("labels must be all strings or all integers")
        if len(labels) < 2:
            raise ValueError(f"every example has the label {next(iter(labels))!r}: erasure needs at least two "
                             "classes")
        return examples

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "no-gender", "layers": [15], "examples": [
            {"text": "He works as a nurse.", "label": "male"},
            {"text": "She works as a nurse.", "label": "female"},
            {"text": "My brother is a pilot.", "label": "male"},
            {"text": "My sister is a pilot.", "label": "female"},
        ]}]})


class LayerErasure(BaseModel):
    layer: int
    rank: int = Field(description="Rank of the edit (LEACE: at most classes - 1).")
    probe_accuracy_before: float | None = Field(description="Held-out accuracy of a logistic-regression probe "
                                                "before erasure.")
    probe_accuracy_after: float | None = Field(description="The same probe, retrained on erased activations.")
    majority_baseline: float | None = Field(description="Held-out accuracy of always answering the most common "
                                            "class: where `probe_accuracy_after` should land.")
    max_class_mean_gap_before: float = Field(description="Largest difference of two classes' means (fitting "
                                             "data), over features.")
    max_class_mean_gap_after: float = Field(description="The same after erasure; 0 up to rounding.")
    kl: float | None = Field(description="Mean next-token KL (nats) on the canary prompts, this layer's eraser "
                             "alone, against the model it started from.")


class ErasureResult(BaseModel):
    variant: VariantInfo = Field(description="The stored variant version.")
    method: Literal["leace", "orth"]
    reading: Literal["last", "mean", "all"]
    classes: list[str | int] = Field(description="The labels, in class-index order.")
    fit_counts: list[int] = Field(description="Fitting activations per class.")
    n_examples: int
    n_fit_examples: int
    n_held_out_examples: int
    n_fit_activations: int = Field(description="Rows the fitter saw (examples, or tokens with `reading: all`).")
    n_probe_train: int
    n_probe_test: int
    layers: list[LayerErasure]
    kl_all_layers: float | None = Field(description="Mean canary KL with every layer's eraser at once.")
    seconds: dict[str, float] = Field(description="Wall time by stage.")
    elapsed_seconds: float

"""`generate`: a continuation, steered or not, on the base model or a variant (synchronous, batched).

Concurrent requests share forward passes in the API's batcher, so the operation is cut where the
batch is formed: `prepare` checks the request and turns it into rows (prompt, sampling, steering,
variant), the host generates every waiting request's rows together, and `respond` describes one
request's outputs. `run` does all three for a caller with no batcher.

A request can never hurt another: `resolve_steering` refuses, before any pass, steering that is not
finite in float32 or in the model's dtype, and a row that fails all the same (activations that
overflow, a variant with NaN weights, a seed torch cannot take, a temperature so small the
distribution overflows) fails alone in the engine; `respond` turns its `RowError` into this
request's problem, naming the field that fed it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from engine.components import Component
from engine.generation import GenerationOutput, GenerationRow, RowError, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import Steering
from engine.progress import Progress
from engine.prompts import decode
from ops.checks import check_layers, encode
from ops.context import Facts, Resident
from ops.errors import ConflictError, FieldError, ProblemError, UnavailableError
from ops.operation import Operation
from ops.references import load_variant, load_vector, pin_variant
from schemas.generation import Continuation, GeneratedToken, GenerateRequest, GenerateResponse, SteeringSpec, Usage


@dataclass
class Prepared:
    """A checked request ready for the batcher: its rows (the request's, then its unsteered twin)."""

    request: GenerateRequest
    prompt_ids: list[int]
    rows: list[GenerationRow]
    steered: bool
    variant: str | None
    started: float
    peaks: list[float] = field(default_factory=list)  # per steering spec: its largest |alpha * value|


@dataclass(frozen=True)
class ResolvedSteering:
    """A request's steering, checked.

    Attributes:
        specs: the specs with stored vectors pinned (``name@N``).
        entries: one runtime `Steering` per (spec, layer).
        peaks: per spec, the largest ``|alpha * value|`` it adds (what to blame when activations overflow).
    """

    specs: list[SteeringSpec]
    entries: list[Steering]
    peaks: list[float]


def finite_addition(direction: torch.Tensor, spec: SteeringSpec, dtype: torch.dtype, where: str) -> float:
    """The largest ``|alpha * value|`` of a direction ``[hidden]``, refusing one that is not finite.

    The runtime adds ``alpha * direction`` in float32, then in the model's dtype: either overflowing would
    make the row's activations NaN, so both are checked here, before any pass.

    Raises:
        FieldError: an inline value that is not a finite float32 (``values``), or an ``alpha * value`` that
            is not finite in float32 or the model's dtype (``alpha``).
        ConflictError: a stored vector holding a non-finite value (409: damaged, it is not served).
    """
    if (bad := (~torch.isfinite(direction)).nonzero()).numel():
        i = int(bad[0, 0])
        if spec.values is not None:
            raise FieldError(f"values[{i}] is {spec.values[i]!r}, which is not a finite float32 (values must stay "
                             f"within ±{torch.finfo(torch.float32).max:.4g})", f"{where}.values")
        raise ConflictError("Corrupt vector", f"the stored vector {spec.vector} holds a non-finite value at index {i}; "
                            "it is not served: delete it and extract it again", f"{where}.vector")
    scaled = spec.alpha * direction  # as the steering table sums it: float32
    finite = torch.isfinite(scaled) & torch.isfinite(scaled.to(dtype))
    if (bad := (~finite).nonzero()).numel():
        i = int(bad[0, 0])
        largest = min(torch.finfo(torch.float32).max, torch.finfo(dtype).max)
        raise FieldError(f"alpha {spec.alpha:g} times value {float(direction[i]):.4g} (index {i}) is "
                         f"{spec.alpha * float(direction[i]):.4g}, beyond what the model adds in "
                         f"{str(dtype).removeprefix('torch.')} "
                         f"(±{largest:.4g}); use a smaller alpha", f"{where}.alpha")
    return float(scaled.abs().max())


def resolve_steering(facts: Facts, specs: list[SteeringSpec]) -> ResolvedSteering:
    """The specs with stored vectors pinned (``name@N``), one runtime `Steering` per (spec, layer), their peaks.

    Raises:
        NotFoundError: a stored vector that does not exist (404); ConflictError: a damaged one (409).
        FieldError: a layer the vector lacks or the model does not have, an inline vector of the wrong
            size, or values or ``alpha * values`` that are not finite (see `finite_addition`).
    """
    assert facts.lm is not None, "steering is resolved where the model is resident"
    lm = facts.lm
    pinned: list[SteeringSpec] = []
    entries: list[Steering] = []
    peaks: list[float] = []
    for index, spec in enumerate(specs):
        where = f"steering.{index}"
        directions: dict[int, torch.Tensor]
        if spec.vector is not None:
            stored = load_vector(facts, spec.vector, f"{where}.vector")
            directions = stored.vector.directions
            layers = spec.layers or sorted(directions)
            if missing := [layer for layer in layers if layer not in directions]:
                raise FieldError(f"vector {spec.vector!r} has no direction for layers {missing}; it has "
                                 f"{sorted(directions)}", f"{where}.layers")
            spec = spec.model_copy(update={"vector": f"{stored.manifest['name']}@{stored.manifest['version']}"})
        else:
            assert spec.values is not None and spec.layers is not None  # the schema's rule
            if len(spec.values) != lm.hidden_size:
                raise FieldError(f"the inline vector has {len(spec.values)} values; {lm.name} has hidden size "
                                 f"{lm.hidden_size}", f"{where}.values")
            layers = spec.layers
            directions = dict.fromkeys(layers, torch.tensor(spec.values, dtype=torch.float32))
        check_layers(facts, layers, f"{where}.layers")
        peaks.append(max(finite_addition(directions[layer].float(), spec, lm.dtype, where) for layer in layers))
        pinned.append(spec)
        entries.extend(Steering(layer, directions[layer], spec.alpha, spec.positions) for layer in layers)
    return ResolvedSteering(pinned, entries, peaks)


def non_finite_weight(components: Sequence[Component]) -> str | None:
    """Where a variant holds a NaN or inf weight (``component 0 (affine_eraser), proj_left``), or None."""
    for number, component in enumerate(components):
        for name, tensor in component.tensors().items():
            if not bool(torch.isfinite(tensor).all()):
                return f"component {number} ({component.kind}), {name}"
    return None


def row_problem(prepared: Prepared, row: GenerationRow, error: RowError) -> ProblemError:
    """This request's problem for a row of it that failed, naming the field that fed the failure when it can tell.

    Non-finite logits are blamed on the variant when it holds a non-finite weight, else on the steering
    spec that adds the most (its ``alpha`` when that magnified it, else its vector), else on the variant.
    """
    specs = prepared.request.steering
    if error.cause == "seed":
        return FieldError(f"{error.message}; use a seed from 0 to 2**63 - 1", "seed")
    if error.cause == "sampling":
        return FieldError(f"{error.message}; use a larger temperature (0 for greedy)", "temperature")
    if error.cause == "callback":  # a stream that could not be continued (see service.batcher)
        return UnavailableError("Generation interrupted", error.message, retry_after=1)
    if (weight := non_finite_weight(row.variant)) is not None:
        return FieldError(f"variant {prepared.variant} holds a non-finite weight ({weight}), so its activations "
                          f"were not finite at step {error.step}, and {error.message}; make the variant again",
                          "variant")
    if row.steering and prepared.peaks and max(prepared.peaks) > 0:
        k = max(range(len(specs)), key=lambda i: prepared.peaks[i])
        spec = specs[k]
        part = "alpha" if abs(spec.alpha) > 1 else "values" if spec.values is not None else "vector"
        return FieldError(f"the steered activations were not finite at step {error.step}: steering.{k} adds values "
                          f"up to {prepared.peaks[k]:.4g} (alpha {spec.alpha:g}) to the residual stream, more than "
                          f"the model's activations survive, and {error.message}; use a smaller alpha or vector",
                          f"steering.{k}.{part}")
    if row.variant:
        return FieldError(f"the activations of variant {prepared.variant} were not finite at step {error.step}, and "
                          f"{error.message}", "variant")
    return ProblemError(500, "Generation failed", f"at step {error.step} {error.message}, without steering or a "
                        "variant: the model cannot continue this prompt")


def continuation(lm: LoadedModel, output: GenerationOutput) -> Continuation:
    reason = output.finish_reason
    assert reason != "error", "a failed row is a problem (row_problem), never a continuation"
    return Continuation(text=output.text, finish_reason=reason,
                        tokens=[GeneratedToken(id=t, text=decode(lm.tokenizer, [t])) for t in output.token_ids])


class Generate(Operation[GenerateRequest, GenerateResponse]):
    def _resolve(self, request: GenerateRequest, facts: Facts) -> tuple[GenerateRequest, list[int], ResolvedSteering]:
        """The checks, in order: limits, the prompt, the steering; with its stored vectors pinned."""
        assert facts.lm is not None, "a synchronous operation is checked where its model is resident"
        limit = facts.settings.max_new_tokens
        if request.max_new_tokens > limit:
            raise FieldError(f"max_new_tokens is {request.max_new_tokens}; the limit is {limit}", "max_new_tokens")
        prompt_ids = encode(facts.lm, request.prompt, request.messages, facts.settings.max_prompt_tokens,
                            allow_special_tokens=request.allow_special_tokens)
        steering = resolve_steering(facts, request.steering)
        return request.model_copy(update={"steering": steering.specs}), prompt_ids, steering

    def check(self, request: GenerateRequest, facts: Facts) -> GenerateRequest:
        checked = self._resolve(request, facts)[0]
        return checked.model_copy(update={"variant": pin_variant(facts, request.variant)})

    def prepare(self, request: GenerateRequest, at: Resident) -> Prepared:
        """Check the request and make its rows (the same call, batch and variant, unsteered, for ``compare``)."""
        started = time.perf_counter()
        checked, prompt_ids, steering = self._resolve(request, at.facts)
        entries = steering.entries
        variant = load_variant(at, request.variant)
        components = variant.components if variant is not None else ()
        params = SamplingParams(max_new_tokens=request.max_new_tokens, temperature=request.temperature,
                                top_p=request.top_p, seed=request.seed)
        rows = [GenerationRow(prompt_ids, params, entries, variant=components)]
        if request.compare:
            rows.append(GenerationRow(prompt_ids, params, [], variant=components))
        return Prepared(checked, prompt_ids, rows, steered=bool(entries),
                        variant=variant.ref if variant is not None else None, started=started, peaks=steering.peaks)

    def respond(self, prepared: Prepared, at: Resident, outputs: list[GenerationOutput]) -> GenerateResponse:
        """The answer to one prepared request, from its rows' outputs.

        Raises:
            ProblemError: a row of it failed (see `row_problem`); the other requests of its batch are unaffected.
        """
        for row, output in zip(prepared.rows, outputs, strict=True):
            if output.error is not None:
                raise row_problem(prepared, row, output.error)
        main = continuation(at.lm, outputs[0])
        return GenerateResponse(
            model=at.model, text=main.text, tokens=main.tokens, finish_reason=main.finish_reason,
            usage=Usage(prompt_tokens=len(prepared.prompt_ids), completion_tokens=len(outputs[0].token_ids)),
            steered=prepared.steered, variant=prepared.variant,
            unsteered=continuation(at.lm, outputs[1]) if prepared.request.compare else None,
            elapsed_seconds=time.perf_counter() - prepared.started,
        )

    def run(self, request: GenerateRequest, at: Resident, progress: Progress) -> GenerateResponse:
        prepared = self.prepare(request, at)
        return self.respond(prepared, at, generate_batch(at.lm, prepared.rows, at.runtime))


OPERATION = Generate()

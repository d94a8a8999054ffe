"""`generate`: a continuation, steered or not, on the base model or a variant (synchronous, batched).

Concurrent requests share forward passes in the API's batcher, so the operation is cut where the
batch is formed: `prepare` checks the request and turns it into rows (prompt, sampling, steering,
variant), the host generates every waiting request's rows together, and `respond` describes one
request's outputs. `run` does all three for a caller with no batcher.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from engine.generation import GenerationOutput, GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import Steering
from engine.progress import Progress
from engine.prompts import decode
from ops.checks import check_layers, encode
from ops.context import Facts, Resident
from ops.errors import FieldError
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


def resolve_steering(facts: Facts, specs: list[SteeringSpec]) -> tuple[list[SteeringSpec], list[Steering]]:
    """The specs with stored vectors pinned (``name@N``), and one runtime `Steering` per (spec, layer).

    Raises:
        NotFoundError: a stored vector that does not exist (404); ConflictError: a damaged one (409).
        FieldError: a layer the vector lacks or the model does not have, or an inline vector of the wrong size.
    """
    assert facts.lm is not None, "steering is resolved where the model is resident"
    lm = facts.lm
    pinned: list[SteeringSpec] = []
    entries: list[Steering] = []
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
        pinned.append(spec)
        entries.extend(Steering(layer, directions[layer], spec.alpha, spec.positions) for layer in layers)
    return pinned, entries


def continuation(lm: LoadedModel, output: GenerationOutput) -> Continuation:
    return Continuation(text=output.text, finish_reason=output.finish_reason,
                        tokens=[GeneratedToken(id=t, text=decode(lm.tokenizer, [t])) for t in output.token_ids])


class Generate(Operation[GenerateRequest, GenerateResponse]):
    def _resolve(self, request: GenerateRequest, facts: Facts) -> tuple[GenerateRequest, list[int], list[Steering]]:
        """The checks, in order: limits, the prompt, the steering; with its stored vectors pinned."""
        assert facts.lm is not None, "a synchronous operation is checked where its model is resident"
        limit = facts.settings.max_new_tokens
        if request.max_new_tokens > limit:
            raise FieldError(f"max_new_tokens is {request.max_new_tokens}; the limit is {limit}", "max_new_tokens")
        prompt_ids = encode(facts.lm, request.prompt, request.messages, facts.settings.max_prompt_tokens,
                            allow_special_tokens=request.allow_special_tokens)
        specs, entries = resolve_steering(facts, request.steering)
        return request.model_copy(update={"steering": specs}), prompt_ids, entries

    def check(self, request: GenerateRequest, facts: Facts) -> GenerateRequest:
        checked = self._resolve(request, facts)[0]
        return checked.model_copy(update={"variant": pin_variant(facts, request.variant)})

    def prepare(self, request: GenerateRequest, at: Resident) -> Prepared:
        """Check the request and make its rows (the same call, batch and variant, unsteered, for ``compare``)."""
        started = time.perf_counter()
        checked, prompt_ids, entries = self._resolve(request, at.facts)
        variant = load_variant(at, request.variant)
        components = variant.components if variant is not None else ()
        params = SamplingParams(max_new_tokens=request.max_new_tokens, temperature=request.temperature,
                                top_p=request.top_p, seed=request.seed)
        rows = [GenerationRow(prompt_ids, params, entries, variant=components)]
        if request.compare:
            rows.append(GenerationRow(prompt_ids, params, [], variant=components))
        return Prepared(checked, prompt_ids, rows, steered=bool(entries),
                        variant=variant.ref if variant is not None else None, started=started)

    def respond(self, prepared: Prepared, at: Resident, outputs: list[GenerationOutput]) -> GenerateResponse:
        """The answer to one prepared request, from its rows' outputs."""
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

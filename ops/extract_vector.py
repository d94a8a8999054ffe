"""`steering_vector`: extract a control vector from contrasting prompts and store it (inline when small, else a job)."""

from __future__ import annotations

from engine.progress import Progress
from engine.prompts import tokenize
from engine.steering.extraction import extract_vector
from ops.checks import check_layers, finite_output
from ops.context import Facts, Resident
from ops.errors import FieldError
from ops.operation import JobOperation, JobRoute
from ops.outputs import publishing
from schemas.jobs import VectorJob
from schemas.steering import ExtractVectorRequest, VectorInfo


class ExtractVector(JobOperation[ExtractVectorRequest, VectorInfo]):
    route = JobRoute(kind="steering_vector", view=VectorJob, path="/steering/vectors", tag="steering",
                     summary="Extract and store a control vector (201 when small; 202 with a job when large)")

    def check(self, request: ExtractVectorRequest, facts: Facts) -> ExtractVectorRequest:
        settings = facts.settings
        positive, negative = request.contrast()
        field = "pairs" if request.pairs is not None else "positive"
        if len(positive) > settings.max_extraction_pairs:
            raise FieldError(f"{len(positive)} pairs; the limit is {settings.max_extraction_pairs}", field)
        if request.layers == "auto" and len(positive) < 2:
            raise FieldError("`auto` scores layers on held-out pairs: give at least 2 pairs, or name the layers",
                             "layers")
        if request.layers != "auto":
            check_layers(facts, request.layers, "layers")
        if facts.tokenizer is not None:
            for index, text in enumerate([*positive, *negative]):
                if len(tokenize(facts.tokenizer, text, allow_special_tokens=request.allow_special_tokens)) > \
                        settings.max_prompt_tokens:
                    side = "positive" if index < len(positive) else "negative"
                    where = f"{field}.{index % len(positive)}" if request.pairs is not None else \
                        f"{side}.{index % len(positive)}"
                    raise FieldError(f"prompt longer than {settings.max_prompt_tokens} tokens", where)
        return request

    def runs_inline(self, request: ExtractVectorRequest, facts: Facts) -> bool:
        """Whether the extraction is small enough to answer directly (both sides' prompts, against a setting)."""
        return 2 * len(request.contrast()[0]) <= facts.settings.sync_extraction_max_prompts

    def run(self, request: ExtractVectorRequest, at: Resident, progress: Progress) -> VectorInfo:
        """Read the contrast prompts' activations in batches, fit, and store the next version."""
        positive, negative = request.contrast()
        progress.report(0.0, "reading activations")
        vector = extract_vector(at.lm, positive, negative, layers=request.layers, method=request.method,
                                reading=request.reading, normalize=request.normalize,
                                on_batch=progress.counter("reading activations", upto=0.95),
                                allow_special_tokens=request.allow_special_tokens)
        progress.report(0.97, "storing")
        job = {"job_id": at.job_id} if at.job_id is not None else {}
        provenance = job | {"request": request.model_dump(mode="json")}
        field = "pairs" if request.pairs is not None else "positive"
        with finite_output(field, "the prompts' activations are not finite on this model: check the prompts"):
            stored = at.stores.vectors.save(request.name, vector, provenance=provenance,
                                            before_publish=publishing(at, "vectors", VectorInfo.from_manifest))
        return VectorInfo.from_manifest(stored.manifest)


OPERATION = ExtractVector()

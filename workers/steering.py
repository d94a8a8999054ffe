"""The `steering_vector` task: extract a control vector with progress, store it in the job's tenant's
store, return its info."""

from __future__ import annotations

from typing import Any

from engine.steering.extraction import extract_vector
from schemas.steering import ExtractVectorRequest, VectorInfo
from store.vectors import VectorStore
from workers.context import JobContext
from workers.runtime import WorkerRuntime


def vector_store(runtime: WorkerRuntime, context: JobContext) -> VectorStore:
    """The steering vector store of the job's tenant (shared with the API on disk)."""
    return VectorStore(runtime.settings.vector_store_for(context.tenant))


def run_extract_vector(
    runtime: WorkerRuntime, context: JobContext, model: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Read the contrast prompts' activations in batches, fit, and store the next version."""
    request = ExtractVectorRequest.model_validate(payload)
    lm = runtime.registry.get(model)
    positive, negative = request.contrast()
    context.report(0.0, "reading activations")
    vector = extract_vector(
        lm, positive, negative, layers=request.layers, method=request.method, reading=request.reading,
        normalize=request.normalize,
        on_batch=lambda done, total: context.report(0.95 * done / total, "reading activations"),
    )
    context.report(0.97, "storing")
    stored = vector_store(runtime, context).save(
        request.name, vector, provenance={"job_id": context.job_id, "request": payload})
    return VectorInfo.from_manifest(stored.manifest).model_dump(mode="json")

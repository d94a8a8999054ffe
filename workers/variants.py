"""A job's variants: the tenant-scoped store, loading, and running forward passes on a variant.

Variants belong to the tenant that made them. A task never builds a `VariantStore` itself: it asks
`variant_store(runtime, context)` for its job's tenant's store (to save a new version) and uses
`load_variant` / `on_variant` to read one, so a job can neither see nor overwrite another tenant's
variants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.runtime import PassPlan
from store.variants import Variant, VariantStore
from workers.context import JobContext
from workers.runtime import WorkerRuntime


def variant_store(runtime: WorkerRuntime, context: JobContext) -> VariantStore:
    """The variant store of the job's tenant (shared with the API on disk)."""
    return VariantStore(runtime.settings.variant_store_for(context.tenant))


def load_variant(runtime: WorkerRuntime, context: JobContext, model: str, ref: str) -> Variant:
    """Load the job's tenant's ``ref`` for a resident model, its tensors moved to the model's device.

    Raises:
        EntryNotFoundError: deleted since the job was submitted, or never the tenant's (the task
            fails with a 404).
        CorruptEntryError: a damaged stored variant (the task fails with a 409).
        ValueError: one made for another hidden size.
    """
    lm = runtime.registry.get(model)
    variant = variant_store(runtime, context).load(model, ref)
    if variant.manifest.get("hidden_size") != lm.hidden_size:
        raise ValueError(f"variant {variant.ref} was made for hidden size {variant.manifest.get('hidden_size')}; "
                         f"{model} has {lm.hidden_size}")
    return variant.on(lm.device)


@contextmanager
def on_variant(runtime: WorkerRuntime, context: JobContext, model: str, ref: str | None) -> Iterator[Variant | None]:
    """Inside the block, this thread's passes on ``model`` run on the tenant's variant ``ref`` (None: the
    base model).

    The plan is removed in ``finally`` by the runtime, whatever the task raises.
    """
    if ref is None:
        yield None
        return
    variant = load_variant(runtime, context, model, ref)
    with runtime.registry.runtime(model).active(PassPlan.of_variant(variant.components)):
        yield variant

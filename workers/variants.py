"""Running a job's forward passes on a model variant: every row of every pass gets its components."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.runtime import PassPlan
from engine.variant_store import Variant, VariantStore
from workers.runtime import WorkerRuntime


def load_variant(runtime: WorkerRuntime, model: str, ref: str) -> Variant:
    """Load ``ref`` for a resident model, its tensors moved to the model's device.

    Raises:
        VariantNotFoundError: deleted since the job was submitted (the task fails with a 404).
        ValueError: a corrupt variant, or one made for another hidden size.
    """
    lm = runtime.registry.get(model)
    variant = VariantStore(runtime.settings.variant_store).load(model, ref)
    if variant.manifest.get("hidden_size") != lm.hidden_size:
        raise ValueError(f"variant {variant.ref} was made for hidden size {variant.manifest.get('hidden_size')}; "
                         f"{model} has {lm.hidden_size}")
    return variant.on(lm.device)


@contextmanager
def on_variant(runtime: WorkerRuntime, model: str, ref: str | None) -> Iterator[Variant | None]:
    """Inside the block, this thread's passes on ``model`` run on variant ``ref`` (None: the base model).

    The plan is removed in ``finally`` by the runtime, whatever the task raises.
    """
    if ref is None:
        yield None
        return
    variant = load_variant(runtime, model, ref)
    with runtime.registry.runtime(model).active(PassPlan.of_variant(variant.components)):
        yield variant

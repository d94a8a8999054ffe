"""What an operation is given: the facts a check can use, the resident model a run needs, the stores.

`Facts` is what the host knows about the model when a request arrives: the API may hold the model
(tokenizer and shape) or only a worker's report of its depth; the worker always holds it. A check
uses what it is given and leaves the rest to the check that runs again in the worker, so the same
rule fires with the same answer in both places. `Resident` is what a run needs: the model, its
intervention runtime, the settings and the caller's stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from config.settings import Settings
from engine.loading import LoadedModel
from engine.runtime import InterventionRuntime
from store.variants import VariantStore
from store.vectors import VectorStore


@dataclass(frozen=True)
class Stores:
    """One tenant's stored variants and vectors (shared by the API and the workers on disk).

    Another tenant's entry is as unknown as a missing one: stores are per tenant by root
    (`Settings.variant_store_for`), so no lookup can cross tenants.
    """

    variants: VariantStore
    vectors: VectorStore

    @classmethod
    def of(cls, settings: Settings, tenant: str) -> Stores:
        """The stores of ``tenant`` under the settings' data directories."""
        return cls(VariantStore(settings.variant_store_for(tenant)), VectorStore(settings.vector_store_for(tenant)))


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What a check may use about the request's model.

    Attributes:
        model: the resolved model name.
        settings: the stack's settings (the limits).
        stores: the caller's stores (references are pinned against them).
        lm: the model, when this process holds it (its tokenizer and shape).
        reported_layers: asks for the model's depth as a live worker reported it, when ``lm`` is None
            (called only by a check that needs it: most requests never do).
    """

    model: str
    settings: Settings
    stores: Stores
    lm: LoadedModel | None = None
    reported_layers: Callable[[], int | None] | None = None

    @property
    def n_layers(self) -> int | None:
        """The model's block count, or None while nobody has reported it (the worker checks)."""
        if self.lm is not None:
            return self.lm.n_layers
        return self.reported_layers() if self.reported_layers is not None else None

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        return self.lm.tokenizer if self.lm is not None else None


@dataclass(frozen=True, kw_only=True)
class Resident:
    """What running an operation needs: the model resident in this process, and the caller's stores.

    Attributes:
        lm: the model.
        runtime: its intervention runtime (the hooks every forward pass goes through).
        settings: the stack's settings.
        stores: the caller's stores.
        job_id: the job being run, recorded in what it stores (None outside a job).
        record_output: records what a job is about to publish (`ops.outputs`); None outside a job.
    """

    lm: LoadedModel
    runtime: InterventionRuntime
    settings: Settings
    stores: Stores
    job_id: str | None = None
    record_output: Callable[[dict[str, Any]], None] | None = None

    @property
    def model(self) -> str:
        return self.lm.name

    @property
    def facts(self) -> Facts:
        """The facts a check gets in the process that holds the model: all of them."""
        return Facts(model=self.lm.name, settings=self.settings, stores=self.stores, lm=self.lm)

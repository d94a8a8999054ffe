"""Streaming the residual stream of labelled texts, one batch at a time.

Erasure fits on far more examples than steering, so nothing here holds every activation: each
batch of texts yields its rows and is dropped. A row is one vector per text (``last`` non-pad
token, or the ``mean`` over tokens) or one per token (``all``), always tagged with the text it
came from so the caller can route it (fitting split, held-out split) and label it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from engine.components import Component
from engine.hooks import record
from engine.loading import LoadedModel
from engine.padding import padded_batches
from engine.pass_plan import PassPlan
from engine.runtime import InterventionRuntime
from engine.scoring import encode_texts
from engine.sites import Site
from engine.steering.extraction import check_layers

READINGS = ("last", "mean", "all")

#: Called after each batch with (texts done, texts in all); may raise to stop the work.
BatchCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ActivationBatch:
    """The rows one batch of texts produced.

    Attributes:
        texts: ``[rows]`` long, the index (in the caller's list) of the text each row comes from.
        layers: layer -> ``[rows, hidden]`` float32 on CPU, ordinary (not inference) tensors.
    """

    texts: torch.Tensor
    layers: dict[int, torch.Tensor]


def stream_activations(
    lm: LoadedModel,
    texts: Sequence[str],
    layers: Sequence[int],
    *,
    reading: str,
    batch_size: int = 32,
    runtime: InterventionRuntime | None = None,
    variant: Sequence[Component] = (),
    on_batch: BatchCallback | None = None,
) -> Iterator[ActivationBatch]:
    """Read the output of each block in ``layers`` for every text, batch by batch.

    Texts are sorted by length and right-padded (causal attention never reads the pads); rows
    come in that order, each tagged with its text. Pooling happens in float32 whatever the
    model's dtype, on the model's device, so only pooled rows travel to the CPU.

    Args:
        lm: the resident model.
        texts: each must encode to at least one token.
        layers: distinct block indices.
        reading: ``last``, ``mean`` or ``all`` (every non-pad token is a row).
        batch_size: texts per forward pass.
        runtime: the model's runtime; needed when ``variant`` is not empty.
        variant: components to run the model with (a parent variant): activations are read from it.
        on_batch: progress and cancellation hook, called after each batch.
    """
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}; known: {', '.join(READINGS)}")
    check_layers(list(layers), lm.n_layers)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if variant and runtime is None:
        raise ValueError("reading a variant needs the model's intervention runtime")
    encoded = encode_texts(lm, texts)
    if empty := [i for i, ids in enumerate(encoded) if not ids]:
        raise ValueError(f"text {empty[0]} encodes to no token")
    plan = PassPlan.of_variant(variant) if variant else None
    for batch in padded_batches(encoded, batch_size, lm.tokenizer.pad_token_id or 0):
        chunk, ids, mask, lengths = batch.indices, batch.ids, batch.mask, batch.lengths
        with torch.inference_mode(), record(lm, [Site("residual", layer) for layer in layers]) as recording, \
                runtime.active(plan) if (runtime is not None and plan is not None) else contextlib.nullcontext():
            recording.run(lm.model, input_ids=ids.to(lm.device), attention_mask=mask.long().to(lm.device),
                          use_cache=False)
        mask, lengths = mask.to(lm.device), lengths.to(lm.device)
        owners = torch.tensor(chunk)
        if reading == "all":
            owners = owners[:, None].expand(-1, ids.shape[1])[mask.cpu()]
        pooled: dict[int, torch.Tensor] = {}
        for layer in layers:
            hidden = recording.tensors[Site("residual", layer)].float()
            if reading == "last":
                rows = hidden[torch.arange(len(chunk), device=lm.device), lengths - 1]
            elif reading == "mean":
                rows = (hidden * mask[..., None]).sum(1) / lengths[:, None]
            else:
                rows = hidden[mask]
            pooled[layer] = rows.cpu().clone()  # clone: an ordinary tensor, whatever mode made it
        yield ActivationBatch(texts=owners, layers=pooled)
        if on_batch is not None:
            on_batch(batch.done, len(encoded))

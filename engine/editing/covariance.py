"""Covariance statistics of MLP keys: the uncentred second moment ``C = E[k k^T]`` per layer.

``k`` is the input of a block's MLP output projection at every token of a corpus. ROME solves with
``C^-1`` and MEMIT weighs ``lambda C`` against the edited keys, so that an edit changes the outputs
of the keys the model usually meets as little as possible. A `KeyStatisticsFitter` accumulates
``sum k k^T`` in float64 (streaming, any number of batches) and builds a frozen `KeyStatistics`;
`key_statistics` reads several layers' keys from one set of forward passes over some documents.

Computing them takes minutes, so they are computed once and kept on disk by
`store.statistics.StatisticsCache`, which decides when to call `key_statistics` and on which text.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from engine.adapters import linear_dims
from engine.hooks import record
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.sites import Site, mlp_out_names

log = logging.getLogger(__name__)

WINDOW = 256  # tokens per sequence read (fewer if the model's positions end sooner)
BATCH_TOKENS = 4096  # tokens per forward pass


@dataclass(frozen=True, eq=False)
class KeyStatistics:
    """The second moment of one layer's MLP keys.

    Attributes:
        layer: block index.
        module: qualified name of the MLP output projection whose inputs are the keys.
        second_moment: ``E[k k^T]``, ``[in, in]`` float32 (CPU).
        count: keys averaged.
        corpus_sha256: hash of the text the keys were read from.
    """

    layer: int
    module: str
    second_moment: torch.Tensor
    count: int
    corpus_sha256: str

    def content_hash(self) -> str:
        """sha256 of the facts and the tensor bytes (recorded in an edit's manifest)."""
        digest = hashlib.sha256(f"{self.layer}\n{self.module}\n{self.count}\n{self.corpus_sha256}\n".encode())
        digest.update(self.second_moment.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()


class KeyStatisticsFitter:
    """Accumulates ``sum k k^T`` and the count in float64, batch by batch."""

    def __init__(self, layer: int, module: str, dim: int, corpus_sha256: str = "") -> None:
        self.layer, self.module, self.corpus_sha256 = layer, module, corpus_sha256
        self._sum = torch.zeros(dim, dim, dtype=torch.float64)
        self.count = 0

    def update(self, keys: torch.Tensor) -> None:
        """Add keys ``[n, in]`` (any dtype or device)."""
        wide = keys.detach().to("cpu", torch.float64)
        self._sum += wide.T @ wide
        self.count += int(wide.shape[0])

    def finalize(self) -> KeyStatistics:
        """The mean second moment so far (float32).

        Raises:
            ValueError: no key was added.
        """
        if self.count == 0:
            raise ValueError("no keys were added to the statistics")
        return KeyStatistics(self.layer, self.module, (self._sum / self.count).float(), self.count, self.corpus_sha256)


def token_batches(lm: LoadedModel, documents: Iterable[str]) -> Iterator[list[list[int]]]:
    """Each document's tokens in windows of `WINDOW`, packed into batches of about `BATCH_TOKENS`."""
    config = lm.model.config
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or WINDOW
    window = min(WINDOW, int(limit))
    batch: list[list[int]] = []
    for document in documents:
        ids = list(lm.tokenizer(document)["input_ids"])
        for start in range(0, len(ids), window):
            batch.append(ids[start: start + window])
            if len(batch) * window >= BATCH_TOKENS:
                yield batch
                batch = []
    if batch:
        yield batch


@torch.inference_mode()
def fit_key_statistics(lm: LoadedModel, layers: Sequence[int], batches: Iterable[list[list[int]]], *,
                       samples: int, progress: Progress | None = None) -> dict[int, KeyStatisticsFitter]:
    """Feed the keys of the first ``samples`` tokens (in order) to one fitter per layer.

    The passes run on the base model and stop after the deepest layer asked for.
    """
    progress = progress or Progress()
    names = mlp_out_names(lm)
    fitters = {layer: KeyStatisticsFitter(layer, names[layer], key_dim(lm, layer)) for layer in layers}
    pad = lm.tokenizer.pad_token_id or 0
    for batch in batches:
        progress.check()
        width = max(len(seq) for seq in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = True
        mask = mask.to(lm.device)
        with record(lm, [Site("mlp_key", layer) for layer in layers]) as recording:
            recording.run(lm.model.base_model, input_ids=ids.to(lm.device), attention_mask=mask.long(), use_cache=False)
        remaining = samples - next(iter(fitters.values())).count
        for layer, fitter in fitters.items():
            fitter.update(recording.tensors[Site("mlp_key", layer)][mask][:remaining])
        done = next(iter(fitters.values())).count
        progress.report(done / samples, f"key statistics: {done} of {samples} tokens")
        if done >= samples:
            break
    return fitters


def key_statistics(lm: LoadedModel, layers: Sequence[int], documents: Iterable[str], *, samples: int,
                   corpus_sha256: str, progress: Progress | None = None) -> dict[int, KeyStatistics]:
    """Each layer's statistics over the keys of the first ``samples`` tokens of ``documents``.

    Args:
        lm: the model (its base weights: the passes run without any variant).
        layers: block indices, read together in one set of forward passes.
        documents: the corpus, in reading order.
        samples: keys (token positions) to average; fewer when the documents run out (logged).
        corpus_sha256: the hash of the documents, recorded in each result.
        progress: reports and cancellation between batches.

    Raises:
        CanceledError: ``progress`` was told to stop.
    """
    fitters = fit_key_statistics(lm, layers, token_batches(lm, documents), samples=samples, progress=progress)
    count = next(iter(fitters.values())).count
    if count < samples:
        log.warning("the statistics corpus holds %d tokens, fewer than the %d asked for", count, samples)
    for fitter in fitters.values():
        fitter.corpus_sha256 = corpus_sha256
    return {layer: fitter.finalize() for layer, fitter in fitters.items()}


def key_dim(lm: LoadedModel, layer: int) -> int:
    """The width of block ``layer``'s MLP keys (the input of its output projection)."""
    return linear_dims(lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[layer]))[0]

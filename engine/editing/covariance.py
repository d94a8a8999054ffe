"""Covariance statistics of MLP keys: the uncentred second moment ``C = E[k k^T]`` per layer, cached.

``k`` is the input of a block's MLP output projection at every token of a corpus. ROME solves with
``C^-1`` and MEMIT weighs ``lambda C`` against the edited keys, so that an edit changes the outputs
of the keys the model usually meets as little as possible. A `KeyStatisticsFitter` accumulates
``sum k k^T`` in float64 (streaming, any number of batches) and builds a frozen `KeyStatistics`.

`StatisticsCache` keeps one safetensors + JSON pair per model, layer, corpus and sample size,
computed once: under an ``flock``, so two workers never compute the same thing twice, written
atomically (JSON last, holding the tensor file's sha256, which is checked on every load; a file
that fails the check is recomputed). Several layers share one set of forward passes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch

from engine.adapters import linear_dims
from engine.durable_files import locked, write_atomic, write_json
from engine.editing.corpus import Corpus, file_corpus, rounds_sha256, sampled_rounds
from engine.editing.files import model_dir, sha256_bytes
from engine.editing.progress import Progress
from engine.hooks import record
from engine.loading import LoadedModel
from engine.sites import Site, mlp_out_names

log = logging.getLogger(__name__)

WINDOW = 256  # tokens per sequence read (fewer if the model's positions end sooner)
BATCH_TOKENS = 4096  # tokens per forward pass
FORMAT_VERSION = 1


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
    fitters = {layer: KeyStatisticsFitter(layer, names[layer], _key_dim(lm, layer)) for layer in layers}
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


class StatisticsCache:
    """Key statistics on disk under ``root``, computed once per model, layer, corpus and sample size."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_or_compute(self, lm: LoadedModel, layer: int, *, samples: int, corpus: Path | None = None,
                       seed: int = 0, on_progress: Callable[[float, str], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> KeyStatistics:
        """One layer's statistics (see `get_or_compute_many`)."""
        return self.get_or_compute_many(lm, [layer], samples=samples, corpus=corpus, seed=seed,
                                        on_progress=on_progress, should_stop=should_stop)[layer]

    def get_or_compute_many(self, lm: LoadedModel, layers: Sequence[int], *, samples: int,
                            corpus: Path | None = None, seed: int = 0,
                            on_progress: Callable[[float, str], None] | None = None,
                            should_stop: Callable[[], bool] | None = None) -> dict[int, KeyStatistics]:
        """Load each layer's statistics, computing the missing ones in one set of forward passes.

        Args:
            lm: the model (its base weights: statistics never depend on a variant).
            layers: block indices.
            samples: keys (token positions) to average.
            corpus: a text file or a directory of ``.txt`` files; None samples text from the model
                with ``seed`` (and stores it beside the statistics).
            seed: seed of the self-sampled corpus.
            on_progress: ``(fraction, message)`` while computing (not called on a cache hit).
            should_stop: checked between batches; True raises `EditCancelledError`.

        Raises:
            ValueError: a layer out of range, a non-positive sample size, or a missing corpus.
            EditCancelledError: ``should_stop`` said so.
        """
        if samples < 1:
            raise ValueError(f"samples must be positive; got {samples}")
        if bad := [layer for layer in layers if not 0 <= layer < lm.n_layers]:
            raise ValueError(f"layers {bad} are outside the model's blocks 0..{lm.n_layers - 1}")
        given = file_corpus(corpus) if corpus is not None else None
        tag = given.tag if given is not None else f"self-s{seed}"
        found = {layer: self._load(lm, layer, tag, samples) for layer in layers}
        if all(stats is not None for stats in found.values()):
            return {layer: stats for layer, stats in found.items() if stats is not None}
        with locked(model_dir(self.root, lm) / ".statistics.lock"):
            found = {layer: self._load(lm, layer, tag, samples) for layer in layers}  # computed while we waited?
            missing = [layer for layer, stats in found.items() if stats is None]
            if missing:
                progress = Progress(on_progress, should_stop)
                for layer, stats in self._compute(lm, missing, given, seed, samples, progress).items():
                    self._store(lm, stats, tag, samples)
                    found[layer] = stats
        return {layer: stats for layer, stats in found.items() if stats is not None}

    def _compute(self, lm: LoadedModel, layers: list[int], given: Corpus | None, seed: int, samples: int,
                 progress: Progress) -> dict[int, KeyStatistics]:
        if given is not None:
            fitters = fit_key_statistics(lm, layers, token_batches(lm, given.documents), samples=samples,
                                         progress=progress)
            sha = given.sha256
        else:
            # Sample (or read back) the whole corpus first: the sampling dominates, and progress stays monotone.
            used = list(sampled_rounds(lm, self.root, seed=seed, min_tokens=samples, progress=progress.span(0.0, 0.8)))
            documents = [text for texts in used for text in texts]
            fitters = fit_key_statistics(lm, layers, token_batches(lm, documents), samples=samples,
                                         progress=progress.span(0.8, 1.0))
            sha = rounds_sha256(used)
        count = next(iter(fitters.values())).count
        if count < samples:
            log.warning("the statistics corpus holds %d tokens, fewer than the %d asked for", count, samples)
        for fitter in fitters.values():
            fitter.corpus_sha256 = sha
        return {layer: fitter.finalize() for layer, fitter in fitters.items()}

    def _paths(self, lm: LoadedModel, module: str, tag: str, samples: int) -> tuple[Path, Path]:
        base = model_dir(self.root, lm) / f"{module}.{tag}.n{samples}"
        return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")

    def _load(self, lm: LoadedModel, layer: int, tag: str, samples: int) -> KeyStatistics | None:
        module = mlp_out_names(lm)[layer]
        tensor_path, facts_path = self._paths(lm, module, tag, samples)
        try:
            facts = json.loads(facts_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("unreadable statistics record %s: recomputing", facts_path)
            return None
        try:
            data = tensor_path.read_bytes()
            if sha256_bytes(data) != facts.get("file_sha256"):
                raise ValueError("sha256 mismatch")
            moment = safetensors.torch.load(data)["second_moment"]
            dim = _key_dim(lm, layer)
            if tuple(moment.shape) != (dim, dim):
                raise ValueError(f"shape {tuple(moment.shape)}, expected ({dim}, {dim})")
            return KeyStatistics(layer, module, moment, int(facts["count"]), str(facts["corpus_sha256"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("corrupt statistics file %s (%s): recomputing", tensor_path, exc)
            return None

    def _store(self, lm: LoadedModel, stats: KeyStatistics, tag: str, samples: int) -> None:
        tensor_path, facts_path = self._paths(lm, stats.module, tag, samples)
        data = safetensors.torch.save({"second_moment": stats.second_moment.contiguous()})
        write_atomic(tensor_path, data)
        write_json(facts_path, {"format": FORMAT_VERSION, "model": lm.name, "layer": stats.layer,
                                "module": stats.module, "count": stats.count, "samples": samples,
                                "corpus": tag, "corpus_sha256": stats.corpus_sha256,
                                "file_sha256": sha256_bytes(data), "content_hash": stats.content_hash()})


def _key_dim(lm: LoadedModel, layer: int) -> int:
    return linear_dims(lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[layer]))[0]

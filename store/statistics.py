"""Key statistics on disk: computed once per model, layer, corpus and sample size, then read back.

ROME and MEMIT need each edited layer's `engine.editing.covariance.KeyStatistics`, which take
minutes to compute (and longer when the model must first sample its own corpus). `StatisticsCache`
keeps one safetensors + JSON pair per entry::

    <root>/<model>-<fingerprint>/<module>.<corpus tag>.n<samples>.safetensors   {"second_moment"}
    <root>/<model>-<fingerprint>/<module>.<corpus tag>.n<samples>.json          facts + file_sha256

The corpus tag is ``file-<hash>`` for a given corpus and ``self-s<seed>`` for the model's own text
(its rounds are kept beside, `store.sampled_texts`). Missing entries are computed under an
``flock`` (two workers never compute the same thing twice; several layers share one set of forward
passes) and written atomically, the JSON last: it holds the tensor file's sha256, checked on every
load, and a file that fails the check is computed again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import safetensors.torch

from engine.editing.corpus import Corpus, file_corpus, rounds_sha256
from engine.editing.covariance import KeyStatistics, key_dim, key_statistics
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.sites import mlp_out_names
from store.durable import locked, write_atomic, write_json
from store.integrity import check_finite, sha256_bytes
from store.sampled_texts import model_dir, sampled_rounds

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


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
            should_stop: checked between batches; True raises `CanceledError`.

        Raises:
            ValueError: a layer out of range, a non-positive sample size, or a missing corpus.
            CanceledError: ``should_stop`` said so.
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
            return key_statistics(lm, layers, given.documents, samples=samples, corpus_sha256=given.sha256,
                                  progress=progress)
        # Sample (or read back) the whole corpus first: the sampling dominates, and progress stays monotone.
        used = list(sampled_rounds(lm, self.root, seed=seed, min_tokens=samples, progress=progress.span(0.0, 0.8)))
        documents = [text for texts in used for text in texts]
        return key_statistics(lm, layers, documents, samples=samples, corpus_sha256=rounds_sha256(used),
                              progress=progress.span(0.8, 1.0))

    def _paths(self, lm: LoadedModel, module: str, tag: str, samples: int) -> tuple[Path, Path]:
        base = model_dir(self.root, lm) / f"{module}.{tag}.n{samples}"
        return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")

    def _load(self, lm: LoadedModel, layer: int, tag: str, samples: int) -> KeyStatistics | None:
        """The stored entry, or None when it is missing or damaged (logged: it is computed again)."""
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
            dim = key_dim(lm, layer)
            if tuple(moment.shape) != (dim, dim):
                raise ValueError(f"shape {tuple(moment.shape)}, expected ({dim}, {dim})")
            check_finite({"second_moment": moment}, f"key statistics of layer {layer}")
            return KeyStatistics(layer, module, moment, int(facts["count"]), str(facts["corpus_sha256"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("corrupt statistics file %s (%s): recomputing", tensor_path, exc)
            return None

    def _store(self, lm: LoadedModel, stats: KeyStatistics, tag: str, samples: int) -> None:
        # Statistics with a NaN would make every edit on this layer NaN, and be kept for good.
        check_finite({"second_moment": stats.second_moment}, f"key statistics of layer {stats.layer}")
        tensor_path, facts_path = self._paths(lm, stats.module, tag, samples)
        data = safetensors.torch.save({"second_moment": stats.second_moment.contiguous()})
        write_atomic(tensor_path, data)
        write_json(facts_path, {"format": FORMAT_VERSION, "model": lm.name, "layer": stats.layer,
                                "module": stats.module, "count": stats.count, "samples": samples,
                                "corpus": tag, "corpus_sha256": stats.corpus_sha256,
                                "file_sha256": sha256_bytes(data), "content_hash": stats.content_hash()})

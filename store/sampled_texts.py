"""The editing caches' texts the model wrote itself, sampled once and kept: corpus rounds, context templates.

Both are sampled by the engine (`engine.editing.corpus.sample_round`,
`engine.editing.context_templates.sample_templates`) with a fixed seed, slowly on a CPU, and must
be the same in every process for edits to be reproducible; this module decides when to sample and
keeps the result as JSON beside the key statistics (`store.statistics`)::

    <root>/<model>-<fingerprint>/corpus-self-s<seed>.json    {"format", "model", "seed", "rounds"}
    <root>/<model>-<fingerprint>/templates-s<seed>.json      {"format", "model", "seed", "templates"}

Files are keyed by a model's *fingerprint* (its name, source and configuration), so two models
served under one name, or a name reused for another model, never share them. Sampling happens
under an ``flock`` beside the file, so two workers never sample the same thing twice, and every
write is atomic (`store.durable`), so a crash never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from engine.editing.context_templates import sample_templates
from engine.editing.corpus import sample_round
from engine.loading import LoadedModel
from engine.progress import Progress
from store.durable import locked, write_json

FORMAT_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def model_dir(root: Path, lm: LoadedModel) -> Path:
    """``root/<name>-<fingerprint>``: where one model's cached editing files live."""
    config = lm.model.config.to_json_string(use_diff=False)
    fingerprint = hashlib.sha256(f"{lm.name}\n{lm.source}\n{config}".encode()).hexdigest()[:12]
    name = _UNSAFE.sub("_", lm.name).strip("._") or "model"
    return Path(root) / f"{name}-{fingerprint}"


def sampled_rounds(lm: LoadedModel, cache_dir: Path, *, seed: int, min_tokens: int,
                   progress: Progress | None = None) -> Iterator[list[str]]:
    """Yield the model's own texts round by round until they hold at least ``min_tokens`` tokens.

    Rounds already stored are read back; new ones are sampled, appended to the store and yielded.
    The file's lock is held until the generator is exhausted or closed.

    Args:
        lm: the model.
        cache_dir: the editing caches' directory.
        seed: seeds the sampling.
        min_tokens: stop after the round that reaches this many tokens.
        progress: reports and cancellation while sampling.

    Raises:
        CanceledError: ``progress`` was told to stop (the rounds sampled so far are kept).
    """
    progress = progress or Progress()
    path = model_dir(cache_dir, lm) / f"corpus-self-s{seed}.json"
    tokens = 0
    with locked(path.with_name(f".{path.name}.lock")):
        rounds = _read_rounds(path, seed)
        index = 0
        while tokens < min_tokens:
            if index == len(rounds):
                progress.check()
                rounds.append(sample_round(lm, seed=seed, index=index, progress=progress))
                write_json(path, {"format": FORMAT_VERSION, "model": lm.name, "seed": seed, "rounds": rounds})
            texts = rounds[index]
            tokens += sum(len(lm.tokenizer(t)["input_ids"]) for t in texts)
            index += 1
            progress.report(tokens / min_tokens, f"corpus: {tokens} of {min_tokens} tokens")
            yield texts


def context_templates(lm: LoadedModel, cache_dir: Path, *, seed: int) -> list[str]:
    """The model's context templates for ``seed``: read from ``cache_dir``, or sampled once and stored.

    Args:
        lm: the model.
        cache_dir: the editing caches' directory (one JSON file per model and seed).
        seed: seeds the sampling.

    Returns:
        ``"{}"`` first, then the sampled templates; each contains ``"{}"`` once.
    """
    path = model_dir(cache_dir, lm) / f"templates-s{seed}.json"
    cached = _read_templates(path, seed)
    if cached is not None:
        return cached
    with locked(path.with_name(f".{path.name}.lock")):
        cached = _read_templates(path, seed)  # another process may have written it while we waited
        if cached is not None:
            return cached
        templates = sample_templates(lm, seed=seed)
        write_json(path, {"format": FORMAT_VERSION, "model": lm.name, "seed": seed, "templates": templates})
        return templates


def _read_rounds(path: Path, seed: int) -> list[list[str]]:
    """The rounds stored at ``path`` for ``seed``; none when missing, torn or foreign."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or data.get("seed") != seed:
        return []
    rounds = data.get("rounds")
    if not isinstance(rounds, list):
        return []
    return [r for r in rounds if isinstance(r, list) and all(isinstance(t, str) for t in r)]


def _read_templates(path: Path, seed: int) -> list[str] | None:
    """The templates stored at ``path`` for ``seed``; None when missing, torn or not templates."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or torn: sample again (the write is atomic, so only a foreign file is torn)
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or data.get("seed") != seed:
        return None
    templates = data.get("templates")
    if not isinstance(templates, list) or not templates or not all(
            isinstance(t, str) and t.count("{}") == 1 for t in templates):
        return None
    return templates

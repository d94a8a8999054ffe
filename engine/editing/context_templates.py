"""Context templates: short texts the model itself wrote, each ending in ``"{}"`` where the prompt goes.

ROME and MEMIT read a fact's key, and optimise its value, over the edit prompt preceded by several
such prefixes, so the edit holds whatever text comes before it. The templates are sampled from the
model with a fixed seed (MEMIT's prefixes "The", "Therefore", "Because", "I", "You"; 10- and
5-token continuations, as in the papers) and stored as JSON, so every later edit, in any process,
uses the same ones and edits are reproducible.

Order: ``"{}"`` (the bare prompt) first, then one 10-token template per prefix (MEMIT's six are the
first six), then 5-token ones, then a second round of each (ROME's 21 are all of them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.durable_files import locked, write_json
from engine.editing.files import model_dir
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel

PREFIXES: tuple[str, ...] = ("The", "Therefore", "Because", "I", "You")
#: (tokens per continuation) per round, in the stored order.
ROUNDS: tuple[int, ...] = (10, 5, 10, 5)
FORMAT_VERSION = 1


def context_templates(lm: LoadedModel, cache_dir: Path, *, seed: int) -> list[str]:
    """The model's context templates for ``seed``: read from ``cache_dir``, or sampled once and stored.

    Args:
        lm: the model.
        cache_dir: where templates are kept (one JSON file per model and seed).
        seed: seeds the sampling.

    Returns:
        ``1 + len(PREFIXES) * len(ROUNDS)`` templates, ``"{}"`` first; each contains ``"{}"`` once.
    """
    path = model_dir(cache_dir, lm) / f"templates-s{seed}.json"
    cached = _read(path, seed)
    if cached is not None:
        return cached
    with locked(path.with_name(f".{path.name}.lock")):
        cached = _read(path, seed)  # another process may have written it while we waited
        if cached is not None:
            return cached
        templates = sample_templates(lm, seed=seed)
        write_json(path, {"format": FORMAT_VERSION, "model": lm.name, "seed": seed, "templates": templates})
        return templates


def sample_templates(lm: LoadedModel, *, seed: int) -> list[str]:
    """Sample the templates (no cache). Deterministic for a model, seed and torch build."""
    templates = ["{}"]
    for round_index, length in enumerate(ROUNDS):
        rows = []
        for i, prefix in enumerate(PREFIXES):
            params = SamplingParams(max_new_tokens=length, temperature=1.0, top_p=0.9,
                                    seed=seed * 1_000_003 + round_index * 101 + i)
            rows.append(GenerationRow(list(lm.tokenizer(prefix)["input_ids"]), params))
        for prefix, out in zip(PREFIXES, generate_batch(lm, rows), strict=True):
            templates.append(f"{clean(prefix + out.text)}. {{}}")
    return templates


def clean(text: str) -> str:
    """One line without braces (``str.format`` and our ``{}`` slot must not see any)."""
    return re.sub(r"\s+", " ", text.replace("{", " ").replace("}", " ")).strip()


def _read(path: Path, seed: int) -> list[str] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or torn: sample again (the write is atomic, so only a foreign file is torn)
    templates = data.get("templates") if isinstance(data, dict) else None
    if (data.get("format") != FORMAT_VERSION or data.get("seed") != seed or not isinstance(templates, list)
            or not templates or not all(isinstance(t, str) and t.count("{}") == 1 for t in templates)):
        return None
    return templates

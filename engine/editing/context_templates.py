"""Context templates: short texts the model itself wrote, each ending in ``"{}"`` where the prompt goes.

ROME and MEMIT read a fact's key, and optimise its value, over the edit prompt preceded by several
such prefixes, so the edit holds whatever text comes before it. The templates are sampled from the
model with a fixed seed (MEMIT's prefixes "The", "Therefore", "Because", "I", "You"; 10- and
5-token continuations, as in the papers) by `sample_templates`, and kept on disk by
`store.sampled_texts.context_templates`, so every later edit, in any process, uses the same ones
and edits are reproducible.

Order: ``"{}"`` (the bare prompt) first, then one 10-token template per prefix (MEMIT's six are the
first six), then 5-token ones, then a second round of each (ROME's 21 are all of them).
"""

from __future__ import annotations

import re

from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel

PREFIXES: tuple[str, ...] = ("The", "Therefore", "Because", "I", "You")
#: (tokens per continuation) per round, in the stored order.
ROUNDS: tuple[int, ...] = (10, 5, 10, 5)


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

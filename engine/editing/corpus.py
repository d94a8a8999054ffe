"""The text whose MLP keys make up the covariance statistics: sampled from the model, or given as files.

No dataset hub is reachable, so the default corpus is the model's own text: continuations of short,
ordinary openings, sampled with a fixed seed in *rounds* of `ROUND_ROWS` texts (`sample_round`).
Round ``j`` is the same whatever the sample size, so a larger sample extends a smaller one; the
rounds already sampled are kept on disk and reused by every layer and every later process
(`store.sampled_texts.sampled_rounds`). A local text file (one document) or a directory of ``.txt``
files (one document each, in name order) can be given instead; its bytes are hashed, so statistics
are tied to the exact text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.generation import stop_token_ids
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.prompts import decode

OPENINGS: tuple[str, ...] = (
    "The", "In", "A", "It", "When", "This", "I", "We", "He", "She", "They", "My", "One", "There",
    "After", "According to", "Today", "If", "Many", "During", "Although", "For", "On", "As",
    "Scientists", "The city of", "History", "In 1990,", "Once", "Most people", "Our", "Why",
)
ROUND_ROWS = 64
TEXT_TOKENS = 64


@dataclass(frozen=True)
class Corpus:
    """Documents to read keys from.

    Attributes:
        documents: the texts, in reading order.
        sha256: hash of exactly these documents (or of the files they came from).
        tag: a short file-name-safe name (``self-s0``, ``file-<hash>``) for cache keys.
    """

    documents: tuple[str, ...]
    sha256: str
    tag: str


def file_corpus(path: Path) -> Corpus:
    """A text file (one document) or a directory of ``.txt`` files (one each, sorted by name).

    Raises:
        ValueError: the path does not exist, or a directory holds no ``.txt`` file.
    """
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise ValueError(f"the statistics corpus directory {path} holds no .txt file")
    else:
        raise ValueError(f"the statistics corpus {path} does not exist")
    digest = hashlib.sha256()
    documents = []
    for file in files:
        data = file.read_bytes()
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        digest.update(hashlib.sha256(data).digest())
        documents.append(data.decode("utf-8", errors="replace"))
    sha = digest.hexdigest()
    return Corpus(tuple(documents), sha, f"file-{sha[:16]}")


def sample_round(lm: LoadedModel, *, seed: int, index: int, progress: Progress | None = None) -> list[str]:
    """Round ``index``: `ROUND_ROWS` continuations of the openings, `TEXT_TOKENS` tokens at most each.

    Plain sampling at temperature 1 (the model's own distribution: the keys it meets on its own
    text), all rows drawn from one seeded generator in one ``multinomial`` call per step, and the
    unembedding applied to the last position only: on a CPU, per-row top-p sorting and full-width
    logits cost as much as the model itself.
    """
    openings = [OPENINGS[(index * ROUND_ROWS + row) % len(OPENINGS)] for row in range(ROUND_ROWS)]
    prompts = [list(lm.tokenizer(text)["input_ids"]) for text in openings]
    generator = torch.Generator().manual_seed((seed * 1_000_003 + index) * 1_009)
    tokens = _sample(lm, prompts, generator, progress or Progress())
    stops = stop_token_ids(lm)
    texts = []
    for opening, row in zip(openings, tokens.tolist(), strict=True):
        cut = next((i for i, token in enumerate(row) if token in stops), len(row))
        texts.append(opening + decode(lm.tokenizer, row[:cut], skip_special_tokens=True))
    return texts


@torch.inference_mode()
def _sample(lm: LoadedModel, prompts: list[list[int]], generator: torch.Generator, progress: Progress) -> torch.Tensor:
    """``[rows, TEXT_TOKENS]`` sampled ids after left-padded prompts (rows after a stop token run on).

    Raises:
        CanceledError: the stop flag, checked before every step, was set.
    """
    n, width, device = len(prompts), max(len(p) for p in prompts), lm.device
    ids = torch.full((n, width), lm.tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    head = lm.adapter.unembedding(lm.model)
    past, step, sampled = None, ids, []
    for _ in range(TEXT_TOKENS):
        progress.check()
        out = lm.model.base_model(input_ids=step, attention_mask=mask, position_ids=positions,
                                  past_key_values=past, use_cache=True)
        past = out.past_key_values
        probs = torch.softmax(head(out.last_hidden_state[:, -1].contiguous()).float(), dim=-1)
        step = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
        sampled.append(step)
        mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
        positions = positions[:, -1:] + 1
    return torch.cat(sampled, dim=1).cpu()


def rounds_sha256(rounds: list[list[str]]) -> str:
    """The hash of sampled rounds, as recorded with the statistics read from them."""
    return hashlib.sha256(json.dumps(rounds, ensure_ascii=False).encode()).hexdigest()

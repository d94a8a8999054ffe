"""Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT").

Corrupt the subject: add Gaussian noise to the token embeddings of the subject's tokens, which
makes the model lose the fact. Then restore, one cell at a time, the clean activation at a
(layer, token) and see how much of the answer's probability comes back: the *indirect effect*.
Facts recalled by the MLPs light up at the subject's last token in early-to-middle layers.

As in the paper (and ROME's code), the noise standard deviation is three times the standard
deviation of the embeddings; ours is measured over the whole embedding matrix rather than over
the subjects of a dataset, so it needs no data. Noise is drawn on the CPU from a seeded generator,
so a trace is the same on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from engine.hooks import embed, record_sites
from engine.loading import LoadedModel
from engine.prompts import encode_input
from engine.tracing.grid import TraceGrid, check_grid, run_grid
from engine.tracing.patching import ChunkCallback, CleanRun, Kind, check_kinds, run_corrupted

#: Meng et al.: noise of 3 standard deviations of the embeddings.
NOISE_MULTIPLIER = 3.0
DEFAULT_WINDOW = 10


@dataclass(frozen=True, eq=False)
class CausalTrace:
    """A causal trace and how its corruption was made.

    Attributes:
        grid: the restored probabilities.
        subject: ``(start, end)`` token span that was corrupted (end exclusive).
        noise_scale: the standard deviation of the noise.
        seed: the noise generator's seed.
    """

    grid: TraceGrid
    subject: tuple[int, int]
    noise_scale: float
    seed: int


def embedding_std(lm: LoadedModel) -> float:
    """Standard deviation of every value of the token embedding matrix (computed in float64)."""
    weight = lm.adapter.embedding(lm.model).weight
    return float(weight.detach().double().std())


def subject_span(tokenizer: PreTrainedTokenizerBase, prompt: str, subject: str, *,
                 allow_special_tokens: bool = False) -> tuple[list[int], tuple[int, int]]:
    """Tokenise ``prompt`` and find the tokens covering the first occurrence of ``subject``.

    Special-token text in the prompt is plain text unless ``allow_special_tokens``.

    Returns:
        ``(input_ids, (start, end))``, the span end-exclusive.

    Raises:
        ValueError: the subject is empty or not in the prompt.
    """
    if not subject.strip():
        raise ValueError("the subject is empty")
    at = prompt.find(subject)
    if at < 0:
        raise ValueError(f"the subject {subject!r} does not occur in the prompt")
    encoded = encode_input(tokenizer, prompt=prompt, allow_special_tokens=allow_special_tokens)
    ids = encoded.ids
    covering = [i for i, (a, b) in enumerate(encoded.offsets) if b > a and a < at + len(subject) and b > at]
    if not covering:
        raise ValueError(f"no token of the prompt covers the subject {subject!r}")
    return ids, (covering[0], covering[-1] + 1)


def corrupt(lm: LoadedModel, input_ids: list[int], span: tuple[int, int], *, samples: int, scale: float,
            seed: int) -> torch.Tensor:
    """``[samples, seq, hidden]``: the prompt's embeddings with N(0, scale^2) noise on the span's tokens."""
    base = embed(lm, input_ids)
    generator = torch.Generator().manual_seed(seed)
    start, end = span
    noise = torch.randn(samples, end - start, base.shape[-1], generator=generator) * scale
    embeds = base.repeat(samples, 1, 1)
    embeds[:, start:end] += noise.to(device=embeds.device, dtype=embeds.dtype)
    return embeds


def causal_trace(
    lm: LoadedModel,
    input_ids: list[int],
    subject: tuple[int, int],
    answer: int,
    *,
    kinds: list[Kind],
    layers: list[int] | None = None,
    tokens: list[int] | None = None,
    window: int = DEFAULT_WINDOW,
    samples: int = 10,
    noise_scale: float | None = None,
    seed: int = 0,
    max_rows: int | None = None,
    on_chunk: ChunkCallback | None = None,
) -> CausalTrace:
    """Trace where the model recalls ``answer`` for the prompt ``input_ids``.

    Args:
        lm: the model.
        input_ids: ``[seq]`` the prompt.
        subject: ``(start, end)`` token span to corrupt.
        answer: the token whose probability is measured at the last position.
        kinds: site kinds to restore: ``residual``, ``mlp``, ``attention``.
        layers: grid rows (all layers when None).
        tokens: grid columns (all tokens when None; negative counts from the end).
        window: layers restored around each MLP/attention cell.
        samples: noise samples (corrupted rows).
        noise_scale: the noise standard deviation; ``3 x embedding_std`` when None.
        seed: seeds the noise.
        max_rows: rows per forward pass; automatic when None.
        on_chunk: progress and cancellation hook.
    """
    seq = len(input_ids)
    check_kinds(list(kinds))
    rows, columns = check_grid(lm, seq, layers, tokens, window)
    start, end = subject
    if not 0 <= start < end <= seq:
        raise ValueError(f"the subject span {subject} is not inside the prompt's {seq} tokens")
    if samples < 1:
        raise ValueError("samples must be at least 1")
    if not 0 <= answer < lm.adapter.embedding(lm.model).num_embeddings:
        raise ValueError(f"answer token id {answer} is outside the vocabulary")
    scale = NOISE_MULTIPLIER * embedding_std(lm) if noise_scale is None else float(noise_scale)
    if not scale > 0:
        raise ValueError("the noise scale must be positive")
    activations, logits = record_sites(lm, embed(lm, input_ids), list(kinds))
    corrupted = run_corrupted(lm, corrupt(lm, input_ids, subject, samples=samples, scale=scale, seed=seed), start)
    traced = run_grid(lm, CleanRun(activations, logits), corrupted, answer, kinds=list(kinds), layers=rows,
                      tokens=columns, window=window, max_rows=max_rows, on_chunk=on_chunk)
    return CausalTrace(grid=traced, subject=subject, noise_scale=scale, seed=seed)

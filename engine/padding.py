"""Right-padded batches of token sequences, sorted by length so that each batch pads little."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PaddedBatch:
    """One batch of sequences, right-padded.

    Causal attention never reads the pads, so a row's last real token sits at ``lengths - 1`` and
    its states equal those of the unpadded sequence.

    Attributes:
        indices: ``[rows]`` positions of the batch's sequences in the caller's list.
        ids: ``[rows, longest]`` token ids, pad-filled after each sequence's end (CPU).
        mask: ``[rows, longest]`` bool, True at real tokens.
        lengths: ``[rows]`` sequence lengths.
        done: sequences in this batch and every batch before it (for progress).
    """

    indices: list[int]
    ids: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    done: int


def padded_batches(sequences: Sequence[Sequence[int]], batch_size: int, pad_id: int) -> Iterator[PaddedBatch]:
    """Yield the sequences in batches of ``batch_size``, shortest first, right-padded with ``pad_id``.

    Raises:
        ValueError: a batch size under 1.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        lengths = torch.tensor([len(sequences[i]) for i in chunk])
        ids = torch.full((len(chunk), int(lengths.max())), pad_id, dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, : len(sequences[i])] = torch.as_tensor(list(sequences[i]), dtype=torch.long)
        mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        yield PaddedBatch(chunk, ids, mask, lengths, start + len(chunk))

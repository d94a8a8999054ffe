"""The logit lens (nostalgebraist 2020): decode the residual stream after every block.

The model's own prediction is ``unembedding(final_norm(h))`` of the last block's output ``h``.
Applying the same final norm and unembedding to the output of an earlier block shows what the
model would predict if it stopped there, so one can watch the answer form (or get lost) layer by
layer. At the last block the lens *is* the model's output distribution.

Block outputs are read with temporary hooks (`engine.hooks`), so a variant or steering
plan active in the intervention runtime is reflected in what the lens reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.hooks import embed, record_sites
from engine.loading import LoadedModel


@dataclass(frozen=True, eq=False)  # field-wise == would ask tensors for a single truth value
class LensReading:
    """What the lens shows at every layer and requested position.

    Attributes:
        positions: token positions read (non-negative, in request order).
        top_ids: ``[n_layers, n_positions, top_k]`` most probable tokens, most probable first.
        top_probs: ``[n_layers, n_positions, top_k]`` their probabilities.
        target_ids: the tracked tokens.
        target_probs: ``[n_layers, n_positions, n_targets]`` their probabilities.
        target_ranks: ``[n_layers, n_positions, n_targets]`` their ranks (1 = most probable).
    """

    positions: list[int]
    top_ids: torch.Tensor
    top_probs: torch.Tensor
    target_ids: list[int]
    target_probs: torch.Tensor
    target_ranks: torch.Tensor

    @property
    def n_layers(self) -> int:
        return int(self.top_ids.shape[0])


def resolve_positions(positions: list[int], seq: int) -> list[int]:
    """Map positions (negative counts from the end) to ``0..seq-1``, dropping repeats, keeping order.

    Raises:
        ValueError: a position is outside the prompt, or none is given.
    """
    if not positions:
        raise ValueError("give at least one position")
    resolved: list[int] = []
    for position in positions:
        absolute = position + seq if position < 0 else position
        if not 0 <= absolute < seq:
            raise ValueError(f"position {position} is outside the prompt's {seq} tokens")
        if absolute not in resolved:
            resolved.append(absolute)
    return resolved


@torch.inference_mode()
def decode_hidden(lm: LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
    """Next-token probabilities ``[..., vocab]`` (float32) read off residual states ``[..., hidden]``."""
    norm = lm.adapter.final_norm(lm.model)
    head = lm.adapter.unembedding(lm.model)
    return torch.softmax(head(norm(hidden)).float(), dim=-1)


def logit_lens(
    lm: LoadedModel,
    input_ids: list[int],
    positions: list[int],
    *,
    top_k: int = 5,
    targets: list[int] | None = None,
) -> LensReading:
    """Read the residual stream after every block at ``positions`` through the final norm and unembedding.

    Args:
        lm: the model.
        input_ids: ``[seq]`` the prompt.
        positions: positions to read (negative counts from the end).
        top_k: how many of the most probable tokens to keep per cell.
        targets: token ids whose probability and rank are reported at every cell.

    Returns:
        The reading; its last layer is the model's own next-token distribution.
    """
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    resolved = resolve_positions(positions, len(input_ids))
    if not 1 <= top_k <= vocab:
        raise ValueError(f"top_k must be in 1..{vocab}")
    target_ids = list(targets or [])
    if bad := [t for t in target_ids if not 0 <= t < vocab]:
        raise ValueError(f"target token ids {bad} are outside the vocabulary")
    recorded, _ = record_sites(lm, embed(lm, input_ids), ["residual"], positions=resolved)
    states = recorded["residual"]  # [n_layers, n_positions, hidden]
    tops, top_probs, target_probs, target_ranks = [], [], [], []
    wanted = torch.tensor(target_ids, dtype=torch.long, device=states.device)
    for layer_states in states:  # one layer at a time: [n_positions, vocab] probabilities at most
        probs = decode_hidden(lm, layer_states)
        best = probs.topk(top_k, dim=-1)
        tops.append(best.indices.cpu())
        top_probs.append(best.values.cpu())
        chosen = probs[:, wanted]  # [n_positions, n_targets]
        target_probs.append(chosen.cpu())
        # Rank 1 is the most probable token; ties share the better rank.
        target_ranks.append(((probs[:, None, :] > chosen[:, :, None]).sum(-1) + 1).cpu())
    return LensReading(positions=resolved, top_ids=torch.stack(tops), top_probs=torch.stack(top_probs),
                       target_ids=target_ids, target_probs=torch.stack(target_probs),
                       target_ranks=torch.stack(target_ranks))

"""Reading a diagnosis off the logit lens and a causal trace.

- *Where the answer forms or is lost* (lens, last position): the layer from which a token stays
  the lens's top prediction to the end is where it *settles*. A correct answer settles at some
  layer; for a wrong one, the layer where the wrong token settles is where it wins, and the
  expected token is *lost* after the last layer at which it was on top (if it ever was).
- *Which MLPs carry the subject* (trace): the MLP cells with the largest indirect effect on the
  subject's tokens. Meng et al. find them at the subject's last token in early-to-middle layers,
  which is where ROME edits; a model can also resolve a multi-token name before its last token
  ("Eiffel" before "Tower"), so every subject token is considered and the one used is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Trajectory:
    """How the expected and the predicted token fare through the layers (lens, last position).

    Attributes:
        correct: the model's prediction is the expected token.
        settles_at: first layer from which the final prediction stays the lens's top token.
        lost_at: (wrong answers) first layer after the last one where the expected token was on top;
            None if it never was.
        best_layer: the layer where the expected token's rank is best (highest probability on ties).
        best_rank: its rank there (1 = top).
    """

    correct: bool
    settles_at: int
    lost_at: int | None
    best_layer: int
    best_rank: int


@dataclass(frozen=True)
class SubjectMlp:
    """The MLP layers whose restoration brings the answer back most.

    Attributes:
        token: the subject token (position) with the largest MLP indirect effect.
        layers: layers at that token, strongest first, at least half the strongest effect.
        effects: their indirect effects, same order.
        peak_layer: the strongest layer.
        last_token_peak_layer: the strongest layer at the subject's last token (where ROME edits).
    """

    token: int
    layers: list[int]
    effects: list[float]
    peak_layer: int
    last_token_peak_layer: int


def settles_at(ranks: list[int]) -> int | None:
    """First layer from which ``ranks`` stay 1 to the end; None if the last one is not 1."""
    if not ranks or ranks[-1] != 1:
        return None
    layer = len(ranks) - 1
    while layer > 0 and ranks[layer - 1] == 1:
        layer -= 1
    return layer


def trajectory(expected_ranks: list[int], expected_probs: list[float], predicted_ranks: list[int]) -> Trajectory:
    """Summarise the lens at the last position.

    Args:
        expected_ranks: per layer, the expected token's rank.
        expected_probs: per layer, its probability.
        predicted_ranks: per layer, the rank of the model's final prediction.
    """
    correct = expected_ranks[-1] == 1
    # The prediction is the last layer's top token; in a near tie the lens's float rounding may rank it
    # second there, and then it settles only at the last layer.
    settles = settles_at(predicted_ranks)
    settles = len(predicted_ranks) - 1 if settles is None else settles
    best = min(range(len(expected_ranks)), key=lambda layer: (expected_ranks[layer], -expected_probs[layer]))
    lost = None
    if not correct:
        on_top = [layer for layer, rank in enumerate(expected_ranks) if rank == 1]
        lost = on_top[-1] + 1 if on_top else None
    return Trajectory(correct=correct, settles_at=settles, lost_at=lost, best_layer=best,
                      best_rank=expected_ranks[best])


def subject_mlp(effects: torch.Tensor, layers: list[int], tokens: list[int], subject: tuple[int, int]) -> SubjectMlp:
    """Find the MLP layers that carry the subject.

    Args:
        effects: ``[len(layers), len(tokens)]`` MLP indirect effects.
        layers: the grid's layers.
        tokens: the grid's token positions; must include the subject's last token.
        subject: ``(start, end)`` token span.
    """
    columns = [i for i, token in enumerate(tokens) if subject[0] <= token < subject[1]]
    last = tokens.index(subject[1] - 1) if subject[1] - 1 in tokens else None
    if not columns or last is None:
        raise ValueError("the trace grid does not cover the subject's tokens")
    sub = effects[:, columns]
    flat = int(sub.argmax())
    row, column = divmod(flat, sub.shape[1])
    strongest = float(sub[row, column])
    at_token = effects[:, columns[column]]
    order = sorted(range(len(layers)), key=lambda i: -float(at_token[i]))
    chosen = [i for i in order if float(at_token[i]) >= 0.5 * strongest] or order[:1]
    return SubjectMlp(token=tokens[columns[column]], layers=[layers[i] for i in chosen],
                      effects=[float(at_token[i]) for i in chosen], peak_layer=layers[row],
                      last_token_peak_layer=layers[int(effects[:, last].argmax())])

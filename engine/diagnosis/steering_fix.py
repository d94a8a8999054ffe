"""A steering fix for a wrong next token, verified before it is proposed.

The direction that raises ``logit(expected) - logit(predicted)`` when added to the residual stream
is, to first order, the difference of the two tokens' unembedding rows seen through the final
norm's gain: ``gamma * (W_U[expected] - W_U[predicted])`` (the norm's division by the state's scale
only rescales it). Added after a block, with a scale comparable to the residual stream's norm
there, it pushes the lens, and so the output, toward the expected token.

Candidates (layer, scale) are tried in one batched generation through the intervention runtime,
exactly as `/generate` would run them, and the smallest scale that makes the greedy next token the
expected one is proposed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.adapters import linear_weight
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import Steering
from engine.runtime import InterventionRuntime

#: Scales tried, as multiples of the residual stream's norm at the steered layer and last position.
RELATIVE_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True, eq=False)
class SteeringFix:
    """A proposed steering vector and what it did when tried.

    Attributes:
        layer: the block whose output receives the vector.
        vector: ``[hidden]`` float32, unit norm.
        alpha: the scale to use.
        positions: which tokens receive it (``prompt``: the answer is the next token).
        verified: the greedy next token under this steering is the expected token.
        next_token: the greedy next token under this steering.
        tried: (layer, alpha, greedy next token) of every candidate, in order.
    """

    layer: int
    vector: torch.Tensor
    alpha: float
    positions: str
    verified: bool
    next_token: int
    tried: list[tuple[int, float, int]]


def answer_direction(lm: LoadedModel, expected: int, predicted: int) -> torch.Tensor:
    """``[hidden]`` unit vector raising ``logit(expected) - logit(predicted)`` (float32, CPU)."""
    if expected == predicted:
        raise ValueError("the expected token is already the prediction: there is nothing to steer toward")
    weight = linear_weight(lm.adapter.unembedding(lm.model)).detach().float()
    direction = weight[expected] - weight[predicted]
    gain = getattr(lm.adapter.final_norm(lm.model), "weight", None)
    if isinstance(gain, torch.Tensor) and gain.shape == direction.shape:
        direction = direction * gain.detach().float()
    return (direction / direction.norm()).cpu()


def propose_steering(
    lm: LoadedModel,
    runtime: InterventionRuntime,
    input_ids: list[int],
    expected: int,
    predicted: int,
    layers: list[int],
    residual_norms: dict[int, float],
) -> SteeringFix:
    """Try the answer direction at each candidate layer and scale; keep the first that works.

    Args:
        lm: the model.
        runtime: its intervention runtime (the candidates run through it, like `/generate`).
        input_ids: ``[seq]`` the prompt.
        expected: the token the model should predict.
        predicted: the token it predicts.
        layers: candidate layers, most preferred first.
        residual_norms: layer -> the residual stream's norm at the last position (sets the scales).
    """
    if not layers:
        raise ValueError("no candidate layer to steer at")
    vector = answer_direction(lm, expected, predicted)
    candidates = [(layer, round(scale * residual_norms[layer], 3)) for layer in layers for scale in RELATIVE_SCALES]
    rows = [GenerationRow(input_ids, SamplingParams(max_new_tokens=1),
                          [Steering(layer, vector, alpha, "prompt")]) for layer, alpha in candidates]
    outputs = generate_batch(lm, rows, runtime)
    tried = [(layer, alpha, out.token_ids[0]) for (layer, alpha), out in zip(candidates, outputs, strict=True)]
    for layer in layers:  # the preferred layer with its smallest working scale
        working = [alpha for at, alpha, token in tried if at == layer and token == expected]
        if working:
            chosen = min(working)
            return SteeringFix(layer=layer, vector=vector, alpha=chosen, positions="prompt", verified=True,
                               next_token=expected, tried=tried)
    layer, alpha, token = tried[len(RELATIVE_SCALES) - 1]  # nothing worked: the strongest at the preferred layer
    return SteeringFix(layer=layer, vector=vector, alpha=alpha, positions="prompt", verified=False,
                       next_token=token, tried=tried)

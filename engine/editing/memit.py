"""MEMIT (Meng et al. 2023): many facts at once, spread over a range of MLP layers.

1. target ``z_i = z_i0 + delta_i`` for each fact at the *last* edited layer ``L``'s output (the
   residual stream at the subject's last token, averaged over the context templates), ``delta_i``
   optimised as in ROME (`engine.editing.values`, many facts per batch);
2. for each edited layer ``l`` in ascending order, on the variant with the deltas of the layers
   before it applied through the runtime: keys ``K`` (``[in, n]``, averaged over templates) and the
   current ``z`` at ``L``; the residual ``R = (Z - z) / (layers left)`` is written into ``l``'s MLP
   output projection by the batch least-squares update with the covariance prior

       Delta W = R K^T (lambda C + K K^T)^-1,

   stored as ``B = R`` (``[out, n]``) and ``A = ((lambda C + K K^T)^-1 K)^T`` (``[n, in]``), solved
   (never inverted) in float64.

Reading ``z`` averaged over the same templates as the keys keeps targets and keys consistent (the
r-ROME observation); the original read ``z`` from the bare prompt only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from engine.components import Component, LowRankDelta
from engine.editing.covariance import KeyStatistics
from engine.editing.hparams import EditHyperparams
from engine.editing.keys import read_fact_averages
from engine.editing.request import EditRequest
from engine.editing.values import ValueTarget, optimize_values
from engine.loading import LoadedModel
from engine.progress import Progress
from engine.runtime import InterventionRuntime
from engine.sites import Site, mlp_out_names


@dataclass(frozen=True, eq=False)
class MemitEdit:
    """A MEMIT edit and what it aimed at.

    Attributes:
        deltas: one per edited layer, in ascending order.
        goal: ``Z`` ``[facts, hidden]``, the target residuals at the last edited layer (float32, CPU).
        targets: the value optimisation's result per fact.
    """

    deltas: list[LowRankDelta]
    goal: torch.Tensor
    targets: list[ValueTarget]


def compute_memit(lm: LoadedModel, runtime: InterventionRuntime, requests: Sequence[EditRequest],
                  hp: EditHyperparams, stats: Mapping[int, KeyStatistics], templates: list[str], *,
                  parent: Sequence[Component] = (), on_progress: Callable[[float, str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> list[LowRankDelta]:
    """One delta per layer of ``hp.layers`` (rank ``len(requests)``) writing every request (see `memit_edit`)."""
    return memit_edit(lm, runtime, requests, hp, stats, templates, parent=parent, on_progress=on_progress,
                      should_stop=should_stop).deltas


def memit_edit(lm: LoadedModel, runtime: InterventionRuntime, requests: Sequence[EditRequest],
               hp: EditHyperparams, stats: Mapping[int, KeyStatistics], templates: list[str], *,
               parent: Sequence[Component] = (), on_progress: Callable[[float, str], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> MemitEdit:
    """Compute a MEMIT edit of every request.

    Args:
        lm: the model; runtime: its intervention runtime (hooks installed).
        requests: the facts (at least one).
        hp: hyperparameters.
        stats: key statistics for every layer of ``hp.layers``.
        templates: the context templates (the first ``hp.n_templates`` are used).
        parent: the components of the variant being edited.
        on_progress: ``(fraction, message)``; should_stop: checked between steps and layers.

    Raises:
        ValueError: no request, or statistics missing for a layer.
        CanceledError: ``should_stop`` said so.
    """
    if not requests:
        raise ValueError("MEMIT needs at least one request")
    if missing := [layer for layer in hp.layers if layer not in stats or stats[layer].layer != layer]:
        raise ValueError(f"key statistics are missing for layers {missing}")
    progress = Progress(on_progress, should_stop)
    used = templates[: hp.n_templates]
    last = hp.layers[-1]
    names = mlp_out_names(lm)
    batch_rows = max(64, hp.v_batch_facts * len(used))
    progress.report(0.0, f"reading {len(requests)} subjects at layer {last}")
    start = read_fact_averages(lm, runtime, requests, used, components=parent, residual_layers=[last],
                               batch_rows=batch_rows)[Site("residual", last)]
    targets = optimize_values(lm, runtime, requests, hp, used, layer=last, reference=start, components=parent,
                              progress=progress.span(0.02, 0.85))
    goal = start.double() + torch.stack([t.delta for t in targets]).double()  # [n, hidden]
    deltas: list[LowRankDelta] = []
    for i, layer in enumerate(hp.layers):
        progress.check()
        progress.report(0.85 + 0.15 * i / len(hp.layers), f"updating layer {layer}")
        reads = read_fact_averages(lm, runtime, requests, used, components=[*parent, *deltas],
                                   key_layers=[layer], residual_layers=[last], batch_rows=batch_rows)
        residual = (goal - reads[Site("residual", last)].double()) / (len(hp.layers) - i)
        deltas.append(least_squares_delta(names[layer], reads[Site("mlp_key", layer)], residual,
                                          stats[layer].second_moment, hp.mom2_weight))
    progress.report(1.0, f"updated {len(deltas)} layers for {len(requests)} facts")
    return MemitEdit(deltas, goal.float(), targets)


def least_squares_delta(module: str, keys: torch.Tensor, residual: torch.Tensor, second_moment: torch.Tensor,
                        weight: float) -> LowRankDelta:
    """``Delta W = R K^T (weight C + K K^T)^-1`` as factors.

    Args:
        module: the projection's qualified name.
        keys: ``[n, in]``, one key per fact.
        residual: ``[n, out]``, what each fact's output should gain.
        second_moment: ``C`` ``[in, in]``.
        weight: ``lambda``.

    Returns:
        ``LowRankDelta`` with ``A = ((lambda C + K K^T)^-1 K)^T`` ``[n, in]`` and ``B = R`` ``[out, n]``.
    """
    k = keys.detach().to("cpu", torch.float64).T  # [in, n]
    system = weight * second_moment.detach().to("cpu", torch.float64) + k @ k.T
    adjusted = torch.linalg.solve(system, k)  # [in, n]
    return LowRankDelta(module, adjusted.T.float().contiguous(), residual.detach().to("cpu", torch.float64).T.float()
                        .contiguous())

"""ROME (Meng et al. 2022), with the r-ROME fix (Gupta et al. 2024): a rank-one edit of one MLP.

The MLP output projection ``W`` of block ``l`` is treated as a linear associative memory that maps
keys (its inputs) to values (its outputs). To make the subject recall the new target:

1. key ``k*``: the projection's input at the subject's last token, averaged over the context
   templates;
2. value ``v* = W k* + delta``: ``delta`` optimised so that the templated prompts are followed by
   the target (`engine.editing.values`);
3. the update that maps ``k*`` to ``v*`` while changing ``W k`` least for the keys the model usually
   meets (weighted by ``C = E[k k^T]``): ``W' = W + (v* - W k*) (C^-1 k*)^T / (k*^T C^-1 k*)``.

``W k*`` is the module's output at ``k*`` on the variant being edited (bias and the parent's deltas
included). The original ROME divided by ``k^T C^-1 k*`` with ``k`` read from the bare prompt only,
while ``k*`` was averaged: with the two keys mixed, ``W' k* != v*``, and repeated edits blow up
(r-ROME). Here the averaged key is used everywhere, so ``W' k* = v*`` holds exactly.

The update is returned as factors: ``A = (C^-1 k*)^T / ||C^-1 k*||`` (unit norm, ``[1, in]``) and
``B = (v* - W k*) / (A k*)`` (``[out, 1]``), solved in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.components import Component, LowRankDelta
from engine.editing.covariance import KeyStatistics
from engine.editing.hparams import EditHyperparams
from engine.editing.keys import read_fact_averages
from engine.editing.request import EditRequest
from engine.editing.values import optimize_values
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.progress import Progress
from engine.runtime import InterventionRuntime
from engine.sites import Site, mlp_out_names


@dataclass(frozen=True, eq=False)
class RomeEdit:
    """A ROME edit and the vectors it was solved from.

    Attributes:
        delta: the rank-one delta.
        key: ``k*`` ``[in]``; current: ``W k*`` ``[out]``; value: ``v*`` ``[out]`` (float32, CPU).
        loss: the value optimisation's final loss; nll: its NLL part; steps: steps taken.
    """

    delta: LowRankDelta
    key: torch.Tensor
    current: torch.Tensor
    value: torch.Tensor
    loss: float
    nll: float
    steps: int


def compute_rome(lm: LoadedModel, runtime: InterventionRuntime, request: EditRequest, hp: EditHyperparams,
                 stats: KeyStatistics, templates: list[str], *, parent: Sequence[Component] = (),
                 on_progress: Callable[[float, str], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> LowRankDelta:
    """The rank-one delta that writes ``request`` into block ``hp.layers[0]``'s MLP (see `rome_edit`)."""
    return rome_edit(lm, runtime, request, hp, stats, templates, parent=parent, on_progress=on_progress,
                     should_stop=should_stop).delta


def rome_edit(lm: LoadedModel, runtime: InterventionRuntime, request: EditRequest, hp: EditHyperparams,
              stats: KeyStatistics, templates: list[str], *, parent: Sequence[Component] = (),
              on_progress: Callable[[float, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> RomeEdit:
    """Compute a ROME edit.

    Args:
        lm: the model; runtime: its intervention runtime (hooks installed).
        request: the fact.
        hp: hyperparameters (one layer).
        stats: the key statistics of that layer.
        templates: the context templates (the first ``hp.n_templates`` are used).
        parent: the components of the variant being edited (every pass runs on it).
        on_progress: ``(fraction, message)``; should_stop: checked between optimisation steps.

    Raises:
        ValueError: hyperparameters with other than one layer, or statistics of another layer.
        CanceledError: ``should_stop`` said so.
    """
    if len(hp.layers) != 1:
        raise ValueError(f"ROME edits exactly one layer; got {list(hp.layers)}")
    (layer,) = hp.layers
    if stats.layer != layer:
        raise ValueError(f"the statistics are of layer {stats.layer}; the edit is at layer {layer}")
    progress = Progress(on_progress, should_stop)
    used = templates[: hp.n_templates]
    name = mlp_out_names(lm)[layer]
    progress.report(0.0, f"reading the key of {request.subject!r} at layer {layer}")
    reads = read_fact_averages(lm, runtime, [request], used, components=parent, key_layers=[layer])
    key = reads[Site("mlp_key", layer)][0]
    current = module_output(lm, runtime, lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[layer]), key, parent)
    (target,) = optimize_values(lm, runtime, [request], hp, used, layer=layer, reference=current[None],
                                components=parent, progress=progress.span(0.05, 0.95))
    progress.report(0.97, "solving the rank-one update")
    value = current + target.delta
    delta = rank_one_delta(name, key, current, value, stats.second_moment)
    progress.report(1.0, f"rank-one update of {name}: |delta v| = {float(target.delta.norm()):.3f}, "
                         f"target loss {target.nll:.3f}")
    return RomeEdit(delta, key, current, value, target.loss, target.nll, target.steps)


def rank_one_delta(module: str, key: torch.Tensor, current: torch.Tensor, value: torch.Tensor,
                   second_moment: torch.Tensor) -> LowRankDelta:
    """The minimal-covariance rank-one update mapping ``key`` to ``value``.

    Args:
        module: the projection's qualified name.
        key: ``k*`` ``[in]``.
        current: ``W k*`` ``[out]`` (the module's output at ``k*`` before the edit).
        value: ``v*`` ``[out]``.
        second_moment: ``C`` ``[in, in]``.

    Returns:
        ``LowRankDelta`` with ``A [1, in]``, ``B [out, 1]`` (float32), so that ``(W + B A) k* = v*``.
    """
    k = key.detach().to("cpu", torch.float64)
    solved = torch.linalg.solve(second_moment.detach().to("cpu", torch.float64), k)  # C^-1 k*
    a = solved / solved.norm()
    b = (value.detach().to("cpu", torch.float64) - current.detach().to("cpu", torch.float64)) / (a @ k)
    return LowRankDelta(module, a[None].float(), b[:, None].float())


@torch.no_grad()
def module_output(lm: LoadedModel, runtime: InterventionRuntime, module: nn.Module, x: torch.Tensor,
                  components: Sequence[Component]) -> torch.Tensor:
    """``module(x)`` ``[out]`` float32 (CPU) for an input ``[in]``, under a variant's deltas."""
    with runtime.active(PassPlan.of_variant(list(components))):
        out = module(x.to(lm.device, lm.dtype)[None, None])
    return out[0, 0].float().cpu()

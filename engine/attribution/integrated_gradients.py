"""Integrated Gradients over token embeddings, for one or several target tokens at once.

The model sees ``input_ids + target_ids[:-1]``; target ``t`` is predicted at position
``len(input_ids) - 1 + t`` and ``F_t`` is its logit, log-probability or probability there. Along
the path ``e(alpha) = b + alpha (x - b)``, only the embeddings of attributable inputs move (from
the baseline embedding ``b`` to the real one ``x``); every other position keeps its real embedding.
The attribution of input ``i`` to target ``t`` is
``(x_i - b_i) . integral_0^1 dF_t/de_i(e(alpha)) dalpha``, summed over the hidden dimension, and
completeness says ``sum_i a_{t,i} = F_t(1) - F_t(0)``.

The model along the path, and how its cost is kept down, is :mod:`engine.attribution.ig_path`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from engine.attribution.ig_path import Evaluated, IntegrationPath, auto_batch_size
from engine.attribution.inputs import Objective, uses_rmsnorm
from engine.attribution.quadrature import (
    AdaptiveBisection,
    FixedRule,
    gauss_legendre,
    integrate,
    relative_scale,
    riemann_trapezoid,
    trapezoid,
)
from engine.loading import LoadedModel

Rule = Literal["riemann_trapezoid", "gauss_legendre", "adaptive"]
#: Called after each chunk with (evaluations done, evaluation budget); may raise to cancel.
ChunkCallback = Callable[[int, int], None]

#: The adaptive rule starts from ``n_steps // 3`` equal intervals, within these bounds (16 for the
#: default 50 steps): enough to see where the path is rough, few enough to spend little where it is not.
ADAPTIVE_MIN_INITIAL, ADAPTIVE_MAX_INITIAL = 4, 16


class BaselineError(ValueError):
    """The requested baseline cannot be used with this model; the message says why and what to use."""


@dataclass(frozen=True)
class IGResult:
    """Integrated Gradients of several targets over the same inputs.

    Attributes:
        attributions: ``[n_targets, n_inputs]`` float64 on CPU; exactly 0 at inputs that are not
            attributable.
        f_input: ``[n_targets]`` objective at the input (alpha = 1).
        f_baseline: ``[n_targets]`` objective at the baseline (alpha = 0).
        probability: ``[n_targets]`` model probability of each target at the input.
        evaluations: distinct alphas run through the model, each one forward and backward row
            (for ``gauss_legendre`` this includes the two ends, evaluated for ``F(b)`` and ``F(x)``).
        attribution_change: ``[n_targets]`` for ``adaptive`` only: relative L2 change of each
            target's attributions in the last refinement (see
            :meth:`~engine.attribution.quadrature.AdaptiveBisection.attribution_change`).
        rule: the quadrature rule used.
        compute_dtype: the arithmetic of the path's passes (float32 unless the caller asked for the
            model's own lower precision).
    """

    attributions: torch.Tensor
    f_input: torch.Tensor
    f_baseline: torch.Tensor
    probability: torch.Tensor
    evaluations: int
    attribution_change: torch.Tensor | None
    rule: str
    compute_dtype: torch.dtype

    @property
    def relative_error(self) -> torch.Tensor:
        """``[n_targets]`` ``|sum_i a_{t,i} - (F_t(x) - F_t(b))| / |F_t(x) - F_t(b)|``."""
        error = (self.attributions.sum(-1) - (self.f_input - self.f_baseline)).abs()
        return error / relative_scale(self.f_input, self.f_baseline)


def integrated_gradients(
    lm: LoadedModel,
    input_ids: list[int],
    target_ids: list[int],
    *,
    attributable: list[bool],
    baseline: int | Literal["zero"],
    objective: Objective = "log_prob",
    rule: Rule = "adaptive",
    n_steps: int = 50,
    tolerance: float = 0.01,
    max_evaluations: int = 512,
    internal_batch_size: int | None = None,
    compute_dtype: torch.dtype | None = torch.float32,
    on_chunk: ChunkCallback | None = None,
) -> IGResult:
    """Attribute each target's objective to the input token embeddings.

    Args:
        lm: the resident model (parameters frozen).
        input_ids: ``[n_inputs]`` prompt token ids.
        target_ids: ``[n_targets]`` tokens to explain; target ``t`` follows ``input_ids +
            target_ids[:t]``.
        attributable: ``[n_inputs]``; False inputs (chat template, role tokens) keep their real
            embedding along the path and get attribution 0.
        baseline: a token id whose embedding is the baseline, or ``"zero"`` (the zero vector;
            refused on RMSNorm models).
        objective: ``logit``, ``log_prob`` or ``prob`` of the target (computed in float32).
        rule: ``riemann_trapezoid`` (``n_steps + 1`` points), ``gauss_legendre`` (``n_steps`` nodes
            plus the two ends) or ``adaptive`` (``n_steps // 3`` initial intervals, clamped to
            [4, 16], then bisection; see :class:`~engine.attribution.quadrature.AdaptiveBisection`).
        n_steps: steps of the fixed rules; sets the initial grid of ``adaptive``.
        tolerance: ``adaptive``: relative completeness error to reach for every target.
        max_evaluations: ``adaptive``: at most this many alphas.
        internal_batch_size: alphas per forward pass; automatic when None.
        compute_dtype: arithmetic of the forward and backward passes; a model stored in another
            dtype is called with a copy of its weights in this one (see
            :mod:`engine.attribution.compute_weights`: in bfloat16 the gradients do not integrate to
            the forward change). None: the model's own dtype, no copy.
        on_chunk: called after each chunk with (evaluations done, budget); may raise to cancel,
            and the exception propagates with the chunk's graph already freed.

    Returns:
        The attributions and the figures needed to judge them.

    Raises:
        BaselineError: ``"zero"`` on an RMSNorm model, or a baseline id outside the vocabulary.
        ValueError: invalid arguments, or a NaN/inf anywhere in the computation.
    """
    sequence = [*input_ids, *target_ids[:-1]]
    _validate(lm, input_ids, target_ids, attributable, baseline, rule, n_steps, tolerance, max_evaluations,
              internal_batch_size)
    compute_dtype = compute_dtype or lm.dtype
    if internal_batch_size is None:
        internal_batch_size = auto_batch_size(lm, len(sequence), len(target_ids), compute_dtype=compute_dtype)
    movable = torch.tensor([*attributable, *([False] * (len(target_ids) - 1))])
    # inference_mode would forbid autograd even inside enable_grad, and the caller may be in it.
    with torch.inference_mode(False), torch.enable_grad():
        path = IntegrationPath(lm, sequence, len(input_ids), target_ids, movable, baseline, objective, compute_dtype)
        if rule == "adaptive":
            return _adaptive(path, n_steps, tolerance, max_evaluations, internal_batch_size, on_chunk)
        fixed = riemann_trapezoid(n_steps) if rule == "riemann_trapezoid" else gauss_legendre(n_steps)
        return _fixed(path, fixed, rule, internal_batch_size, on_chunk)


def _validate(lm: LoadedModel, input_ids: list[int], target_ids: list[int], attributable: list[bool],
              baseline: int | Literal["zero"], rule: str, n_steps: int, tolerance: float, max_evaluations: int,
              internal_batch_size: int | None) -> None:
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    if not input_ids:
        raise ValueError("input_ids is empty: there is nothing to attribute")
    if not target_ids:
        raise ValueError("target_ids is empty: there is nothing to explain")
    if len(attributable) != len(input_ids):
        raise ValueError(f"attributable has {len(attributable)} entries for {len(input_ids)} inputs")
    if not any(attributable):
        raise ValueError("no input is attributable")
    if any(not 0 <= token < vocab for token in [*input_ids, *target_ids]):
        raise ValueError(f"token ids must lie in [0, {vocab})")
    limit = lm.max_positions
    if limit is not None and len(input_ids) + len(target_ids) - 1 > limit:
        raise ValueError(f"{len(input_ids) + len(target_ids) - 1} positions exceed the model's {limit}")
    if rule not in ("riemann_trapezoid", "gauss_legendre", "adaptive"):
        raise ValueError(f"unknown rule {rule!r}")
    if n_steps < 1:
        raise ValueError("n_steps must be at least 1")
    if rule == "adaptive" and not (tolerance > 0 and max_evaluations >= 3):
        raise ValueError("adaptive needs tolerance > 0 and max_evaluations >= 3")
    if internal_batch_size is not None and internal_batch_size < 1:
        raise ValueError("internal_batch_size must be at least 1")
    if baseline == "zero":
        if uses_rmsnorm(lm):
            raise BaselineError(
                "the zero baseline is undefined on this model: it uses RMSNorm, which divides by the root mean "
                "square of its input, and for the zero vector that is 0/0 (NaN, or a near-jump where the norm's "
                "epsilon hides it); use a token baseline instead: pad, unk, mask or a token id"
            )
    elif not 0 <= baseline < vocab:
        raise BaselineError(f"baseline token id {baseline} is outside the vocabulary [0, {vocab})")


def _run(path: IntegrationPath, alphas: list[float], batch: int, done: int, budget: int,
         on_chunk: ChunkCallback | None) -> Evaluated:
    """Evaluate ``alphas`` in chunks of ``batch``, reporting progress after each chunk."""
    parts = []
    for start in range(0, len(alphas), batch):
        chunk = alphas[start : start + batch]
        part = path.evaluate(chunk)  # the chunk's graph is freed when evaluate returns
        if not (torch.isfinite(part.values).all() and torch.isfinite(part.contributions).all()):
            raise ValueError(
                "the model produced NaN or inf along the integration path (a baseline or dtype it cannot "
                "handle?); try another baseline or float32"
            )
        parts.append(part)
        if on_chunk is not None:
            on_chunk(done + start + len(chunk), budget)
    return Evaluated(*(torch.cat([getattr(p, name) for p in parts]) for name in
                        ("values", "log_probs", "contributions")))


def _fixed(path: IntegrationPath, fixed: FixedRule, rule: str, batch: int, on_chunk: ChunkCallback | None) -> IGResult:
    alphas = fixed.alphas.tolist()
    evaluated = _run(path, alphas, batch, 0, len(alphas), on_chunk)
    # Both fixed rules put alpha = 0 first and alpha = 1 last.
    return IGResult(attributions=integrate(fixed, evaluated.contributions), f_input=evaluated.values[-1],
                    f_baseline=evaluated.values[0], probability=evaluated.log_probs[-1].exp(),
                    evaluations=len(alphas), attribution_change=None, rule=rule, compute_dtype=path.dtype)


def _adaptive(path: IntegrationPath, n_steps: int, tolerance: float, max_evaluations: int, batch: int,
              on_chunk: ChunkCallback | None) -> IGResult:
    n_initial = min(ADAPTIVE_MAX_INITIAL, max(ADAPTIVE_MIN_INITIAL, n_steps // 3))
    scheme = AdaptiveBisection(n_initial=n_initial, tolerance=tolerance, max_evaluations=max_evaluations)
    alphas = scheme.initial_alphas()
    log_prob_at_input: torch.Tensor | None = None
    while alphas:
        evaluated = _run(path, alphas, batch, scheme.evaluations, max_evaluations, on_chunk)
        if log_prob_at_input is None:
            log_prob_at_input = evaluated.log_probs[-1]  # the initial grid ends at alpha = 1
        scheme.add(alphas, evaluated.values, evaluated.contributions)
        alphas = scheme.next_alphas()
    assert log_prob_at_input is not None
    return IGResult(attributions=trapezoid(scheme.alphas, scheme.contributions), f_input=scheme.values[-1],
                    f_baseline=scheme.values[0], probability=log_prob_at_input.exp(),
                    evaluations=scheme.evaluations, attribution_change=scheme.attribution_change(),
                    rule="adaptive", compute_dtype=path.dtype)

"""Integrated Gradients over token embeddings, for one or several target tokens at once.

The model sees ``input_ids + target_ids[:-1]``; target ``t`` is predicted at position
``len(input_ids) - 1 + t`` and ``F_t`` is its logit, log-probability or probability there. Along
the path ``e(alpha) = b + alpha (x - b)``, only the embeddings of attributable inputs move (from
the baseline embedding ``b`` to the real one ``x``); every other position keeps its real embedding.
The attribution of input ``i`` to target ``t`` is
``(x_i - b_i) . integral_0^1 dF_t/de_i(e(alpha)) dalpha``, summed over the hidden dimension, and
completeness says ``sum_i a_{t,i} = F_t(1) - F_t(0)``.

Cost, and how it is kept down:

* One forward pass per chunk of alphas serves every target: the targets' objectives come out of
  the same graph and each gets its input gradient from one ``torch.autograd.grad`` on that graph
  (``retain_graph`` until the last). That is one forward and ``n_targets`` backward passes per
  chunk, against ``n_targets`` forwards and backwards for separate runs (measured on SmolLM2-135M,
  CPU, 8 alphas over 21 positions: 1 target 2.3 s, 6 targets 8.6 s, against 13.8 s separately).
  Batching the backward passes with ``is_grads_batched`` (vmap) measured the same (8.6 s) and vmap
  does not cover every attention kernel, so the plain loop stays.
* The base model (``model.base_model``) runs to its last hidden state, which already went
  through the final norm in every family the adapters know, and the LM head
  (``adapter.unembedding``) is applied only at the target positions: on SmolLM2-135M at 60
  positions the full head would add about a quarter to the compute of each forward and backward,
  and 11 MiB of float32 logits per alpha.
* Parameters have ``requires_grad=False``, so the backward computes input gradients only.
* Each chunk's graph is local to one function call and freed when it returns; nothing is kept
  between calls.

Alphas go through the model in chunks of ``internal_batch_size`` rows; when it is not given it is
chosen under a memory budget (see :func:`auto_batch_size`). Rows are independent, so results do
not depend on the chunking beyond float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

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

Objective = Literal["logit", "log_prob", "prob"]
Rule = Literal["riemann_trapezoid", "gauss_legendre", "adaptive"]
#: Called after each chunk with (evaluations done, evaluation budget); may raise to cancel.
ChunkCallback = Callable[[int, int], None]

#: Activation memory one chunk may take when the caller does not fix the batch size.
ACTIVATION_BUDGET_BYTES = 256 * 2**20
#: No automatic chunk is larger than this: larger ones gain little throughput and report progress rarely.
MAX_AUTO_BATCH = 64
#: Saved activations per position per layer, in units of ``hidden_size`` (see :func:`auto_batch_size`).
ACTIVATION_FACTOR = 16
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
    """

    attributions: torch.Tensor
    f_input: torch.Tensor
    f_baseline: torch.Tensor
    probability: torch.Tensor
    evaluations: int
    attribution_change: torch.Tensor | None
    rule: str

    @property
    def relative_error(self) -> torch.Tensor:
        """``[n_targets]`` ``|sum_i a_{t,i} - (F_t(x) - F_t(b))| / |F_t(x) - F_t(b)|``."""
        error = (self.attributions.sum(-1) - (self.f_input - self.f_baseline)).abs()
        return error / relative_scale(self.f_input, self.f_baseline)


@dataclass(frozen=True)
class _Evaluated:
    """What a chunk of alphas gave.

    Attributes:
        values: ``[n_alphas, n_targets]`` float64 objective.
        log_probs: ``[n_alphas, n_targets]`` float64 log-probability of each target.
        contributions: ``[n_alphas, n_targets, n_inputs]`` float64 integrand
            ``(x_i - b_i) . dF_t/de_i``.
    """

    values: torch.Tensor
    log_probs: torch.Tensor
    contributions: torch.Tensor


class _Path:
    """The straight path from baseline to input embeddings, and the model evaluated along it."""

    def __init__(self, lm: LoadedModel, sequence: list[int], n_inputs: int, target_ids: list[int],
                 movable: torch.Tensor, baseline: int | Literal["zero"], objective: Objective) -> None:
        model = lm.model
        self.base = model.base_model
        self.head = lm.adapter.unembedding(model)
        self.objective = objective
        self.n_inputs = n_inputs
        embedding = lm.adapter.embedding(model)
        ids = torch.tensor(sequence, device=lm.device)
        self.dtype = lm.dtype
        with torch.no_grad():
            # The path is built in float32 and cast to the model's dtype row by row, so that an
            # alpha like 0.33203125 is not rounded to bfloat16's 8 bits before it is applied.
            self.x = embedding(ids).float()  # [seq, hidden]
            if baseline == "zero":
                b = torch.zeros_like(self.x)
            else:
                b = embedding(torch.tensor([baseline], device=lm.device)).float().expand_as(self.x)
            # Only attributable inputs move; the rest (and the continuation) stay real.
            self.delta = torch.where(movable.to(lm.device)[:, None], self.x - b, torch.zeros_like(self.x))
        self.positions = torch.arange(len(target_ids), device=lm.device) + (n_inputs - 1)
        self.targets = torch.tensor(target_ids, device=lm.device)

    def evaluate(self, alphas: list[float]) -> _Evaluated:
        """Objective and per-input integrand at each alpha: one forward, one backward per target."""
        a = torch.tensor(alphas, dtype=torch.float32, device=self.x.device)[:, None, None]
        # x + (alpha - 1) delta rather than b + alpha delta: alpha = 1 is then exactly the input.
        embeds = (self.x + (a - 1.0) * self.delta).to(self.dtype).requires_grad_(True)  # [A, seq, hidden]
        hidden = self.base(inputs_embeds=embeds, use_cache=False).last_hidden_state
        logits = self.head(hidden[:, self.positions]).float()  # [A, T, vocab], float32 at least
        index = self.targets[None, :, None].expand(len(alphas), -1, 1)
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, index)[..., 0]  # [A, T]
        if self.objective == "logit":
            values = logits.gather(-1, index)[..., 0]
        elif self.objective == "log_prob":
            values = log_probs
        else:
            values = log_probs.exp()
        n_targets = values.shape[1]
        contributions = []
        for t in range(n_targets):
            # Rows are independent, so the gradient of the sum over rows is each row's gradient.
            (grad,) = torch.autograd.grad(values[:, t].sum(), embeds, retain_graph=t < n_targets - 1)
            contributions.append((grad.float() * self.delta).sum(-1)[:, : self.n_inputs])
        return _Evaluated(values.detach().double().cpu(), log_probs.detach().double().cpu(),
                          torch.stack(contributions, dim=1).double().cpu())


def uses_rms_norm(lm: LoadedModel) -> bool:
    """Whether any norm in the model is an RMSNorm (by class name: every family names it so)."""
    return any("RMSNorm" in type(module).__name__ for module in lm.model.modules())


def auto_batch_size(lm: LoadedModel, seq_len: int, n_targets: int, budget_bytes: int = ACTIVATION_BUDGET_BYTES) -> int:
    """Alphas per chunk so that one chunk's saved activations stay near ``budget_bytes``.

    Per row, the backward keeps about ``ACTIVATION_FACTOR * hidden + n_heads * seq_len`` values per
    position per layer (norm inputs, q/k/v/o, the MLP's wide intermediates, attention weights),
    plus the float32 logits, log-softmax and their gradient at the target positions. Measured on
    SmolLM2-135M (float32, CPU): 69 MiB of peak memory per row at 60 positions, estimated 70 MiB;
    18 MiB at 20 positions, estimated 23 MiB. Under the default 256 MiB that is 3 alphas per chunk
    at 60 positions and 11 at 20.
    """
    config = lm.model.config
    n_heads = int(getattr(config, "num_attention_heads", getattr(config, "n_head", 1)) or 1)
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    per_row = lm.dtype.itemsize * seq_len * lm.n_layers * (ACTIVATION_FACTOR * lm.hidden_size + n_heads * seq_len)
    per_row += 4 * 3 * n_targets * vocab
    return int(max(1, min(MAX_AUTO_BATCH, budget_bytes // per_row)))


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
    if internal_batch_size is None:
        internal_batch_size = auto_batch_size(lm, len(sequence), len(target_ids))
    movable = torch.tensor([*attributable, *([False] * (len(target_ids) - 1))])
    # inference_mode would forbid autograd even inside enable_grad, and the caller may be in it.
    with torch.inference_mode(False), torch.enable_grad():
        path = _Path(lm, sequence, len(input_ids), target_ids, movable, baseline, objective)
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
        if uses_rms_norm(lm):
            raise BaselineError(
                "the zero baseline is undefined on this model: it uses RMSNorm, which divides by the root mean "
                "square of its input, and for the zero vector that is 0/0 (NaN, or a near-jump where the norm's "
                "epsilon hides it); use a token baseline instead: pad, unk, mask or a token id"
            )
    elif not 0 <= baseline < vocab:
        raise BaselineError(f"baseline token id {baseline} is outside the vocabulary [0, {vocab})")


def _run(path: _Path, alphas: list[float], batch: int, done: int, budget: int,
         on_chunk: ChunkCallback | None) -> _Evaluated:
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
    return _Evaluated(*(torch.cat([getattr(p, name) for p in parts]) for name in
                        ("values", "log_probs", "contributions")))


def _fixed(path: _Path, fixed: FixedRule, rule: str, batch: int, on_chunk: ChunkCallback | None) -> IGResult:
    alphas = fixed.alphas.tolist()
    evaluated = _run(path, alphas, batch, 0, len(alphas), on_chunk)
    # Both fixed rules put alpha = 0 first and alpha = 1 last.
    return IGResult(attributions=integrate(fixed, evaluated.contributions), f_input=evaluated.values[-1],
                    f_baseline=evaluated.values[0], probability=evaluated.log_probs[-1].exp(),
                    evaluations=len(alphas), attribution_change=None, rule=rule)


def _adaptive(path: _Path, n_steps: int, tolerance: float, max_evaluations: int, batch: int,
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
                    rule="adaptive")

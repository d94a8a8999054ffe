"""The model evaluated along the straight path from baseline to input embeddings.

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
* The arithmetic is float32 by default even when the model is stored in bfloat16 or float16,
  through a per-job float32 copy of its weights (:mod:`engine.attribution.compute_weights`):
  in bfloat16 the gradients do not integrate to the forward change, and completeness is lost.
* Each chunk's graph is local to one function call and freed when it returns; nothing is kept
  between calls.

Alphas go through the model in chunks of ``internal_batch_size`` rows; when it is not given it is
chosen under a memory budget (see :func:`auto_batch_size`). Rows are independent, so results do
not depend on the chunking beyond float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from engine.attribution.compute_weights import ComputeWeights
from engine.attribution.inputs import Objective, target_objective
from engine.loading import LoadedModel, work_budget

#: Activation memory one chunk may take when the caller does not fix the batch size (on the CPU;
#: more on a GPU with free memory: `engine.loading.work_budget`).
ACTIVATION_BUDGET_BYTES = 256 * 2**20
#: No automatic chunk is larger than this: larger ones gain little throughput and report progress rarely.
MAX_AUTO_BATCH = 64
#: Saved activations per position per layer, in units of ``hidden_size`` (see :func:`auto_batch_size`).
ACTIVATION_FACTOR = 16


@dataclass(frozen=True)
class Evaluated:
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


class IntegrationPath:
    """The straight path from baseline to input embeddings, and the model evaluated along it."""

    def __init__(self, lm: LoadedModel, sequence: list[int], n_inputs: int, target_ids: list[int],
                 movable: torch.Tensor, baseline: int | Literal["zero"], objective: Objective,
                 compute_dtype: torch.dtype) -> None:
        model = lm.model
        self.base = model.base_model
        self.head = lm.adapter.unembedding(model)
        self.objective = objective
        self.n_inputs = n_inputs
        embedding = lm.adapter.embedding(model)
        ids = torch.tensor(sequence, device=lm.device)
        self.dtype = compute_dtype
        # The input embedding is skipped: the base model gets inputs_embeds and never looks it up.
        self.weights = ComputeWeights(compute_dtype).add(self.base, skip=embedding.parameters()).add(self.head)
        with torch.no_grad():
            # The path is built in float32 and cast to the compute dtype row by row, so that an
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

    def evaluate(self, alphas: list[float]) -> Evaluated:
        """Objective and per-input integrand at each alpha: one forward, one backward per target."""
        a = torch.tensor(alphas, dtype=torch.float32, device=self.x.device)[:, None, None]
        # x + (alpha - 1) delta rather than b + alpha delta: alpha = 1 is then exactly the input.
        embeds = (self.x + (a - 1.0) * self.delta).to(self.dtype).requires_grad_(True)  # [A, seq, hidden]
        hidden = self.weights.call(self.base, inputs_embeds=embeds, use_cache=False).last_hidden_state
        logits = self.weights.call(self.head, hidden[:, self.positions]).float()  # [A, T, vocab], float32 at least
        values, log_probs = target_objective(logits, self.targets, self.objective)  # [A, T] each
        n_targets = values.shape[1]
        contributions = []
        for t in range(n_targets):
            # Rows are independent, so the gradient of the sum over rows is each row's gradient.
            (grad,) = torch.autograd.grad(values[:, t].sum(), embeds, retain_graph=t < n_targets - 1)
            contributions.append((grad.float() * self.delta).sum(-1)[:, : self.n_inputs])
        return Evaluated(values.detach().double().cpu(), log_probs.detach().double().cpu(),
                          torch.stack(contributions, dim=1).double().cpu())


def auto_batch_size(lm: LoadedModel, seq_len: int, n_targets: int, budget_bytes: int | None = None,
                    compute_dtype: torch.dtype | None = None) -> int:
    """Alphas per chunk so that one chunk's saved activations stay near ``budget_bytes``.

    Per row, the backward keeps about ``ACTIVATION_FACTOR * hidden + n_heads * seq_len`` values per
    position per layer (norm inputs, q/k/v/o, the MLP's wide intermediates, attention weights),
    plus the float32 logits, log-softmax and their gradient at the target positions. Measured on
    SmolLM2-135M (float32, CPU): 69 MiB of peak memory per row at 60 positions, estimated 70 MiB;
    18 MiB at 20 positions, estimated 23 MiB. Under the default 256 MiB that is 3 alphas per chunk
    at 60 positions and 11 at 20. On a GPU the default budget is larger (`engine.loading.work_budget`):
    there a chunk of a few alphas is bound by kernel launches, and 50 steps fit in one chunk.
    """
    if budget_bytes is None:
        budget_bytes = work_budget(lm, ACTIVATION_BUDGET_BYTES)
    config = lm.model.config
    n_heads = int(getattr(config, "num_attention_heads", getattr(config, "n_head", 1)) or 1)
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    itemsize = (compute_dtype or lm.dtype).itemsize
    per_row = itemsize * seq_len * lm.n_layers * (ACTIVATION_FACTOR * lm.hidden_size + n_heads * seq_len)
    per_row += 4 * 3 * n_targets * vocab
    return int(max(1, min(MAX_AUTO_BATCH, budget_bytes // per_row)))

"""The value optimisation ROME and MEMIT share: what should the model hold at the subject to say the target?

For each fact, a vector ``delta`` is added to block ``layer``'s output at the subject's last token
(adding it to the MLP's output there is the same thing: the MLP's output is added to the residual
stream) and optimised with Adam so that, in every context template, the prompt is followed by the
new target:

    loss = NLL(target | templated prompts) + kl_factor * KL(p_new || p_old)("{subject} is a")
           + v_weight_decay * ||delta|| / ||v||^2,

with ``||delta||`` clamped to ``clamp_norm_factor * ||v||`` after each step (``v``: the original
value, ROME's MLP output or MEMIT's residual, averaged over the templates). A fact stops once its
loss is under ``v_stop_loss``.

Facts are independent (each loss depends on its own ``delta`` only), so a batch of facts is
optimised in one forward pass per step. Each step recomputes only the tokens from the subject's last
one on: the tokens before it cannot see ``delta``, so their keys and values are computed once into
a KV cache (left-padded, so every row's subject ends at the same column) that each step reuses.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from engine.components import Component
from engine.editing.hparams import EditHyperparams
from engine.editing.keys import subject_prompt, target_ids
from engine.editing.request import EditRequest
from engine.hooks import patch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.progress import Progress
from engine.runtime import InterventionRuntime
from engine.sites import Site

KL_PROMPT = "{} is a"


@dataclass(frozen=True)
class ValueTarget:
    """The optimised addition for one fact.

    Attributes:
        delta: ``[hidden]`` float32 (CPU), to add at the subject's last token after block ``layer``.
        loss: the fact's loss at ``delta``; nll: its NLL part (mean per target token).
        steps: optimisation steps taken.
    """

    delta: torch.Tensor
    loss: float
    nll: float
    steps: int


@dataclass(frozen=True)
class _Batch:
    """One chunk of facts as a prefix (cached once) and a suffix (recomputed each step)."""

    prefix: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # ids, mask, positions [rows, P]
    suffix: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # ids, mask, positions [rows, S]
    row_fact: torch.Tensor  # [rows, facts] one-hot: which fact's delta each row gets
    loss_at: tuple[torch.Tensor, torch.Tensor]  # (row, column) of each target token [m]
    loss_target: torch.Tensor  # [m] target ids
    loss_fact: torch.Tensor  # [facts, m]: 1 / (target length * templates) where the token is the fact's
    kl_at: tuple[torch.Tensor, torch.Tensor]  # (row, column) of each KL position [k]
    kl_fact: torch.Tensor  # [facts, k] one-hot: whose KL position it is

    def select(self, rows: torch.Tensor) -> tuple[_Batch, torch.Tensor]:
        """These rows only (ascending indices), gathers renumbered; also which KL positions stayed."""
        new_index = torch.full((len(self.row_fact),), -1, dtype=torch.long, device=rows.device)
        new_index[rows] = torch.arange(len(rows), device=rows.device)
        tokens = new_index[self.loss_at[0]] >= 0
        kl = new_index[self.kl_at[0]] >= 0
        picked = _Batch(
            prefix=tuple(t[rows] for t in self.prefix),  # type: ignore[arg-type]
            suffix=tuple(t[rows] for t in self.suffix),  # type: ignore[arg-type]
            row_fact=self.row_fact[rows],
            loss_at=(new_index[self.loss_at[0][tokens]], self.loss_at[1][tokens]),
            loss_target=self.loss_target[tokens],
            loss_fact=self.loss_fact[:, tokens],
            kl_at=(new_index[self.kl_at[0][kl]], self.kl_at[1][kl]),
            kl_fact=self.kl_fact[:, kl],
        )
        return picked, kl


def build_batch(lm: LoadedModel, requests: Sequence[EditRequest], templates: Sequence[str]) -> _Batch:
    """Rows (per fact: its prompt in each template followed by the target, then the KL prompt), split
    at each row's subject's last token."""
    rows: list[tuple[list[int], int, int]] = []  # ids, split, fact
    loss: list[tuple[int, int, int, int, float]] = []  # row, absolute position, target, fact, weight
    kl: list[tuple[int, int]] = []
    for fact, request in enumerate(requests):
        bare = subject_prompt(lm.tokenizer, "{}", request.prompt, request.subject)
        target = target_ids(lm.tokenizer, bare.ids, request.text, request.target_new)
        for template in templates:
            p = subject_prompt(lm.tokenizer, template, request.prompt, request.subject)
            for j, token in enumerate(target):
                loss.append((len(rows), len(p.ids) - 1 + j, token, fact, 1.0 / (len(target) * len(templates))))
            rows.append((p.ids + target[:-1], p.subject_last, fact))
        p = subject_prompt(lm.tokenizer, "{}", KL_PROMPT, request.subject)
        kl.append((len(rows), len(p.ids) - 1))
        rows.append((p.ids, p.subject_last, fact))
    width_p = max(split for _, split, _ in rows)
    width_s = max(len(ids) - split for ids, split, _ in rows)
    pad = lm.tokenizer.pad_token_id or 0
    n = len(rows)
    prefix = (torch.full((n, width_p), pad), torch.zeros(n, width_p, dtype=torch.long),
              torch.zeros(n, width_p, dtype=torch.long))
    suffix = (torch.full((n, width_s), pad), torch.zeros(n, width_s, dtype=torch.long),
              torch.zeros(n, width_s, dtype=torch.long))
    for row, (ids, split, _) in enumerate(rows):
        if split:  # left padding: every row's subject token lands in suffix column 0
            prefix[0][row, width_p - split:] = torch.tensor(ids[:split])
            prefix[1][row, width_p - split:] = 1
            prefix[2][row, width_p - split:] = torch.arange(split)
        tail = ids[split:]
        suffix[0][row, : len(tail)] = torch.tensor(tail)
        suffix[1][row, : len(tail)] = 1
        suffix[2][row] = torch.arange(split, split + width_s)
    splits = [split for _, split, _ in rows]
    device = lm.device
    # Facts are gathered and summed with one-hot matrices, not index_add: on a GPU, index_add (and the
    # backward of an indexed read with repeated indices) sums with atomics, in no fixed order.
    row_fact = torch.zeros(n, len(requests))
    row_fact[torch.arange(n), torch.tensor([fact for _, _, fact in rows])] = 1.0
    loss_fact = torch.zeros(len(requests), len(loss))
    loss_fact[torch.tensor([f for *_, f, _ in loss]), torch.arange(len(loss))] = torch.tensor([w for *_, w in loss])
    return _Batch(
        prefix=tuple(t.to(device) for t in prefix),  # type: ignore[arg-type]
        suffix=tuple(t.to(device) for t in suffix),  # type: ignore[arg-type]
        row_fact=row_fact.to(device),
        loss_at=(torch.tensor([r for r, *_ in loss], device=device),
                 torch.tensor([pos - splits[r] for r, pos, *_ in loss], device=device)),
        loss_target=torch.tensor([t for _, _, t, _, _ in loss], device=device),
        loss_fact=loss_fact.to(device),
        kl_at=(torch.tensor([r for r, _ in kl], device=device),
               torch.tensor([pos - splits[r] for r, pos in kl], device=device)),
        kl_fact=torch.eye(len(requests), device=device),
    )


def optimize_values(lm: LoadedModel, runtime: InterventionRuntime, requests: Sequence[EditRequest],
                    hp: EditHyperparams, templates: Sequence[str], *, layer: int, reference: torch.Tensor,
                    components: Sequence[Component] = (), progress: Progress | None = None) -> list[ValueTarget]:
    """Optimise each fact's ``delta`` at block ``layer``'s output, ``hp.v_batch_facts`` facts per batch.

    Args:
        reference: ``[facts, hidden]``, each fact's original value ``v`` (its norm scales the clamp
            and the weight decay).
        components: the variant the passes run on (the parent's components).

    Raises:
        CanceledError: ``progress``'s stop flag was set (checked before every step).
    """
    progress = progress or Progress()
    # Rows are padded to the longest suffix of their batch: batch facts of similar suffix length.
    order = sorted(range(len(requests)), key=lambda i: (suffix_width(lm, requests[i]), i))
    out: dict[int, ValueTarget] = {}
    chunk = hp.v_batch_facts
    n_chunks = -(-len(requests) // chunk)
    for index in range(n_chunks):
        part = order[index * chunk: (index + 1) * chunk]
        targets = _optimize_batch(lm, runtime, [requests[i] for i in part], hp, templates, layer, reference[part],
                                  components, progress.span(index / n_chunks, (index + 1) / n_chunks))
        out.update(zip(part, targets, strict=True))
    return [out[i] for i in range(len(requests))]


def suffix_width(lm: LoadedModel, request: EditRequest) -> int:
    """Tokens a step recomputes for the bare prompt: from the subject's last token to the target's last but one."""
    bare = subject_prompt(lm.tokenizer, "{}", request.prompt, request.subject)
    target = target_ids(lm.tokenizer, bare.ids, request.text, request.target_new)
    return len(bare.ids) - bare.subject_last + len(target) - 1


def _optimize_batch(lm: LoadedModel, runtime: InterventionRuntime, requests: Sequence[EditRequest],
                    hp: EditHyperparams, templates: Sequence[str], layer: int, reference: torch.Tensor,
                    components: Sequence[Component], progress: Progress) -> list[ValueTarget]:
    batch = build_batch(lm, requests, templates)
    plan = PassPlan.of_variant(list(components))
    head = lm.adapter.unembedding(lm.model)
    n, device = len(requests), lm.device
    ref_norm = reference.to(device, torch.float32).norm(dim=-1)
    max_norm = hp.clamp_norm_factor * ref_norm
    delta = torch.zeros(n, lm.hidden_size, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=hp.v_lr)
    cache = None
    if batch.prefix[0].shape[1]:
        ids, mask, positions = batch.prefix
        with torch.no_grad(), runtime.active(plan):
            cache = lm.model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                        use_cache=True).past_key_values

    def add_delta(hidden: torch.Tensor) -> torch.Tensor:  # [rows, S, hidden]: the subject is column 0
        at = (batch.row_fact @ delta).to(hidden.dtype)
        return torch.cat([hidden[:, :1] + at[:, None], hidden[:, 1:]], dim=1)

    kl_init: torch.Tensor | None = None
    done = torch.zeros(n, dtype=torch.bool, device=device)
    final_loss = torch.zeros(n, device=device)
    final_nll = torch.zeros(n, device=device)
    steps = torch.zeros(n, dtype=torch.long)
    for step in range(hp.v_steps):
        progress.check()
        live_rows = (batch.row_fact[:, ~done].sum(dim=1) > 0).nonzero()[:, 0]
        if len(live_rows) < len(batch.row_fact):
            # Facts that reached the target leave the batch (their rows cost as much as anyone's).
            batch, kept = batch.select(live_rows)
            if cache is not None:
                cache.batch_select_indices(live_rows)
            kl_init = None if kl_init is None else kl_init[kept]
        ids, mask, positions = batch.suffix
        # A fresh copy of the prefix cache per step: the pass appends the suffix to it, and a cropped
        # cache would keep views into this step's graph.
        past = copy.deepcopy(cache)
        with patch(lm, {Site("residual", layer): add_delta}), runtime.active(plan), _exact_attention(device):
            hidden = lm.model.base_model(input_ids=ids, attention_mask=torch.cat([batch.prefix[1], mask], dim=1),
                                         position_ids=positions, past_key_values=past,
                                         use_cache=past is not None).last_hidden_state
        logprobs = torch.log_softmax(head(hidden[batch.loss_at].contiguous()).float(), dim=-1)
        nll = batch.loss_fact @ -logprobs.gather(1, batch.loss_target[:, None])[:, 0]  # [facts]
        kl_logprobs = torch.log_softmax(head(hidden[batch.kl_at].contiguous()).float(), dim=-1)
        if kl_init is None:
            kl_init = kl_logprobs.detach()
        kl = batch.kl_fact @ (kl_logprobs.exp() * (kl_logprobs - kl_init)).sum(-1)  # KL(new || old), per fact
        decay = hp.v_weight_decay * delta.norm(dim=-1) / ref_norm**2
        loss = nll + hp.kl_factor * kl + decay
        live = ~done
        final_loss[live], final_nll[live] = loss.detach()[live], nll.detach()[live]
        steps[live.cpu()] = step
        done |= live & (loss.detach() < hp.v_stop_loss)
        progress.report((step + 1) / hp.v_steps,
                        f"value optimisation: step {step + 1}/{hp.v_steps}, {int(done.sum())}/{n} facts reached "
                        f"the target, mean loss {float(final_loss.mean()):.3f}")
        if bool(done.all()) or step == hp.v_steps - 1:
            break  # no update after the last evaluation: the returned delta is the one evaluated
        optimizer.zero_grad()
        loss[~done].sum().backward()
        kept_delta = delta.detach()[done].clone()
        optimizer.step()
        with torch.no_grad():
            delta[done] = kept_delta  # finished facts keep their delta (Adam's momentum would move it)
            norms = delta.norm(dim=-1)
            delta.mul_(torch.clamp(max_norm / norms.clamp(min=1e-12), max=1.0)[:, None])
    result = delta.detach().float().cpu()
    return [ValueTarget(result[i], float(final_loss[i]), float(final_nll[i]), int(steps[i]) + 1) for i in range(n)]


def _exact_attention(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """On a GPU, the math attention kernel: the fused kernels' backward passes sum in no fixed order,
    and an edit must be reproducible bit for bit. (The setting is process-wide while it lasts.)"""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)

"""Where a fact lives: the subject's last token, and what the model holds there.

ROME and MEMIT read a fact's *key* (the input of a block's MLP output projection: an ``mlp_key``
site) and its *residual* (the block's output: a ``residual`` site) at the last token of the subject,
in the edit prompt placed in each context template, and average over the templates. Reads run
under the intervention runtime with the variant being edited (the parent's components, and
MEMIT's deltas of earlier layers), and each prompt is cut after the subject's last token (nothing
later can change what is read there); a pass stops at the last site it needs (`engine.hooks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from engine.components import Component
from engine.editing.request import EditRequest
from engine.hooks import record
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.runtime import InterventionRuntime
from engine.sites import Site


@dataclass(frozen=True)
class SubjectPrompt:
    """A prompt's token ids and the index of its subject's last token.

    Attributes:
        ids: token ids as the tokenizer encodes the text (special tokens included).
        subject_last: index into ``ids`` of the last token overlapping the subject.
    """

    ids: list[int]
    subject_last: int


def subject_prompt(tokenizer: PreTrainedTokenizerBase, template: str, prompt: str, subject: str) -> SubjectPrompt:
    """Encode ``template`` with ``prompt`` in its ``{}``, and the subject in the prompt's ``{}``.

    The subject's characters are located by construction (not searched for), so a subject that
    also occurs in the template or elsewhere in the prompt is still found at its own place.

    Raises:
        ValueError: no token overlaps the subject (it encodes to nothing).
    """
    before_prompt, _, after_prompt = template.partition("{}")
    before_subject, _, after_subject = prompt.partition("{}")
    start = len(before_prompt) + len(before_subject)
    end = start + len(subject)
    text = before_prompt + before_subject + subject + after_subject + after_prompt
    encoded = tokenizer(text, return_offsets_mapping=True)
    covering = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > a and a < end and b > start]
    if not covering:
        raise ValueError(f"no token of {text!r} covers the subject {subject!r}")
    return SubjectPrompt(list(encoded["input_ids"]), covering[-1])


def target_ids(tokenizer: PreTrainedTokenizerBase, prompt_ids: Sequence[int], text: str, target: str) -> list[int]:
    """The tokens of ``target`` as they follow ``text`` (whose ids are ``prompt_ids``).

    Encoding the joined text keeps tokenizers that treat a leading space specially (SentencePiece)
    right; if the join merges across the boundary, the target is encoded on its own.

    Raises:
        ValueError: the target encodes to no tokens.
    """
    joined = list(tokenizer(text + target)["input_ids"])
    if joined[: len(prompt_ids)] == list(prompt_ids) and len(joined) > len(prompt_ids):
        ids = joined[len(prompt_ids):]
    else:
        ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"the target {target!r} encodes to no tokens")
    return ids


@torch.no_grad()
def read_at_subjects(lm: LoadedModel, runtime: InterventionRuntime, prompts: Sequence[SubjectPrompt], *,
                     components: Sequence[Component] = (), key_layers: Sequence[int] = (),
                     residual_layers: Sequence[int] = (), batch_rows: int = 64) -> dict[Site, torch.Tensor]:
    """Keys and residuals at each prompt's subject's last token, under a variant.

    Args:
        key_layers: blocks whose MLP key is read (``mlp_key`` sites).
        residual_layers: blocks whose output is read (``residual`` sites).

    Returns:
        site -> ``[len(prompts), dim]`` float32 on the CPU, in the prompts' order.
    """
    sites = [*(Site("mlp_key", layer) for layer in key_layers), *(Site("residual", layer) for layer in residual_layers)]
    out: dict[Site, list[torch.Tensor]] = {}
    plan = PassPlan.of_variant(list(components))
    pad = lm.tokenizer.pad_token_id or 0
    for first in range(0, len(prompts), batch_rows):
        batch = prompts[first: first + batch_rows]
        width = max(p.subject_last + 1 for p in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, p in enumerate(batch):  # right padding, cut after the subject: causal reads ignore the rest
            ids[row, : p.subject_last + 1] = torch.tensor(p.ids[: p.subject_last + 1])
            mask[row, : p.subject_last + 1] = 1
        positions = torch.tensor([p.subject_last for p in batch], device=lm.device)
        with record(lm, sites, positions=positions) as recording, runtime.active(plan):
            recording.run(lm.model.base_model, input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                          use_cache=False)
        for site, value in recording.tensors.items():
            out.setdefault(site, []).append(value.float().cpu())
    return {site: torch.cat(parts) for site, parts in out.items()}


def fact_prompts(lm: LoadedModel, requests: Sequence[EditRequest], templates: Sequence[str]) -> list[SubjectPrompt]:
    """Every request's prompt in every template: request-major, ``len(requests) * len(templates)``."""
    return [subject_prompt(lm.tokenizer, t, r.prompt, r.subject) for r in requests for t in templates]


def read_fact_averages(lm: LoadedModel, runtime: InterventionRuntime, requests: Sequence[EditRequest],
                       templates: Sequence[str], *, components: Sequence[Component] = (),
                       key_layers: Sequence[int] = (), residual_layers: Sequence[int] = (),
                       batch_rows: int = 64) -> dict[Site, torch.Tensor]:
    """Per request, keys and residuals at the subject's last token averaged over the templates.

    Returns:
        site (``mlp_key`` or ``residual``, see `read_at_subjects`) -> ``[len(requests), dim]`` float32 on
        the CPU (averaged in float64).
    """
    reads = read_at_subjects(lm, runtime, fact_prompts(lm, requests, templates), components=components,
                             key_layers=key_layers, residual_layers=residual_layers, batch_rows=batch_rows)
    return {key: value.double().view(len(requests), len(templates), -1).mean(1).float()
            for key, value in reads.items()}

"""SHAP attribution over input tokens: the Partition explainer with a Text masker, batched on the device.

The textbook recipe (``shap.Explainer(predict, tokenizer)``) re-tokenises a masked *string* per
evaluation and runs one forward pass per masked text, returning the whole vocabulary's
probabilities. Here the same explainer runs on token ids instead:

* **Explainer.** ``shap``'s Partition explainer: Owen values with respect to the Text masker's
  hierarchical clustering of the tokens (which follows words, phrases and punctuation). They are
  Shapley values of the game restricted to that hierarchy; for two tokens they *are* the Shapley
  values. Local accuracy (``base_value + sum(attributions) == f(input)``) holds exactly whatever
  ``max_evals`` is, because unexplored coalitions leave their credit on internal nodes, which is
  then split among their leaves.
* **Masker.** A ``shap.maskers.Text`` with ``output_type="token_ids"``. It is *not* given the
  model's tokenizer over the decoded prompt, because re-tokenising decoded text does not reproduce
  our ids in general: chat-template special tokens, a BOS the tokenizer adds, BPE merges across
  the boundary of non-attributable template tokens, or a prompt that was not the canonical
  tokenisation of its text. Nor could it keep template tokens in the middle of the prompt fixed (it
  only keeps a tokenizer's prefix/suffix and separator tokens). Instead it gets a segmentation
  that yields exactly our attributable tokens (`_ExactSegmentation`): the masker's features are
  those tokens, its clustering is computed from their text, and non-attributable tokens are not
  features at all, so they are never masked and get exactly 0.
* **Masked value.** A masked token is *replaced* by ``mask_token_id`` (default: the tokenizer's
  mask, else unk, else pad token) at the same position; masking never collapses, drops or inserts
  tokens, so every masked input has the prompt's length and positions.
* **Model function** (`~engine.attribution.masked_objective`). Every masked input has the same
  length, so a batch needs no padding; only the last ``n_targets`` positions are unembedded. The
  objective of every target comes back as one column, so one masked forward serves all targets;
  only ``[batch, n_targets]`` figures leave the device.
* **Masks known ahead.** When the budget covers the whole cluster tree, the masks the explainer
  will ask for follow from the tree alone (`~engine.attribution.partition_plan`); they are
  computed up front in a few large sorted passes instead of the explainer's chain of growing
  calls, and its calls are answered from them.
* **Shared prefixes.** Masked rows agree on long prefixes, and a causal model's states at a
  position depend only on the tokens up to it, so each distinct prefix is computed once and
  extended through a KV cache (`~engine.attribution.shared_prefix`): about half the work of one
  forward pass per row on the explainer's batches. The prefixes and states of every row evaluated
  so far are kept for the explainer's later calls (`~engine.attribution.prefix_store`, within a
  memory budget), which saves 15 to 35 % more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from engine.attribution.inputs import OBJECTIVES, Objective
from engine.attribution.masked_objective import BatchCallback, MaskedObjective
from engine.attribution.partition_plan import partition_masks
from engine.attribution.shared_prefix import auto_rows
from engine.loading import LoadedModel
from engine.prompts import decode

__all__ = ["OBJECTIVES", "BatchCallback", "Objective", "ShapResult", "default_mask_token_id", "shap_attribution",
           "token_pieces"]

#: Tokens of left context used to decode a token's text (see `token_pieces`).
_DECODE_CONTEXT = 4

#: Masked inputs the explainer collects before calling the model function. Fixed, not derived from
#: ``batch_size``: with a truncated budget the batches decide which coalitions get explored, so
#: tying them to ``batch_size`` would make the attributions depend on it. ``batch_size`` only
#: splits each call into forward passes.
EXPLAINER_BATCH = 128
#: Most masked inputs per forward pass when the caller does not fix it. Rows evaluated ahead of the
#: explainer come in one sorted set, and every pass streams all weights once (about 40 ms for the
#: default model on one core), so large passes are cheaper; the cap keeps progress and cancel
#: checks a few seconds apart.
MAX_PASS_ROWS = 512


@dataclass(frozen=True)
class ShapResult:
    """SHAP values of every input token for every target.

    Attributes:
        attributions: ``[n_targets, n_inputs]`` float64 on the CPU; exactly 0 at non-attributable
            inputs.
        base_values: ``[n_targets]``: the objective with every attributable input masked.
        f_input: ``[n_targets]``: the objective at the unmasked input.
        probability: ``[n_targets]``: p(target) at the unmasked input.
        evaluations: masked inputs the model evaluated (shared by all targets).
    """

    attributions: torch.Tensor
    base_values: torch.Tensor
    f_input: torch.Tensor
    probability: torch.Tensor
    evaluations: int


def default_mask_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that stands in for a masked token: the mask token, else unk, else pad.

    Compared with ``is None`` rather than truthiness: id 0 is a valid (and common) unk/pad id.
    """
    for candidate in (tokenizer.mask_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id):
        if isinstance(candidate, int):
            return candidate
    raise ValueError("the tokenizer has no mask, unk or pad token; pass mask_token_id")


def token_pieces(tokenizer: PreTrainedTokenizerBase, input_ids: Sequence[int], positions: Sequence[int]) -> list[str]:
    """The text each token at ``positions`` adds, decoded in its left context.

    Decoding a token alone loses its leading space in SentencePiece vocabularies ("▁Paris" ->
    "Paris"), which the Text masker's clustering reads as a word continuation. Decoding it after a
    few tokens of context and keeping the new suffix keeps that space; when the context's text is
    not a prefix (a multi-byte character split across tokens), the token is decoded alone.

    Args:
        tokenizer: the model's tokenizer.
        input_ids: ``[n_inputs]``.
        positions: indices into ``input_ids``.

    Returns:
        One string per position (possibly empty).
    """
    pieces = []
    for pos in positions:
        context = list(input_ids[max(0, pos - _DECODE_CONTEXT) : pos])
        before = decode(tokenizer, context)
        with_token = decode(tokenizer, [*context, input_ids[pos]])
        piece = with_token[len(before) :] if with_token.startswith(before) else decode(tokenizer, [input_ids[pos]])
        pieces.append(piece)
    return pieces


class _ExactSegmentation:
    """A "tokenizer" for ``shap.maskers.Text`` that splits one text into exactly our tokens.

    The Text masker accepts any callable returning ``input_ids`` and ``offset_mapping``. This one
    knows a single text, the concatenated pieces of the attributable tokens, and returns their ids
    and character spans, so the masker's features are our tokens one for one. The empty string
    (which the masker encodes to find prefix/suffix special tokens) has no tokens: nothing is
    added around the text, so ``keep_prefix == keep_suffix == 0``.
    """

    def __init__(self, ids: Sequence[int], pieces: Sequence[str]) -> None:
        self.text = "".join(pieces)
        self.ids = list(ids)
        self.offsets = []
        start = 0
        for piece in pieces:
            self.offsets.append((start, start + len(piece)))
            start += len(piece)

    def __call__(self, text: str, return_offsets_mapping: bool = False, **_: Any) -> dict[str, list[Any]]:
        if text == "":
            return {"input_ids": [], "offset_mapping": []}
        if text != self.text:
            raise ValueError("this segmentation only knows the prompt it was built for")
        out: dict[str, list[Any]] = {"input_ids": list(self.ids)}
        if return_offsets_mapping:
            out["offset_mapping"] = list(self.offsets)
        return out


def _validate(lm: LoadedModel, input_ids: Sequence[int], target_ids: Sequence[int], attributable: Sequence[bool],
              objective: str, max_evals: int, batch_size: int, mask_token_id: int) -> None:
    if not input_ids:
        raise ValueError("input_ids is empty")
    if not target_ids:
        raise ValueError("target_ids is empty")
    if len(attributable) != len(input_ids):
        raise ValueError(f"attributable has {len(attributable)} entries for {len(input_ids)} input tokens")
    if not any(attributable):
        raise ValueError("no input token is attributable")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    if max_evals < 2:
        raise ValueError("max_evals must be at least 2 (the fully masked and the unmasked input)")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    for name, ids in (("input_ids", input_ids), ("target_ids", target_ids), ("mask_token_id", [mask_token_id])):
        if any(not 0 <= i < vocab for i in ids):
            raise ValueError(f"{name} holds ids outside the vocabulary [0, {vocab})")
    limit = lm.max_positions
    if limit is not None and len(input_ids) + len(target_ids) - 1 > limit:
        raise ValueError(f"input and targets need {len(input_ids) + len(target_ids) - 1} positions; "
                         f"the model has {limit}")


def shap_attribution(
    lm: LoadedModel,
    input_ids: list[int],
    target_ids: list[int],
    *,
    attributable: list[bool],
    objective: Objective = "log_prob",
    max_evals: int = 500,
    seed: int = 0,
    batch_size: int | None = None,
    mask_token_id: int | None = None,
    on_batch: BatchCallback | None = None,
) -> ShapResult:
    """SHAP (Partition/Owen) values of the input tokens for each target token.

    Args:
        lm: the resident model.
        input_ids: ``[n_inputs]`` prompt token ids, as the model sees them.
        target_ids: ``[n_targets]``; target ``t`` is predicted after ``input_ids + target_ids[:t]``.
        attributable: ``[n_inputs]``; False tokens (chat template, roles) are never masked and get 0.
        objective: per target, its ``logit``, ``log_prob`` or ``prob``.
        max_evals: budget of model evaluations (masked inputs), shared by all targets; the
            explainer may finish its last batch past it.
        seed: seeds numpy's global generator, which the Partition explainer draws tie-breaks of its
            priority queue from (it takes no seed of its own); the previous state is restored after.
        batch_size: masked inputs per forward pass; None: as many as keep the pass's KV cache within
            `~engine.attribution.shared_prefix.CACHE_BUDGET_BYTES`, at most `MAX_PASS_ROWS`; the
            attributions do not depend on it (up to the float error of batched matmuls).
        mask_token_id: the id a masked token is replaced with; `default_mask_token_id` when None.
        on_batch: called with ``(rows computed, expected total)`` after each forward pass (the total
            is ``max_evals`` until the masks are known ahead, then their count); an exception it
            raises stops the work and propagates.

    Returns:
        A `ShapResult`; ``base_values + attributions.sum(-1) == f_input`` up to float error.
    """
    mask_id = default_mask_token_id(lm.tokenizer) if mask_token_id is None else mask_token_id
    if batch_size is None:
        batch_size = min(MAX_PASS_ROWS, auto_rows(lm, max(1, len(input_ids) + len(target_ids) - 1)))
    _validate(lm, input_ids, target_ids, attributable, objective, max_evals, batch_size, mask_id)
    positions = [i for i, keep in enumerate(attributable) if keep]
    model_fn = MaskedObjective(lm, input_ids, target_ids, positions, objective=objective, batch_size=batch_size,
                               budget=max_evals, on_batch=on_batch)
    attributable_ids = model_fn.attributable_ids

    if len(positions) == 1:
        # The Text masker's clustering needs two tokens to merge. A lone player's Shapley value is
        # its whole marginal contribution, f(x) - f(masked), so two evaluations give it exactly.
        both = model_fn(np.stack([np.full_like(attributable_ids, mask_id), attributable_ids]))
        base, values = both[0], (both[1] - both[0])[None, :]  # values: [1, n_targets]
    else:
        base, values = _run_partition(lm, input_ids, positions, attributable_ids, model_fn, mask_id=mask_id,
                                      max_evals=max_evals, seed=seed)

    if model_fn.f_input is None:  # the explainer always evaluates f(x); this is only a safeguard
        model_fn(attributable_ids[None, :])
    assert model_fn.f_input is not None and model_fn.log_prob_input is not None

    attributions = torch.zeros(len(target_ids), len(input_ids), dtype=torch.float64)
    attributions[:, positions] = torch.from_numpy(np.ascontiguousarray(values.T, dtype=np.float64))
    return ShapResult(
        attributions=attributions,
        base_values=torch.from_numpy(np.asarray(base, dtype=np.float64).copy()),
        f_input=torch.from_numpy(model_fn.f_input.astype(np.float64)),
        probability=torch.from_numpy(np.exp(model_fn.log_prob_input.astype(np.float64))),
        evaluations=model_fn.evaluations,
    )


def _run_partition(lm: LoadedModel, input_ids: Sequence[int], positions: Sequence[int], attributable_ids: np.ndarray,
                   model_fn: MaskedObjective, *, mask_id: int, max_evals: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run shap's Partition explainer over the attributable tokens.

    Returns:
        ``(base_values [n_targets], values [n_attributable, n_targets])``.
    """
    # shap imports pandas, scikit-learn and numba (about 2 s): only processes that explain pay it.
    import shap

    segmentation = _ExactSegmentation(attributable_ids.tolist(), token_pieces(lm.tokenizer, input_ids, positions))
    masker = shap.maskers.Text(segmentation, mask_token=mask_id, collapse_mask_token=False, output_type="token_ids")
    # The masker's features must be our attributable tokens, one for one, and masking must replace
    # in place; checked on the masker itself rather than assumed from its source.
    n = len(positions)
    kept = np.asarray(masker(np.ones(n, dtype=bool), segmentation.text)[0]).reshape(-1)
    dropped = np.asarray(masker(np.zeros(n, dtype=bool), segmentation.text)[0]).reshape(-1)
    if not (np.array_equal(kept, attributable_ids) and np.array_equal(dropped, np.full(n, mask_id))):
        raise RuntimeError("shap's Text masker does not segment the prompt into its tokens")

    planned = partition_masks(np.asarray(masker.clustering(segmentation.text), dtype=np.float64), max_evals)
    if planned is not None:
        model_fn.prefetch(np.where(planned, attributable_ids, mask_id))

    explainer = shap.Explainer(model_fn, masker, algorithm="partition")
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        explanation = explainer([segmentation.text], max_evals=max_evals, batch_size=EXPLAINER_BATCH, silent=True)
    finally:
        np.random.set_state(state)
    values = np.asarray(explanation.values, dtype=np.float64).reshape(n, -1)  # [n_attributable, n_targets]
    base = np.asarray(explanation.base_values, dtype=np.float64).reshape(-1)  # [n_targets]
    return base, values

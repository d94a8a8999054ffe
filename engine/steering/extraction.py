"""Extracting steering (control) vectors from contrastive prompt pairs.

A control vector for a concept is read off the residual stream: run matched positive and
negative prompts, take the difference of their activations at a layer, and summarise the
differences by their mean (``mean_diff``) or their first principal direction (``pca``). Layer
``l`` always means the output of block ``l``, the residual stream that a steering hook at ``l``
adds to.

Activations are recorded at ``residual`` sites (`engine.hooks`) rather than read from
``output_hidden_states``: the two agree for every block but the last, whose ``hidden_states`` entry
transformers replaces with the final-norm output, a different space from the one steering adds to.
The pass stops after the deepest block read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import torch

from engine.hooks import record
from engine.loading import LoadedModel
from engine.padding import padded_batches
from engine.scoring import encode_texts
from engine.sites import Site

#: Called after each batch with (texts done, texts in all); may raise to stop the work.
BatchCallback = Callable[[int, int], None]

METHODS = ("mean_diff", "pca")
READINGS = ("last", "mean")


@dataclass(frozen=True, eq=False)  # field-wise == would ask tensors for a single truth value
class SteeringVector:
    """A fitted control vector: one direction per layer, with how it was made and how well it separates.

    Attributes:
        model: name of the model it was read from.
        directions: layer -> ``[hidden]`` float32 on CPU; raw unless ``normalized``.
        method: ``mean_diff`` or ``pca``.
        reading: ``last`` (last non-pad token) or ``mean`` (mean over tokens).
        n_pairs: contrastive pairs it was fitted on.
        normalized: whether each direction was divided by its norm.
        norms: layer -> norm of the raw direction, before any normalisation.
        accuracy: layer -> leave-one-out separation accuracy (None with fewer than 2 pairs).
        layer_scores: leave-one-out accuracy of every layer considered (all layers for ``auto``).
    """

    model: str
    directions: dict[int, torch.Tensor]
    method: str
    reading: str
    n_pairs: int
    normalized: bool
    norms: dict[int, float]
    accuracy: dict[int, float | None]
    layer_scores: dict[int, float]


def check_choice(kind: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(known)}")


def check_layers(layers: list[int], n_layers: int) -> None:
    if not layers:
        raise ValueError("at least one layer is needed")
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range: the model has layers 0..{n_layers - 1}")


def read_activations(lm: LoadedModel, texts: list[str], layers: list[int], *, reading: str,
                     batch_size: int = 16, on_batch: BatchCallback | None = None,
                     allow_special_tokens: bool = False) -> dict[int, torch.Tensor]:
    """Read the residual stream after each block in ``layers``, one vector per text.

    Texts are sorted by length and right-padded, so the last real token of a row sits at
    ``mask.sum() - 1`` and causal attention never reads the pads; results come back in the
    caller's order. Pooling is done in float32 whatever the model's dtype, outside inference
    mode so the caller gets ordinary tensors it may modify.

    Args:
        lm: the resident model.
        texts: the texts, each encoding to at least one token.
        layers: block indices, ``0 <= l < n_layers``.
        reading: ``last`` (last non-pad token) or ``mean`` (mean over non-pad tokens).
        batch_size: texts per forward pass.
        on_batch: progress and cancellation hook, called between batches.
        allow_special_tokens: read special-token text in the texts as control tokens.

    Returns:
        layer -> ``[n_texts, hidden]`` float32 on CPU.
    """
    check_choice("reading", reading, READINGS)
    check_layers(layers, lm.n_layers)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    encoded = encode_texts(lm, texts, allow_special_tokens=allow_special_tokens)
    if any(not ids for ids in encoded):
        raise ValueError("every text must encode to at least one token")
    result = {layer: torch.empty(len(texts), lm.hidden_size) for layer in layers}
    for batch in padded_batches(encoded, batch_size, lm.tokenizer.pad_token_id or 0):
        chunk = batch.indices
        ids, mask, lengths = batch.ids.to(lm.device), batch.mask.long().to(lm.device), batch.lengths.to(lm.device)
        with torch.inference_mode(), record(lm, [Site("residual", layer) for layer in layers]) as recording:
            recording.run(lm.model, input_ids=ids, attention_mask=mask, use_cache=False)
        for layer in layers:
            # Pooled where it lives: only [batch, hidden] travels.
            hidden = recording.tensors[Site("residual", layer)].float()
            if reading == "last":
                pooled = hidden[torch.arange(len(chunk), device=lm.device), lengths - 1]
            else:
                pooled = (hidden * mask[..., None]).sum(1) / lengths[:, None]
            result[layer][chunk] = pooled.cpu()
        if on_batch is not None:
            on_batch(batch.done, len(encoded))
    return result


def fit_direction(diffs: torch.Tensor, method: str) -> torch.Tensor:
    """Summarise paired differences ``pos_i - neg_i`` (``[n_pairs, hidden]``) as one ``[hidden]`` direction.

    ``mean_diff`` is their mean. ``pca`` is the first right singular vector of the *uncentred*
    differences (centring would subtract the very mean difference we are after), signed so that
    most pairs project positively (ties: the sign of the mean projection) and scaled by the
    absolute mean projection ``|mean_i d_i . v|`` so its size is comparable with ``mean_diff``.
    """
    if method == "mean_diff":
        return diffs.double().mean(0).float()
    d = diffs.double()
    v = torch.linalg.svd(d, full_matrices=False).Vh[0]  # its sign is arbitrary
    projections = d @ v
    return (v * _majority_sign(projections) * projections.mean().abs()).float()


def _majority_sign(projections: torch.Tensor) -> float:
    votes = float(torch.sign(projections).sum())
    tie_break = float(projections.mean())
    return -1.0 if votes < 0 or (votes == 0 and tie_break < 0) else 1.0


def held_out_accuracy(diffs: torch.Tensor, method: str) -> float | None:
    """Leave-one-out separation accuracy: the share of pairs with ``d_i . v_(-i) > 0``.

    ``v_(-i)`` is fitted on every pair but ``i``. For ``pca`` this works in the ``n x n`` Gram
    matrix: the top eigenvector ``u`` of ``G_(-i)`` gives ``v_(-i) ~ D_(-i)^T u``, so
    ``d_i . v_(-i) ~ G[i, -i] . u`` (the positive scale cannot change the sign), which costs
    one small eigendecomposition per pair instead of one SVD over ``hidden``.

    Returns:
        Accuracy in ``[0, 1]``, or None with fewer than 2 pairs.
    """
    n = diffs.shape[0]
    if n < 2:
        return None
    d = diffs.double()
    if method == "mean_diff":
        scores = (d * (d.sum(0, keepdim=True) - d)).sum(1)
    else:
        gram = d @ d.T
        scores = torch.empty(n, dtype=torch.float64)
        for i in range(n):
            keep = torch.arange(n) != i
            u = torch.linalg.eigh(gram[keep][:, keep]).eigenvectors[:, -1]
            # Projections of the kept pairs on v are proportional to G_(-i) u = lambda u.
            u = u * _majority_sign(u)
            scores[i] = gram[i, keep] @ u
    return float((scores > 0).double().mean())


class VectorFitter:
    """Accumulates contrastive pairs per layer and fits a :class:`SteeringVector` from them."""

    def __init__(self, layers: list[int], method: str = "mean_diff") -> None:
        check_choice("method", method, METHODS)
        if not layers or len(set(layers)) != len(layers):
            raise ValueError("layers must be non-empty and distinct")
        self.layers = sorted(layers)
        self.method = method
        self._diffs: dict[int, list[torch.Tensor]] = {layer: [] for layer in self.layers}

    @property
    def n_pairs(self) -> int:
        return sum(len(chunk) for chunk in self._diffs[self.layers[0]])

    def update(self, positive: dict[int, torch.Tensor], negative: dict[int, torch.Tensor]) -> None:
        """Add pairs: ``positive[l]`` and ``negative[l]`` are ``[n, hidden]``, row ``i`` of each a pair."""
        for layer in self.layers:  # check every layer first, so a refused update changes nothing
            pos, neg = positive[layer], negative[layer]
            if pos.ndim != 2 or pos.shape != neg.shape or pos.shape[0] != positive[self.layers[0]].shape[0]:
                raise ValueError(f"layer {layer}: positive {tuple(pos.shape)} and negative "
                                 f"{tuple(neg.shape)} must both be [n, hidden], n the same for every layer")
        for layer in self.layers:
            self._diffs[layer].append(positive[layer].float().cpu() - negative[layer].float().cpu())

    def fit(self, *, model: str, reading: str, normalize: bool = False) -> SteeringVector:
        """Fit one direction per layer, with its raw norm and leave-one-out accuracy."""
        if self.n_pairs == 0:
            raise ValueError("no pairs to fit")
        directions, norms, accuracy = {}, {}, {}
        for layer in self.layers:
            diffs = torch.cat(self._diffs[layer])
            raw = fit_direction(diffs, self.method)
            norms[layer] = float(raw.norm())
            # A zero direction has no unit version; it stays zero rather than NaN.
            scale = norms[layer] if normalize and norms[layer] > 0 else 1.0
            directions[layer] = raw / scale
            accuracy[layer] = held_out_accuracy(diffs, self.method)
        scores = {layer: value for layer, value in accuracy.items() if value is not None}
        return SteeringVector(model=model, directions=directions, method=self.method, reading=reading,
                              n_pairs=self.n_pairs, normalized=normalize, norms=norms, accuracy=accuracy,
                              layer_scores=scores)


def pick_layers(layer_scores: dict[int, float], k: int, n_layers: int) -> list[int]:
    """The ``k`` best layers by held-out accuracy, ties going to the layer nearest the middle.

    Residual norms grow with depth, so projection margins would favour late layers; the middle
    of the network is where steering usually works best, so it breaks ties (then the earlier).
    """
    middle = (n_layers - 1) / 2
    ranked = sorted(layer_scores, key=lambda layer: (-layer_scores[layer], abs(layer - middle), layer))
    return sorted(ranked[:k])


def extract_vector(lm: LoadedModel, positive: list[str], negative: list[str], *,
                   layers: list[int] | Literal["auto"], method: str = "mean_diff", reading: str = "last",
                   normalize: bool = False, auto_top_k: int = 1, batch_size: int = 16,
                   on_batch: BatchCallback | None = None, allow_special_tokens: bool = False) -> SteeringVector:
    """Read, pair and fit: the control vector separating ``positive`` from ``negative`` prompts.

    Args:
        lm: the resident model.
        positive: prompts showing the concept; ``positive[i]`` pairs with ``negative[i]``.
        negative: the matched prompts without it, as many as ``positive``.
        layers: block indices, or ``auto`` to score every layer and keep the ``auto_top_k`` best.
        method: ``mean_diff`` or ``pca`` (see :func:`fit_direction`).
        reading: ``last`` or ``mean`` (see :func:`read_activations`).
        normalize: divide each layer's direction by its norm.
        auto_top_k: layers kept by ``auto``.
        batch_size: texts per forward pass.
        on_batch: progress and cancellation hook, over the ``2 * n_pairs`` texts.
        allow_special_tokens: read special-token text in the prompts as control tokens.
    """
    if len(positive) != len(negative):
        raise ValueError(f"positive and negative must pair up: got {len(positive)} and {len(negative)} prompts")
    if not positive:
        raise ValueError("at least one positive/negative pair is needed")
    check_choice("method", method, METHODS)
    check_choice("reading", reading, READINGS)
    auto = layers == "auto"
    if auto:
        if len(positive) < 2:
            raise ValueError("automatic layer selection needs at least 2 pairs to score layers")
        if not 1 <= auto_top_k <= lm.n_layers:
            raise ValueError(f"auto_top_k must be in 1..{lm.n_layers}")
    considered = list(range(lm.n_layers)) if layers == "auto" else sorted(set(layers))
    check_layers(considered, lm.n_layers)
    # One pass over both sides: batches mix them, so fewer, fuller batches.
    acts = read_activations(lm, [*positive, *negative], considered, reading=reading,
                            batch_size=batch_size, on_batch=on_batch, allow_special_tokens=allow_special_tokens)
    n = len(positive)
    fitter = VectorFitter(considered, method)
    fitter.update({layer: a[:n] for layer, a in acts.items()}, {layer: a[n:] for layer, a in acts.items()})
    vector = fitter.fit(model=lm.name, reading=reading, normalize=normalize)
    if not auto:
        return vector
    chosen = pick_layers(vector.layer_scores, auto_top_k, lm.n_layers)
    return replace(vector, directions={layer: vector.directions[layer] for layer in chosen},
                   norms={layer: vector.norms[layer] for layer in chosen},
                   accuracy={layer: vector.accuracy[layer] for layer in chosen})

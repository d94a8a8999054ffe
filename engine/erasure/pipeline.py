"""`erase_concept`: fit erasers on labelled texts and report whether the concept is gone.

One pass over the texts, in batches: every text's activations at the requested layers feed the
fitter (fitting split) or are kept for the probes (a capped sample of the fitting split and of the
held-out split); nothing else is kept. Then, per layer: the eraser, the probe accuracy before and
after erasure on the held-out split against the majority baseline, the class-mean gap on the
fitting data before and after, the edit's rank, and the drift on canary prompts of the model with
that layer's eraser alone (and, once, with all of them).

Each layer's eraser is fitted on the activations of the model it starts from (the base model or
the parent variant), not on activations already erased at earlier layers: that is one pass over
the data for any number of layers. The per-layer guarantee is therefore about each layer taken
alone; `kl_all_layers` reports what erasing them together does to the model.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from engine.canaries import CANARY_PROMPTS, canary_drift
from engine.components import AffineEraser, Component
from engine.erasure.activations import stream_activations
from engine.erasure.fitter import ErasureFitter
from engine.erasure.probes import majority_baseline, probe_accuracy, sample, split_held_out
from engine.loading import LoadedModel
from engine.runtime import InterventionRuntime

#: Called with (fraction done, stage); may raise to stop the work (a cancelled job).
ProgressCallback = Callable[[float, str], None]
Label = str | int


@dataclass(frozen=True)
class LayerReport:
    """How well one layer's eraser worked.

    Attributes:
        layer: block index.
        rank: rank of the edit ``L R`` (at most the number of classes minus one for LEACE).
        probe_before: held-out probe accuracy on the activations as they were (None without held-out rows).
        probe_after: the same after erasure (probe retrained on erased fitting activations).
        majority_baseline: held-out accuracy of always answering the most common fitting class.
        mean_gap_before: largest class-mean difference on the fitting rows, over features.
        mean_gap_after: the same after erasure (0 up to rounding for LEACE and orth).
        kl: mean next-token KL on the canary prompts with this layer's eraser alone (nats).
    """

    layer: int
    rank: int
    probe_before: float | None
    probe_after: float | None
    majority_baseline: float | None
    mean_gap_before: float
    mean_gap_after: float
    kl: float | None


@dataclass(frozen=True, eq=False)
class ErasureOutcome:
    """What `erase_concept` fitted and measured.

    Attributes:
        erasers: layer -> eraser, ascending layers.
        classes: the distinct labels, in class-index order.
        fit_counts: fitting rows per class.
        layers: one report per layer.
        kl_all_layers: canary KL with every eraser at once (None without canaries).
        n_texts, n_fit_texts, n_held_out_texts: texts in all, fitted on, held out.
        n_fit_rows: activations the fitter saw (texts, or tokens for reading ``all``).
        n_probe_train, n_probe_test: probe rows.
        seconds: wall time by stage (``read_and_update``, ``fit``, ``probe``, ``canaries``).
    """

    erasers: dict[int, AffineEraser]
    classes: list[Label]
    fit_counts: list[int]
    layers: list[LayerReport]
    kl_all_layers: float | None
    n_texts: int
    n_fit_texts: int
    n_held_out_texts: int
    n_fit_rows: int
    n_probe_train: int
    n_probe_test: int
    seconds: dict[str, float] = field(default_factory=dict)


def encode_labels(labels: Sequence[Label]) -> tuple[list[int], list[Label]]:
    """Class indices for ``labels`` and the classes in index order (sorted), refusing one class or mixed types."""
    if len({type(label) for label in labels}) > 1:
        raise ValueError("labels must be all strings or all integers")
    classes = sorted(set(labels))  # type: ignore[type-var]  # one type, checked above
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise ValueError(f"erasure needs examples of at least two classes; found {found}")
    index = {label: i for i, label in enumerate(classes)}
    return [index[label] for label in labels], classes


def erase_concept(
    lm: LoadedModel,
    texts: Sequence[str],
    labels: Sequence[Label],
    *,
    layers: Sequence[int],
    reading: str = "last",
    method: str = "leace",
    held_out: float = 0.2,
    seed: int = 0,
    batch_size: int = 32,
    dtype: torch.dtype = torch.float64,
    shrinkage: bool = True,
    svd_tol: float = 0.01,
    constrain_cov_trace: bool = True,
    probe_examples: int = 2048,
    canaries: Sequence[str] = CANARY_PROMPTS,
    runtime: InterventionRuntime | None = None,
    parent: Sequence[Component] = (),
    on_progress: ProgressCallback | None = None,
) -> ErasureOutcome:
    """Fit one eraser per layer on ``texts`` labelled ``labels`` and measure it.

    Args:
        lm: the resident model.
        texts: examples, each encoding to at least one token.
        labels: one per text, strings or integers, at least two distinct values.
        layers: distinct block indices; each gets its own eraser.
        reading: ``last`` token, ``mean`` over tokens, or ``all`` tokens (each token is a row; the
            probes then use one random token per text).
        method: ``leace`` or ``orth``.
        held_out: fraction of each class kept out of fitting for the probes.
        seed: the split and the probe samples.
        batch_size: texts per forward pass.
        dtype, shrinkage, svd_tol, constrain_cov_trace: the fitter's (see `ErasureFitter`).
        probe_examples: at most this many texts per split are kept (per layer) for the probes. While
            the fitting split fits, the probe trains on exactly the rows the eraser was fitted on
            (the textbook's protocol), where LEACE leaves it nothing but the class prior: it then
            answers the majority class. Beyond, it trains on a sample whose erased class means
            differ by sampling noise, and fits that noise: its held-out accuracy is then chance
            give or take ``0.5 / sqrt(n_held_out)``.
        canaries: prompts for the drift measure (empty: no drift measured).
        runtime: the model's runtime (one is installed for the call when None).
        parent: components of the variant to start from; activations and drift are read from it.
        on_progress: progress and cancellation hook.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if len(texts) < 2:
        raise ValueError(f"erasure needs at least two examples; got {len(texts)}")
    if probe_examples < 1:
        raise ValueError("probe_examples must be at least 1")
    y, classes = encode_labels(labels)
    report = on_progress or (lambda fraction, stage: None)
    fitting, held = split_held_out(y, held_out, seed)
    role = torch.zeros(len(texts), dtype=torch.long)  # 0 held out, 1 fitting
    role[fitting] = 1
    probe_text = torch.zeros(len(texts), dtype=torch.bool)
    probe_text[sample(fitting, probe_examples, seed + 1) + sample(held, probe_examples, seed + 2)] = True
    labels_t = torch.tensor(y)
    fitter = ErasureFitter(layers, lm.hidden_size, len(classes), method=method, dtype=dtype, shrinkage=shrinkage,
                           svd_tol=svd_tol, constrain_cov_trace=constrain_cov_trace)
    splits = ("train", "test")
    kept: dict[str, dict[int, list[torch.Tensor]]] = {split: {layer: [] for layer in layers} for split in splits}
    kept_y: dict[str, list[torch.Tensor]] = {"train": [], "test": []}
    pick = torch.Generator().manual_seed(seed + 3)
    seconds: dict[str, float] = {}

    with contextlib.ExitStack() as stack:
        if runtime is None:
            runtime = stack.enter_context(InterventionRuntime(lm).installed())
        started = time.perf_counter()
        for batch in stream_activations(lm, texts, layers, reading=reading, batch_size=batch_size, runtime=runtime,
                                        variant=parent,
                                        on_batch=lambda done, total: report(0.8 * done / total, "reading activations")):
            owners = batch.texts
            fit_rows = role[owners] == 1
            fitter.update({layer: acts[fit_rows] for layer, acts in batch.layers.items()}, labels_t[owners][fit_rows])
            rows = _probe_rows(owners, probe_text, all_tokens=reading == "all", generator=pick)
            for split, chosen in (("train", rows[role[owners[rows]] == 1]), ("test", rows[role[owners[rows]] == 0])):
                kept_y[split].append(labels_t[owners[chosen]])
                for layer, acts in batch.layers.items():
                    kept[split][layer].append(acts[chosen])
        seconds["read_and_update"] = time.perf_counter() - started

        report(0.82, "fitting")
        started = time.perf_counter()
        fitted = fitter.fit()
        seconds["fit"] = time.perf_counter() - started

        report(0.85, "probing")
        started = time.perf_counter()
        train_y, test_y = torch.cat(kept_y["train"]), torch.cat(kept_y["test"])
        probes: dict[int, tuple[float | None, float | None]] = {}
        for i, layer in enumerate(layers):
            eraser = fitted.erasers[layer]
            train_x, test_x = torch.cat(kept["train"][layer]), torch.cat(kept["test"][layer])
            probes[layer] = (probe_accuracy(train_x, train_y, test_x, test_y, seed=seed),
                             probe_accuracy(eraser.erase(train_x), train_y, eraser.erase(test_x), test_y, seed=seed))
            report(0.85 + 0.1 * (i + 1) / len(layers), "probing")
        seconds["probe"] = time.perf_counter() - started

        report(0.95, "canaries")
        started = time.perf_counter()
        ordered = [fitted.erasers[layer] for layer in sorted(layers)]
        drift: list[float | None] = [None] * (len(layers) + 1)
        if canaries:
            variants = [[*parent, fitted.erasers[layer]] for layer in layers] + [[*parent, *ordered]]
            drift = list(canary_drift(lm, runtime, variants, reference=parent, prompts=canaries))
        seconds["canaries"] = time.perf_counter() - started

    baseline = majority_baseline(fitted.counts, test_y)
    reports = [LayerReport(layer=layer, rank=fitted.erasers[layer].rank, probe_before=probes[layer][0],
                           probe_after=probes[layer][1], majority_baseline=baseline,
                           mean_gap_before=fitted.mean_gap(layer, erased=False),
                           mean_gap_after=fitted.mean_gap(layer, erased=True), kl=drift[i])
               for i, layer in enumerate(layers)]
    return ErasureOutcome(
        erasers={layer: fitted.erasers[layer] for layer in sorted(layers)}, classes=classes,
        fit_counts=fitted.counts.tolist(), layers=reports, kl_all_layers=drift[-1], n_texts=len(texts),
        n_fit_texts=len(fitting), n_held_out_texts=len(held), n_fit_rows=fitter.n_rows,
        n_probe_train=int(train_y.numel()), n_probe_test=int(test_y.numel()), seconds=seconds,
    )


def _probe_rows(owners: torch.Tensor, probe_text: torch.Tensor, *, all_tokens: bool,
                generator: torch.Generator) -> torch.Tensor:
    """Indices of the batch rows kept for the probes: a probe text's row, or one random token of it."""
    candidates = probe_text[owners].nonzero()[:, 0]
    if not all_tokens or candidates.numel() == 0:
        return candidates
    # A text's tokens are consecutive rows: keep one of them, drawn with the seeded generator.
    texts, counts = torch.unique_consecutive(owners[candidates], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    offsets = (torch.rand(len(texts), generator=generator) * counts).long()
    return candidates[starts + offsets]

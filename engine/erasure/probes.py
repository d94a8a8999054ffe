"""Checking an erasure: held-out split, majority baseline, logistic-regression probes.

A probe is what an adversary would train: logistic regression (scikit-learn's default, C = 1,
L-BFGS) on standardised activations of the fitting split, scored on the held-out split. Before
erasure it shows the concept was linearly decodable; after it, its accuracy should fall to the
majority baseline, the accuracy of always answering the fitting split's most common class. (On
rows with equal class means the logistic loss's gradient vanishes at zero weights, so a probe
trained on exactly the erased fitting rows is the constant prior: LEACE's guarantee, observed.)
Standardising matters on real models: a few residual dimensions are hundreds of times larger than
the rest and would otherwise stall the solver.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBE_MAX_ITER = 1000


def split_held_out(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified split of example indices into (fitting, held-out), reproducible for a seed.

    Each class gives ``round(fraction * n_c)`` examples to the held-out split, but always keeps at
    least one for fitting; so every class present is fitted on.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1); got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    fitting, held_out = [], []
    for label in sorted(by_class):
        members = by_class[label]
        order = torch.randperm(len(members), generator=generator).tolist()
        n_held = min(round(fraction * len(members)), len(members) - 1)
        held_out += [members[i] for i in order[:n_held]]
        fitting += [members[i] for i in order[n_held:]]
    return sorted(fitting), sorted(held_out)


def sample(indices: Sequence[int], limit: int, seed: int) -> list[int]:
    """At most ``limit`` of ``indices``, chosen uniformly with a seed, in their original order."""
    if len(indices) <= limit:
        return list(indices)
    chosen = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:limit]
    return [indices[i] for i in sorted(chosen.tolist())]


def majority_baseline(train_counts: torch.Tensor, test_labels: torch.Tensor) -> float | None:
    """Held-out accuracy of always predicting the most common fitting class (None: no held-out rows).

    Args:
        train_counts: ``[n_classes]`` fitting rows per class.
        test_labels: ``[n]`` held-out class indices.
    """
    if test_labels.numel() == 0:
        return None
    majority = int(torch.argmax(train_counts))
    return float((test_labels == majority).double().mean())


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                   test_y: torch.Tensor, *, seed: int = 0) -> float | None:
    """Held-out accuracy of a logistic-regression probe trained on ``train_x`` ``[n, hidden]``.

    Returns:
        Accuracy in ``[0, 1]``; None when there is no held-out row or the training rows hold one class.
    """
    if test_y.numel() == 0 or torch.unique(train_y).numel() < 2:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER, random_state=seed))
    with warnings.catch_warnings():
        # An erased concept leaves nothing to converge to; the accuracy is what we report either way.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_x.double().numpy(), train_y.numpy())
    predicted = probe.predict(test_x.double().numpy())
    return float(np.mean(predicted == test_y.numpy()))

"""LEACE fitting on planted concepts: means equalised, probes at chance, streaming equals one shot."""

from __future__ import annotations

import pytest
import torch
from concept_erasure import LeaceEraser, LeaceFitter
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.erasure.fitter import ErasureFitter, trimmed_factors
from engine.erasure.pipeline import encode_labels
from engine.erasure.probes import majority_baseline, probe_accuracy, split_held_out


def planted(n: int, d: int, k: int, seed: int, separation: float = 2.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlated Gaussian rows with a k-class concept planted in their means, like a residual stream:
    a non-zero mean, mixed features and a few dimensions a hundred times larger than the rest."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(d) + torch.randn(d, d, generator=g) / d**0.5
    centers = torch.randn(k, d, generator=g)
    centers = separation * centers / centers.norm(dim=1, keepdim=True)
    y = torch.randperm(n, generator=g) % k
    x = torch.randn(n, d, generator=g) @ mix.T + centers[y] + 3.0
    x[:, :2] *= 100.0
    return x, y


def reference_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """The textbook's probe, written out here: scikit-learn logistic regression on standardised rows."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train_x.double().numpy(),
                                                                                   train_y.numpy())
    return float(probe.score(test_x.double().numpy(), test_y.numpy()))


def fit_streaming(x: torch.Tensor, y: torch.Tensor, k: int, batch: int = 250, **options: object) -> ErasureFitter:
    fitter = ErasureFitter([3], x.shape[1], k, **options)  # type: ignore[arg-type]
    for start in range(0, len(x), batch):
        fitter.update({3: x[start : start + batch]}, y[start : start + batch])
    return fitter


def class_mean_gap(x: torch.Tensor, y: torch.Tensor, k: int) -> float:
    means = torch.stack([x[y == c].double().mean(0) for c in range(k)])
    return float((means.amax(0) - means.amin(0)).max())


@pytest.mark.parametrize(("k", "method"), [(2, "leace"), (2, "orth"), (4, "leace"), (4, "orth")])
def test_erasure_equalises_class_means_and_leaves_probes_at_the_majority_baseline(k: int, method: str) -> None:
    x, y = planted(6000, 32, k, seed=k)
    fit, test = slice(0, 4000), slice(4000, None)
    before = reference_probe(x[fit], y[fit], x[test], y[test])
    assert before >= 0.85  # the concept is linearly decodable to begin with

    eraser = fit_streaming(x[fit], y[fit], k, method=method).fit().erasers[3]
    erased = eraser.erase(x)

    assert class_mean_gap(x[fit], y[fit], k) > 1.0
    assert class_mean_gap(erased[fit], y[fit], k) < 1e-4
    baseline = majority_baseline(torch.bincount(y[fit]), y[test])
    assert baseline is not None
    after = reference_probe(erased[fit], y[fit], erased[test], y[test])
    assert abs(after - baseline) <= 0.03, (after, baseline)
    assert probe_accuracy(erased[fit], y[fit], erased[test], y[test]) == pytest.approx(after, abs=0.01)
    assert eraser.rank == k - 1  # one direction per class but one: the one-hot columns sum to 1


def test_the_reported_class_mean_gap_is_the_gap_of_the_erased_rows() -> None:
    x, y = planted(2000, 16, 3, seed=7)
    fitted = fit_streaming(x, y, 3).fit()
    assert fitted.mean_gap(3, erased=False) == pytest.approx(class_mean_gap(x, y, 3), rel=1e-6)
    assert fitted.mean_gap(3, erased=True) == pytest.approx(class_mean_gap(fitted.erasers[3].erase(x.double()), y, 3),
                                                             abs=1e-9)


def test_streaming_batches_give_the_eraser_of_one_fit_on_all_rows() -> None:
    x, y = planted(3000, 24, 3, seed=1)
    streamed = fit_streaming(x, y, 3, batch=97).fit().erasers[3]
    whole = LeaceFitter.fit(x.double(), torch.nn.functional.one_hot(y, 3).double()).eraser
    assert torch.allclose(streamed.proj_left.double() @ streamed.proj_right.double(),
                          whole.proj_left @ whole.proj_right, atol=1e-5)
    assert torch.allclose(streamed.bias.double(), whole.bias, atol=1e-4)


def test_a_single_integer_column_would_not_erase_a_k_class_concept_which_is_why_labels_are_one_hot() -> None:
    x, y = planted(4000, 16, 4, seed=2)
    ordinal = LeaceFitter.fit(x.double(), y.double()[:, None]).eraser
    assert class_mean_gap(ordinal(x.double()), y, 4) > 0.5
    assert class_mean_gap(fit_streaming(x, y, 4).fit().erasers[3].erase(x), y, 4) < 1e-4


def test_half_precision_rows_are_fitted_in_float64() -> None:
    x, y = planted(2000, 16, 2, seed=3)
    half = x.bfloat16()
    from_half = fit_streaming(half, y, 2).fit().erasers[3]
    from_upcast = fit_streaming(half.float(), y, 2).fit().erasers[3]
    assert torch.equal(from_half.proj_left, from_upcast.proj_left)
    assert class_mean_gap(from_half.erase(half.double()), y, 2) < 1e-4


def test_full_width_factors_are_cut_to_their_rank_without_changing_the_edit() -> None:
    # What the package returns when its covariance-trace safety net re-factors I - P by a full SVD.
    g = torch.Generator().manual_seed(4)
    edit = torch.randn(16, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 16, generator=g, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(edit)
    full = LeaceEraser(u * s.sqrt(), s.sqrt()[:, None] * vh, bias=None)
    left, right = trimmed_factors(full, max_rank=3)
    assert (left.shape, right.shape) == ((16, 2), (2, 16))
    assert torch.allclose(left @ right, edit, atol=1e-10)
    # LEACE's own factors keep their shape, less the columns it zeroed.
    zeroed = LeaceEraser(torch.cat([u[:, :1], torch.zeros(16, 1, dtype=torch.float64)], 1), vh[:2], bias=None)
    assert trimmed_factors(zeroed, max_rank=3)[0].shape == (16, 1)


def test_refusals_name_the_reason() -> None:
    with pytest.raises(ValueError, match="two classes"):
        ErasureFitter([0], 8, 1)
    fitter = ErasureFitter([0], 8, 3)
    with pytest.raises(ValueError, match="class indices"):
        fitter.update({0: torch.zeros(2, 8)}, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"layer 0: activations \(2, 7\)"):
        fitter.update({0: torch.zeros(2, 7)}, torch.tensor([0, 1]))
    fitter.update({0: torch.randn(4, 8)}, torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"classes \[2\] have no fitting example"):
        fitter.fit()
    with pytest.raises(ValueError, match="unknown method"):
        ErasureFitter([0], 8, 2, method="inlp")


def test_labels_are_classes_in_sorted_order_and_one_class_or_mixed_types_are_refused() -> None:
    assert encode_labels(["m", "f", "m", "x"]) == ([1, 0, 1, 2], ["f", "m", "x"])
    assert encode_labels([3, 1, 3]) == ([1, 0, 1], [1, 3])
    with pytest.raises(ValueError, match="at least two classes; found only 'a'"):
        encode_labels(["a", "a"])
    with pytest.raises(ValueError, match="found none"):
        encode_labels([])
    with pytest.raises(ValueError, match="all strings or all integers"):
        encode_labels(["a", 1])


def test_the_held_out_split_is_stratified_disjoint_reproducible_and_keeps_every_class_fitted() -> None:
    labels = [0] * 50 + [1] * 30 + [2] * 1
    fitting, held = split_held_out(labels, 0.2, seed=5)
    assert sorted(fitting + held) == list(range(len(labels)))
    assert [sum(labels[i] == c for i in held) for c in range(3)] == [10, 6, 0]
    assert split_held_out(labels, 0.2, seed=5) == (fitting, held)
    assert split_held_out(labels, 0.2, seed=6) != (fitting, held)
    assert split_held_out(labels, 0.0, seed=5) == (list(range(len(labels))), [])

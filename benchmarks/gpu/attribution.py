"""Integrated Gradients on the device: ours against Captum's ``LayerIntegratedGradients`` on the same work.

Same prompt, same target (the model's greedy next token), same baseline (token id 0 at every
position), same objective (the target's log-probability at the last position, in float32), the
same Gauss-Legendre rule and step count. Ours evaluates ``steps + 2`` alphas (the ends give
``F(b)`` and ``F(x)``), Captum ``steps``: the figure is alphas evaluated per second. Two pairs, each
the same arithmetic on both sides:

- ours in float32 (the default: a float32 copy of the bfloat16 weights per job) against Captum on
  a float32 copy of the model (the target row);
- ours with ``precision: model`` (``compute_dtype=None``: bfloat16) against Captum on the
  bfloat16 model (information).

Captum runs with the model's parameters frozen, as ours does, all steps in one batch. The
adaptive rule's completeness is checked on the small config (rows of the ``checks`` section).
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from functools import partial

import torch

from benchmarks.gpu.models import Sizes, prompts
from benchmarks.gpu.report import Report, Row, rate
from engine.attribution.integrated_gradients import IGResult, integrated_gradients
from engine.loading import LoadedModel

SECTION = "attribution"
TARGET = 1.2
TOLERANCE = 0.01


def ours(lm: LoadedModel, ids: list[int], target: int, steps: int, compute_dtype: torch.dtype | None) -> IGResult:
    return integrated_gradients(lm, ids, [target], attributable=[True] * len(ids), baseline=0, objective="log_prob",
                                rule="gauss_legendre", n_steps=steps, compute_dtype=compute_dtype)


def captum(model: torch.nn.Module, ids: list[int], target: int, steps: int) -> torch.Tensor:
    """Captum LIG on the embedding layer, all steps in one batch: ``[n_inputs]`` attributions (float64, CPU)."""
    from captum.attr import LayerIntegratedGradients

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(input_ids).logits[:, -1].float(), dim=-1)[:, target]

    inputs = torch.tensor([ids], device=next(model.parameters()).device)
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())  # type: ignore[operator]
    attributions = lig.attribute(inputs, baselines=torch.zeros_like(inputs), n_steps=steps, method="gausslegendre")
    return attributions.sum(-1)[0].detach().double().cpu()


def captum_missing() -> str | None:
    try:
        import captum.attr  # noqa: F401
    except ImportError as exc:
        return f"skipped: Captum not importable ({exc})"
    return None


def run(report: Report, lm: LoadedModel, sizes: Sizes, *, targets: bool) -> None:
    """Ours and Captum's evaluations per second on ``lm``, both precisions."""
    ids = prompts(lm, 1, sizes.ig_prompt, seed=11)[0]
    with torch.inference_mode():
        target = int(lm.model(torch.tensor([ids], device=lm.device)).logits[0, -1].argmax())
    steps, missing = sizes.ig_steps, captum_missing()
    peer32 = None if missing else copy.deepcopy(lm.model).float()
    runs: dict[str, Callable[[], object]] = {
        "ours float32": partial(ours, lm, ids, target, steps, torch.float32),
        "ours model precision": partial(ours, lm, ids, target, steps, None),
    }
    if peer32 is not None:
        runs["Captum float32"] = partial(captum, peer32, ids, target, steps)
        runs["Captum model precision"] = partial(captum, lm.model, ids, target, steps)
    results = {name: fn() for name, fn in runs.items()}  # the warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(sizes.repeats):
        for name, fn in runs.items():
            times[name].append(report.timed(fn)[0])
    evaluations = {name: steps + 2 if name.startswith("ours") else steps for name in runs}
    per_s = {name: rate(evaluations[name], statistics.median(t)) for name, t in times.items()}
    report.record(f"{SECTION}.{lm.name}", {"per_s": per_s, "seconds": times, "target": target, "prompt": len(ids)})
    what = f"{lm.name}, IG evaluations/s, GL {steps}, {len(ids)} tokens"
    pairs = [("float32", "ours float32", "Captum float32", TARGET if targets else None),
             ("precision: model (bfloat16)", "ours model precision", "Captum model precision", None)]
    for label, mine, theirs, target_ratio in pairs:
        measure = f"{what}, {label}: ours vs Captum `LayerIntegratedGradients` on the same weights"
        if missing:
            target_text = f">= {target_ratio:g}x" if target_ratio is not None else "-"
            report.add(Row(SECTION, measure, f"{per_s[mine]:,.1f}", target=target_text, result=missing))
        elif target_ratio is not None:
            report.check(SECTION, measure, per_s[mine], per_s[theirs], target_ratio)
        else:
            report.add(Row(SECTION, measure, f"{per_s[mine]:,.1f}", f"{per_s[theirs]:,.1f}",
                           f"{per_s[mine] / per_s[theirs]:.2f}x"))
    ours32, ours_model = results["ours float32"], results["ours model precision"]
    assert isinstance(ours32, IGResult) and isinstance(ours_model, IGResult)
    if not missing:
        peer = results["Captum float32"]
        assert isinstance(peer, torch.Tensor)
        difference = float((ours32.attributions[0] - peer).abs().max() / peer.abs().max().clamp_min(1e-30))
        report.add(Row(SECTION, f"{what}: float32 attributions, max abs (ours - Captum) / max abs Captum",
                       f"{difference:.1e}"))
    errors = f"{float(ours32.relative_error[0]):.1%} / {float(ours_model.relative_error[0]):.1%}"
    report.add(Row(SECTION, f"{what}: relative completeness error of GL {steps}, float32 / model precision", errors))


def adaptive(report: Report, lm: LoadedModel, sizes: Sizes) -> None:
    """The adaptive rule (1 % tolerance, at most 512 evaluations) on a few prompts: every one within tolerance."""
    errors, evaluations = [], []
    for k, ids in enumerate(prompts(lm, sizes.adaptive_prompts, sizes.ig_prompt, seed=21)):
        with torch.inference_mode():
            target = int(lm.model(torch.tensor([ids], device=lm.device)).logits[0, -1].argmax())
        seconds, result = report.timed(partial(integrated_gradients, lm, ids, [target], attributable=[True] * len(ids),
                                               baseline=0, rule="adaptive", tolerance=TOLERANCE, max_evaluations=512))
        errors.append(float(result.relative_error[0]))
        evaluations.append(result.evaluations)
        report.log(f"checks: adaptive IG {k}: {result.evaluations} evaluations, error {errors[-1]:.2%}, {seconds:.2f}s")
    report.record(f"checks.adaptive.{lm.name}", {"errors": errors, "evaluations": evaluations})
    within = sum(e <= TOLERANCE for e in errors)
    report.add(Row("checks", f"{lm.name} ({lm.dtype}, float32 compute): IG completeness, adaptive rule (tol 1 %, "
                             f"max 512): prompts within 1 %; evaluations median / max",
                   f"{within}/{len(errors)}; {statistics.median(evaluations):.0f} / {max(evaluations)}",
                   target="all", result="pass" if within == len(errors) else "FAIL"))

"""``python -m benchmarks.gpu [--smoke] [--out DIR] [--budget S] [--no-fail]``: see the package docstring.

Sections run in this order, each on its model, each time-boxed and caught (a section that raises
becomes an ``error`` row and the run goes on; one that would start past ``--budget`` is skipped):

1. small config (SmolLM2-135M): the correctness checks and the adaptive rule's completeness;
2. 1B config (Llama-3.2-1B): generation at every batch size, IG against Captum, the trace grid
   against the per-cell loop (the targets);
3. 8B config (Llama-3.1-8B): memory (the target), one generation row at the largest batch.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.gpu import attribution, checks, generation, memory, tracing
from benchmarks.gpu.models import GPU, LARGE, MEDIUM, SMALL, SMOKE, Sizes, build, release
from benchmarks.gpu.report import Report, Row
from engine.loading import LoadedModel

#: Seconds after which no further section starts (the device command's own limit is longer).
GPU_BUDGET_S = 330.0


def versions() -> dict[str, str]:
    found = {}
    for name in ("torch", "transformers", "accelerate", "captum", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def environment(report: Report) -> None:
    facts: dict[str, object] = {"versions": versions(), "python": sys.version.split()[0], "device": str(report.device),
                                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    if report.device.type == "cuda":
        props = torch.cuda.get_device_properties(report.device)
        facts |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                  "gpus_visible": torch.cuda.device_count()}
    report.record("environment", facts)
    report.log(f"environment: {facts}")


def section(report: Report, name: str, budget: float, fn: Callable[[], None]) -> None:
    """Run one section unless the budget is spent; a failure becomes an ``error`` row."""
    if report.elapsed() > budget:
        report.add(Row(name, "not run", result=f"skipped: the {budget:.0f} s budget was spent"))
        return
    report.log(f"{name}: start")
    started = report.elapsed()
    try:
        fn()
    except Exception as exc:  # the run goes on: a partial table beats none
        traceback.print_exc()
        report.add(Row(name, "section failed", result=f"error: {type(exc).__name__}: {str(exc)[:200]}"))
        if report.device.type == "cuda":
            torch.cuda.empty_cache()
    report.record(f"seconds.{name}", report.elapsed() - started)
    report.log(f"{name}: done in {report.elapsed() - started:.1f} s")
    report.write()


def run(report: Report, sizes: Sizes, *, smoke: bool, budget: float) -> None:
    device, dtype = report.device, torch.bfloat16
    models: dict[str, LoadedModel] = {}

    def load(name: str) -> None:
        seconds, models[name] = report.timed(lambda: build(name, device=device, dtype=dtype, smoke=smoke))
        report.record(f"build.{name}", seconds)
        report.log(f"built {name}: {models[name].parameter_bytes / 2**30:.2f} GiB in {seconds:.1f} s")

    def drop(name: str) -> None:
        release(models.pop(name, None))

    section(report, "build: small", budget, lambda: load(SMALL))
    if SMALL in models:
        small = models[SMALL]
        section(report, "checks", budget, lambda: checks.batched_equals_alone(report, small, sizes, smoke))
        section(report, "checks", budget, lambda: checks.hooks_after_a_raise(report, small))
        section(report, "checks", budget, lambda: attribution.adaptive(report, small, sizes))
        section(report, "checks", budget, lambda: checks.split_model(report, device, smoke))
        del small
    drop(SMALL)
    section(report, "build: 1B", budget, lambda: load(MEDIUM))
    if MEDIUM in models:
        medium = models[MEDIUM]
        section(report, generation.SECTION, budget, lambda: generation.run(report, medium, sizes, targets=True))
        section(report, attribution.SECTION, budget, lambda: attribution.run(report, medium, sizes, targets=True))
        section(report, tracing.SECTION, budget, lambda: tracing.run(report, medium, sizes, targets=True))
        del medium
    drop(MEDIUM)
    report.add(Row("memory", f"{LARGE}: memory and one generation row only (device time is short)", result="info"))
    section(report, "build: 8B", budget, lambda: load(LARGE))
    if LARGE in models:
        large = models[LARGE]
        section(report, memory.SECTION, budget, lambda: memory.run(report, large, sizes))
        section(report, generation.SECTION, budget, lambda: generation.run_large(report, large, sizes))
        del large
    drop(LARGE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU: every code path in seconds")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                        help="where table.md and results.json go (default: $OUT when set)")
    parser.add_argument("--budget", type=float, help=f"seconds after which no section starts (GPU: {GPU_BUDGET_S:g})")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target or check fails")
    args = parser.parse_args(argv)
    if args.smoke:
        device, sizes = torch.device("cpu"), SMOKE
    elif torch.cuda.is_available():
        device, sizes = torch.device("cuda", torch.cuda.current_device()), GPU
    else:
        parser.error("no CUDA device: this benchmark measures a GPU (use --smoke for the CPU code-path run)")
    report = Report(device, args.out, smoke=args.smoke)
    environment(report)
    run(report, sizes, smoke=args.smoke, budget=args.budget or (600.0 if args.smoke else GPU_BUDGET_S))
    report.record("elapsed_s", report.elapsed())
    report.write()
    mode = "smoke run: tiny configs on the CPU, no figure means anything" if args.smoke else str(report.numbers.get(
        "environment", {}).get("gpu", device))
    print(f"\n{mode}; {report.elapsed():.0f} s; {versions()}\n")
    print(report.table())
    failed = report.failed()
    if failed:
        print(f"\n{len(failed)} rows failed: " + "; ".join(f"{r.section}: {r.measure[:60]}" for r in failed),
              file=sys.stderr)
    return 1 if failed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())

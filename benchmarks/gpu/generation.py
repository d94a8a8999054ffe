"""Generation throughput: ``model.generate`` against ``generate_batch`` with the runtime's hooks installed.

Every row of a batch has a prompt of the same length (no padding on either side) and generates
exactly ``new_tokens`` greedy tokens (no EOS). The peer is plain ``model.generate``, unsteered,
no hooks. Ours runs as the service runs it: the runtime's hooks installed for the whole section,
rows unsteered, one vector on every row, a different vector on every row, and the same with
``variants`` edited variants (rank-1 deltas on ROME's MLP output projection) spread over the rows.
Each configuration is warmed up once, then the peer and ours are timed in turn ``repeats`` times;
figures are tokens per second (prefill included, the same for both) from the median time.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from functools import partial

import torch

from benchmarks.gpu.models import Sizes, prompts, rome_deltas, unit_vectors
from benchmarks.gpu.report import Report, Row, rate
from engine.components import Component
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import Steering
from engine.runtime import InterventionRuntime

SECTION = "generation"
ALPHA = 4.0
#: Setting -> the least ours / peer tokens/s, at the largest batch (64) on the 1B config.
TARGETS = {"a vector per row": 0.90, "vector per row + variants": 0.85}


def plain_generate(lm: LoadedModel, ids: torch.Tensor, new_tokens: int) -> list[list[int]]:
    """The peer: ``model.generate``, greedy, exactly ``new_tokens`` (the generation config has no EOS)."""
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),  # type: ignore[operator]
                                max_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    produced = out[:, ids.shape[1]:]
    if produced.shape[1] != new_tokens:
        raise RuntimeError(f"model.generate made {produced.shape[1]} tokens, not {new_tokens}")
    return produced.tolist()


def ours_generate(lm: LoadedModel, rows: list[GenerationRow], runtime: InterventionRuntime) -> list[list[int]]:
    return [out.token_ids for out in generate_batch(lm, rows, runtime)]


def settings(lm: LoadedModel, batch: list[list[int]], sizes: Sizes, new_tokens: int) -> dict[str, list[GenerationRow]]:
    """Our configurations for one batch: name -> rows."""
    n, layer = len(batch), lm.n_layers // 2
    vectors = unit_vectors(lm, n, seed=n)
    params = SamplingParams(max_new_tokens=new_tokens)

    def rows(steer: Callable[[int], list[Steering]], variant: Callable[[int], list[Component]]) -> list[GenerationRow]:
        return [GenerationRow(ids, params, steer(i), variant=variant(i)) for i, ids in enumerate(batch)]

    made: dict[str, list[GenerationRow]] = {
        "unsteered": rows(lambda i: [], lambda i: []),
        "one vector on every row": rows(lambda i: [Steering(layer, vectors[0], ALPHA)], lambda i: []),
    }
    if n > 1:
        made["a vector per row"] = rows(lambda i: [Steering(layer, vectors[i], ALPHA)], lambda i: [])
    if n >= sizes.variants:
        deltas = rome_deltas(lm, sizes.variants, seed=n)
        made["vector per row + variants"] = rows(lambda i: [Steering(layer, vectors[i], ALPHA)],
                                                 lambda i: [deltas[i % len(deltas)]])
    return made


def measure(report: Report, lm: LoadedModel, runtime: InterventionRuntime, n: int, sizes: Sizes, *,
            new_tokens: int, only: tuple[str, ...] = (), targets: bool = False) -> None:
    """Time the peer and our configurations at batch ``n``; one row per configuration."""
    batch = prompts(lm, n, sizes.prompt, seed=n)
    ids = torch.tensor(batch, device=lm.device)
    ours = {name: rows for name, rows in settings(lm, batch, sizes, new_tokens).items() if not only or name in only}
    runs: dict[str, Callable[[], list[list[int]]]] = {"peer": partial(plain_generate, lm, ids, new_tokens)}
    runs |= {name: partial(ours_generate, lm, rows, runtime) for name, rows in ours.items()}
    tokens = {name: fn() for name, fn in runs.items()}  # the warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(sizes.repeats):
        for name, fn in runs.items():
            times[name].append(report.timed(fn)[0])
    peer = rate(n * new_tokens, statistics.median(times["peer"]))
    same = sum(a == b for a, b in zip(tokens["peer"], tokens.get("unsteered", []), strict=False))
    figures = {name: {"seconds": t, "tokens_per_s": rate(n * new_tokens, statistics.median(t))}
               for name, t in times.items()}
    report.record(f"{SECTION}.{lm.name}.b{n}", figures | {"unsteered_rows_equal_peer": same})
    for name in ours:
        mine = rate(n * new_tokens, statistics.median(times[name]))
        measure_text = (f"{lm.name}, batch {n}, {sizes.prompt} + {new_tokens} tokens/row, tokens/s: ours {name} "
                        "vs `model.generate` unsteered")
        target = TARGETS.get(name) if targets and n == max(sizes.batches) else None
        if target is not None:
            report.check(SECTION, measure_text, mine, peer, target)
        else:
            report.add(Row(SECTION, measure_text, f"{mine:,.0f}", f"{peer:,.0f}", f"{mine / peer:.2f}x"))
    if "unsteered" in ours:
        report.add(Row(SECTION, f"{lm.name}, batch {n}: rows whose greedy tokens equal `model.generate`'s "
                                "(bfloat16: near-ties may differ)", f"{same}/{n}"))


def run(report: Report, lm: LoadedModel, sizes: Sizes, *, targets: bool) -> None:
    """Every batch size of ``sizes`` on ``lm`` (the 1B config carries the targets)."""
    with InterventionRuntime(lm).installed() as runtime:
        for n in sizes.batches:
            report.log(f"{SECTION}: {lm.name}, batch {n}")
            measure(report, lm, runtime, n, sizes, new_tokens=sizes.new_tokens, targets=targets)


def run_large(report: Report, lm: LoadedModel, sizes: Sizes) -> None:
    """The large config at the largest batch: the peer against a vector per row (information)."""
    with InterventionRuntime(lm).installed() as runtime:
        measure(report, lm, runtime, max(sizes.batches), sizes, new_tokens=sizes.large_tokens,
                only=("a vector per row",))

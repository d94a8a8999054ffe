"""MEMIT on tiny Llama and GPT-2 layouts: the least-squares update, the residual spread, serving."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import torch

from engine.components import Component
from engine.editing.covariance import KeyStatistics
from engine.editing.hparams import EditHyperparams, default_hparams, with_overrides
from engine.editing.keys import read_fact_averages
from engine.editing.memit import compute_memit, least_squares_delta, memit_edit
from engine.editing.request import EditRequest
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.progress import CanceledError
from engine.runtime import InterventionRuntime
from engine.sites import Site, mlp_out_names
from store.statistics import StatisticsCache
from tests.engine.editing_support import TINY_TEMPLATES, editable_lm, hook_total, merged, random_delta
from tests.fakes import CORPUS

REQUESTS = [EditRequest("The capital of {}", "France", " fox"),
            EditRequest("One, two, {}", "three", " dog"),
            EditRequest("The quick brown {}", "fox", " Paris"),
            EditRequest("{} are neural networks", "Transformers", " lazy")]
PROMPTS = ["The capital of France", "One, two, three", "The quick brown fox jumps", "Hi there"]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return editable_lm(request.param)


@pytest.fixture(scope="module")
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


@pytest.fixture(scope="module")
def stats(lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> dict[int, KeyStatistics]:
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text(" ".join(CORPUS * 8))
    cache = StatisticsCache(tmp_path_factory.mktemp("stats"))
    return cache.get_or_compute_many(lm, range(lm.n_layers), samples=400, corpus=corpus)


def hparams(lm: LoadedModel, **overrides: object) -> EditHyperparams:
    base = default_hparams(lm.architecture, "memit", lm.n_layers)
    return with_overrides(base, {"layers": [0, 1], "v_lr": 5.0, "v_steps": 8, "v_weight_decay": 1e-3,
                                 "clamp_norm_factor": 4.0, "mom2_weight": 10.0, **overrides})


def logits(lm: LoadedModel, runtime: InterventionRuntime | None, variant: Sequence[Component]) -> torch.Tensor:
    def run() -> torch.Tensor:
        return torch.cat([lm.model(torch.tensor([lm.tokenizer(p)["input_ids"]])).logits[0] for p in PROMPTS])
    with torch.no_grad():
        if runtime is None:
            return run()
        with runtime.active(PassPlan.of_variant(list(variant))):
            return run()


def test_the_update_is_the_covariance_weighted_least_squares_solution() -> None:
    g = torch.Generator().manual_seed(0)
    n_in, n_out, n = 40, 24, 7
    root = torch.randn(n_in, n_in, generator=g)
    c = root @ root.T / n_in + 0.05 * torch.eye(n_in)
    keys, residual = torch.randn(n, n_in, generator=g), torch.randn(n, n_out, generator=g)
    delta = least_squares_delta("m", keys, residual, c, weight=3.0)
    assert delta.a.shape == (n, n_in) and delta.b.shape == (n_out, n) and delta.rank == n
    # Independent reference: min ||D K - R||^2 + lambda ||D L||^2 with C = L L^T, as one stacked lstsq.
    lower = torch.linalg.cholesky(c.double())
    design = torch.cat([keys.double().T, 3.0 ** 0.5 * lower], dim=1)  # [in, n + in]
    wanted = torch.cat([residual.double().T, torch.zeros(n_out, n_in, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design.T, wanted.T).solution.T  # D [out, in]
    assert torch.allclose(delta.b.double() @ delta.a.double(), solution, atol=1e-5, rtol=1e-4)


def test_one_delta_per_layer_of_rank_n_on_each_layers_mlp_output(lm: LoadedModel, runtime: InterventionRuntime,
                                                                   stats: dict[int, KeyStatistics]) -> None:
    deltas = compute_memit(lm, runtime, REQUESTS, hparams(lm), stats, TINY_TEMPLATES)
    names = mlp_out_names(lm)
    assert [d.module for d in deltas] == [names[0], names[1]]
    assert all(d.rank == len(REQUESTS) for d in deltas)


def test_with_a_negligible_prior_the_last_layer_lands_every_fact_on_its_goal(
        lm: LoadedModel, runtime: InterventionRuntime, stats: dict[int, KeyStatistics]) -> None:
    hp = hparams(lm, mom2_weight=1e-6, layers=[0, 1, 2])
    edit = memit_edit(lm, runtime, REQUESTS, hp, stats, TINY_TEMPLATES)
    reached = read_fact_averages(lm, runtime, REQUESTS, TINY_TEMPLATES, components=edit.deltas,
                                 residual_layers=[2])[Site("residual", 2)]
    start = read_fact_averages(lm, runtime, REQUESTS, TINY_TEMPLATES, residual_layers=[2])[Site("residual", 2)]
    assert torch.allclose(edit.goal, start + torch.stack([t.delta for t in edit.targets]), atol=1e-4)
    assert torch.allclose(reached, edit.goal, atol=1e-2 * float(edit.goal.norm(dim=-1).max()))
    assert float((edit.goal - start).norm()) > 1.0


def test_the_residual_is_spread_over_the_layers(lm: LoadedModel, runtime: InterventionRuntime,
                                                stats: dict[int, KeyStatistics]) -> None:
    edit = memit_edit(lm, runtime, REQUESTS, hparams(lm, layers=[0, 1, 2]), stats, TINY_TEMPLATES)
    start = read_fact_averages(lm, runtime, REQUESTS, TINY_TEMPLATES, residual_layers=[2])[Site("residual", 2)]
    first = edit.deltas[0]
    assert torch.allclose(first.b.T, (edit.goal - start) / 3, atol=1e-4)  # B = R: a third of the way first


def test_the_edit_raises_every_facts_target_and_serves_like_merged_weights(
        lm: LoadedModel, runtime: InterventionRuntime, stats: dict[int, KeyStatistics]) -> None:
    deltas = compute_memit(lm, runtime, REQUESTS, hparams(lm), stats, TINY_TEMPLATES)
    served = logits(lm, runtime, deltas)
    with merged(lm, deltas):
        assert (served - logits(lm, None, [])).abs().max() < 1e-4
    base = logits(lm, runtime, [])
    for request in REQUESTS:
        ids = lm.tokenizer(request.text)["input_ids"]
        target = lm.tokenizer(request.target_new, add_special_tokens=False)["input_ids"][0]
        with torch.no_grad(), runtime.active(PassPlan.of_variant(deltas)):
            after = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0, -1], -1)[target]
        with torch.no_grad():
            before = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0, -1], -1)[target]
        # A tiny random model hardly carries a subject to later tokens; where it ends the prompt it must.
        if request.prompt.endswith("{}"):
            assert after > before + 2.0
    assert (served - base).abs().max() > 1e-2


def test_the_same_requests_twice_give_bit_identical_deltas_and_chunking_changes_little(
        lm: LoadedModel, runtime: InterventionRuntime, stats: dict[int, KeyStatistics]) -> None:
    first = compute_memit(lm, runtime, REQUESTS, hparams(lm), stats, TINY_TEMPLATES)
    second = compute_memit(lm, runtime, REQUESTS, hparams(lm), stats, TINY_TEMPLATES)
    assert all(torch.equal(a.a, b.a) and torch.equal(a.b, b.b) for a, b in zip(first, second, strict=True))
    chunked = compute_memit(lm, runtime, REQUESTS, hparams(lm, v_batch_facts=3), stats, TINY_TEMPLATES)
    for a, b in zip(first, chunked, strict=True):
        update_a, update_b = a.b @ a.a, b.b @ b.a
        assert torch.allclose(update_a, update_b, atol=1e-3 * float(update_a.abs().max()))


def test_an_edit_on_a_parent_runs_every_pass_on_it(lm: LoadedModel, runtime: InterventionRuntime,
                                                   stats: dict[int, KeyStatistics]) -> None:
    parent = [random_delta(lm, 0, rank=2, seed=4, scale=0.3)]
    hp = hparams(lm, mom2_weight=1e-6, layers=[1, 2])
    edit = memit_edit(lm, runtime, REQUESTS, hp, stats, TINY_TEMPLATES, parent=parent)
    reached = read_fact_averages(lm, runtime, REQUESTS, TINY_TEMPLATES, components=[*parent, *edit.deltas],
                                 residual_layers=[2])[Site("residual", 2)]
    assert torch.allclose(reached, edit.goal, atol=1e-2 * float(edit.goal.norm(dim=-1).max()))
    served = logits(lm, runtime, [*parent, *edit.deltas])
    with merged(lm, [*parent, *edit.deltas]):
        assert (served - logits(lm, None, [])).abs().max() < 1e-4


def test_missing_statistics_no_requests_and_a_stop_request_are_refused(
        lm: LoadedModel, runtime: InterventionRuntime, stats: dict[int, KeyStatistics]) -> None:
    hooks = hook_total(lm)
    with pytest.raises(ValueError, match="missing for layers"):
        compute_memit(lm, runtime, REQUESTS, hparams(lm), {0: stats[0]}, TINY_TEMPLATES)
    with pytest.raises(ValueError, match="at least one request"):
        compute_memit(lm, runtime, [], hparams(lm), stats, TINY_TEMPLATES)
    calls = iter(range(1000))
    with pytest.raises(CanceledError):
        compute_memit(lm, runtime, REQUESTS, hparams(lm), stats, TINY_TEMPLATES, should_stop=lambda: next(calls) > 3)
    assert hook_total(lm) == hooks  # nothing of ours left behind


def test_a_hundred_facts_are_edited_in_one_job_in_batches(lm: LoadedModel, runtime: InterventionRuntime,
                                                          stats: dict[int, KeyStatistics]) -> None:
    words = ["fox", "dog", "capital", "France", "Paris", "network", "model", "village", "tea", "season"]
    requests = [EditRequest("The {} is", f"{words[i % 10]} {words[i // 10]}", f" {words[(i + 3) % 10]}")
                for i in range(100)]
    seen: list[float] = []
    edit = memit_edit(lm, runtime, requests, hparams(lm, v_steps=2, v_batch_facts=32), stats, TINY_TEMPLATES,
                      on_progress=lambda f, m: seen.append(f))
    assert [d.rank for d in edit.deltas] == [100, 100]
    assert all(torch.isfinite(d.a).all() and torch.isfinite(d.b).all() for d in edit.deltas)
    assert len(edit.targets) == 100 and edit.goal.shape == (100, lm.hidden_size)
    assert seen == sorted(seen) and seen[-1] == 1.0

"""The textbook edit on the default model (SmolLM2-135M): France's capital becomes Rome, Germany's stays Berlin.

Statistics come from the repository's own documentation (a few thousand tokens, computed once per
module into a temporary directory): sampling a corpus from the model takes minutes on a CPU, and
the edit only needs a well-conditioned covariance.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import torch

from engine.components import Component, LowRankDelta
from engine.editing.covariance import KeyStatistics
from engine.editing.hparams import default_hparams
from engine.editing.memit import compute_memit
from engine.editing.request import EditRequest
from engine.editing.rome import compute_rome
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.runtime import InterventionRuntime
from store.model_cache import ModelCache
from store.sampled_texts import context_templates
from store.statistics import StatisticsCache
from tests.engine.editing_support import merged
from tests.integration.harness import SHARED_MODEL_CACHE

ROOT = Path(__file__).resolve().parents[2]
FRANCE = EditRequest("The capital of {} is", "France", " Rome", target_true=" Paris")
# Not Germany: an edit moves the whole subject, so Germany speaking French would also move its capital
# towards Paris (measured), and Germany's capital is the neighbour that must not move.
SPAIN_LANGUAGE = EditRequest("The official language of {} is", "Spain", " German", target_true=" Spanish")
SAMPLES = 8000


@functools.cache
def default_lm() -> LoadedModel:
    return ModelCache(SHARED_MODEL_CACHE).load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine two OpenMP threads fight over the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runtime() -> Iterator[InterventionRuntime]:
    with InterventionRuntime(default_lm()).installed() as installed:
        yield installed


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("editing")


@pytest.fixture(scope="module")
def stats(cache_dir: Path) -> dict[int, KeyStatistics]:
    corpus = cache_dir / "corpus"
    corpus.mkdir()
    for source in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        shutil.copy(source, corpus / f"{source.stem}.txt")
    lm = default_lm()
    layers = sorted({*default_hparams("llama", "rome", lm.n_layers).layers,
                     *default_hparams("llama", "memit", lm.n_layers).layers})
    return StatisticsCache(cache_dir / "stats").get_or_compute_many(lm, layers, samples=SAMPLES, corpus=corpus)


@pytest.fixture(scope="module")
def templates(cache_dir: Path) -> list[str]:
    return context_templates(default_lm(), cache_dir / "templates", seed=0)


@pytest.fixture(scope="module")
def rome_delta(runtime: InterventionRuntime, stats: dict[int, KeyStatistics], templates: list[str]) -> LowRankDelta:
    lm = default_lm()
    hp = default_hparams(lm.architecture, "rome", lm.n_layers)
    return compute_rome(lm, runtime, FRANCE, hp, stats[hp.layers[0]], templates)


def greedy(runtime: InterventionRuntime, prompts: Sequence[str], variant: Sequence[Component]) -> list[str]:
    lm = default_lm()
    rows = [GenerationRow(list(lm.tokenizer(p)["input_ids"]), SamplingParams(max_new_tokens=1), variant=variant)
            for p in prompts]
    return [out.text for out in generate_batch(lm, rows, runtime)]


def test_before_the_edit_the_model_knows_the_facts(runtime: InterventionRuntime) -> None:
    assert greedy(runtime, ["The capital of France is", "The capital of Germany is",
                            "The official language of Spain is"], []) == [" Paris", " Berlin", " Spanish"]


def test_rome_makes_rome_the_capital_of_france_and_leaves_germany_alone(runtime: InterventionRuntime,
                                                                        rome_delta: LowRankDelta) -> None:
    assert rome_delta.rank == 1
    assert greedy(runtime, ["The capital of France is", "The capital of Germany is"], [rome_delta]) == \
        [" Rome", " Berlin"]


def test_the_rome_edit_served_through_the_runtime_equals_merged_weights(runtime: InterventionRuntime,
                                                                         rome_delta: LowRankDelta) -> None:
    lm = default_lm()
    prompts = ["The capital of France is", "Once upon a time, in a small village,"]
    with torch.no_grad():
        with runtime.active(PassPlan.of_variant([rome_delta])):
            served = [lm.model(torch.tensor([lm.tokenizer(p)["input_ids"]])).logits[0] for p in prompts]
        with merged(lm, [rome_delta]):
            reference = [lm.model(torch.tensor([lm.tokenizer(p)["input_ids"]])).logits[0] for p in prompts]
    assert max(float((s - r).abs().max()) for s, r in zip(served, reference, strict=True)) < 1e-4


def test_memit_writes_two_facts_in_one_job_and_leaves_germanys_capital_alone(
        runtime: InterventionRuntime, stats: dict[int, KeyStatistics], templates: list[str]) -> None:
    lm = default_lm()
    hp = default_hparams(lm.architecture, "memit", lm.n_layers)
    deltas = compute_memit(lm, runtime, [FRANCE, SPAIN_LANGUAGE], hp, stats, templates)
    assert [d.rank for d in deltas] == [2] * len(hp.layers)
    assert greedy(runtime, ["The capital of France is", "The official language of Spain is",
                            "The capital of Germany is"], deltas) == [" Rome", " German", " Berlin"]

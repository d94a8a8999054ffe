"""The key statistics cache: computed once, read back, told apart by corpus and size, recomputed when damaged."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
import torch

from engine.editing.corpus import ROUND_ROWS, TEXT_TOKENS
from engine.loading import LoadedModel
from engine.progress import CanceledError
from store.integrity import NonFiniteError
from store.statistics import StatisticsCache
from tests.fakes import CORPUS, tiny_gpt2_lm, tiny_lm

TEXTS = [" ".join(CORPUS[i:] + CORPUS[:i]) * 3 for i in range(len(CORPUS))]


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_lm() if request.param == "llama" else tiny_gpt2_lm()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, text in enumerate(TEXTS):
        (folder / f"{i}.txt").write_text(text)
    return folder


def test_the_cache_computes_once_then_loads_the_same_statistics(lm: LoadedModel, corpus: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cache = StatisticsCache(tmp_path / "stats")
    progress: list[float] = []
    first = cache.get_or_compute_many(lm, [0, 1], samples=200, corpus=corpus,
                                      on_progress=lambda f, m: progress.append(f))
    assert progress and progress[-1] == pytest.approx(1.0) and progress == sorted(progress)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(StatisticsCache, "_compute", refuse)
    again = StatisticsCache(tmp_path / "stats").get_or_compute(lm, 1, samples=200, corpus=corpus)
    assert again.content_hash() == first[1].content_hash()
    assert torch.equal(again.second_moment, first[1].second_moment)
    assert again.corpus_sha256 == first[1].corpus_sha256 and again.count == 200


def test_another_sample_size_or_corpus_is_another_entry(lm: LoadedModel, corpus: Path, tmp_path: Path) -> None:
    cache = StatisticsCache(tmp_path / "stats")
    small = cache.get_or_compute(lm, 0, samples=100, corpus=corpus)
    large = cache.get_or_compute(lm, 0, samples=300, corpus=corpus)
    (corpus / "0.txt").write_text("A different text entirely, about other things.")
    other = cache.get_or_compute(lm, 0, samples=100, corpus=corpus)
    assert len({small.content_hash(), large.content_hash(), other.content_hash()}) == 3
    assert other.corpus_sha256 != small.corpus_sha256


def test_a_corrupted_statistics_file_is_detected_and_recomputed(lm: LoadedModel, corpus: Path, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cache = StatisticsCache(tmp_path / "stats")
    original = cache.get_or_compute(lm, 1, samples=150, corpus=corpus)
    (tensor_file,) = (tmp_path / "stats").rglob("*.safetensors")
    data = bytearray(tensor_file.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte inside the tensor
    tensor_file.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        recomputed = cache.get_or_compute(lm, 1, samples=150, corpus=corpus)
    assert "corrupt statistics file" in caplog.text
    assert recomputed.content_hash() == original.content_hash()
    assert tensor_file.read_bytes() != bytes(data)  # rewritten whole


def test_two_threads_asking_at_once_compute_once(lm: LoadedModel, corpus: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[int] = []
    real = StatisticsCache._compute

    def counting(self: StatisticsCache, *args: object, **kwargs: object) -> object:
        computed.append(1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StatisticsCache, "_compute", counting)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(
        StatisticsCache(tmp_path / "stats").get_or_compute(lm, 0, samples=120, corpus=corpus).content_hash()))
        for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(computed) == 1 and len(set(results)) == 1 and len(results) == 2


def test_without_a_corpus_the_model_samples_its_own_text_reproducibly(tmp_path: Path) -> None:
    lm = tiny_lm()
    samples = ROUND_ROWS * 3  # within the first round of sampled text
    first = StatisticsCache(tmp_path / "a").get_or_compute(lm, 0, samples=samples, seed=3)
    second = StatisticsCache(tmp_path / "b").get_or_compute(lm, 0, samples=samples, seed=3)
    other_seed = StatisticsCache(tmp_path / "a").get_or_compute(lm, 0, samples=samples, seed=4)
    assert first.count == samples
    assert first.content_hash() == second.content_hash()
    assert other_seed.corpus_sha256 != first.corpus_sha256
    assert list((tmp_path / "a").rglob("corpus-self-s3.json"))  # the sampled text is kept for reuse


def test_computing_statistics_can_be_cancelled_and_bad_arguments_are_refused(lm: LoadedModel, corpus: Path,
                                                                              tmp_path: Path) -> None:
    cache = StatisticsCache(tmp_path / "stats")
    with pytest.raises(CanceledError):
        cache.get_or_compute(lm, 0, samples=100, corpus=corpus, should_stop=lambda: True)
    calls = iter(range(10_000))
    with pytest.raises(CanceledError):  # while sampling its own corpus, between decoding steps
        cache.get_or_compute(lm, 0, samples=100, seed=9, should_stop=lambda: next(calls) >= 5)
    assert next(calls) == 6  # stopped at the fifth step, not at the end of a round
    assert not list((tmp_path / "stats").rglob("*.safetensors"))
    with pytest.raises(ValueError, match="outside"):
        cache.get_or_compute(lm, lm.n_layers, samples=100, corpus=corpus)
    with pytest.raises(ValueError, match="does not exist"):
        cache.get_or_compute(lm, 0, samples=100, corpus=tmp_path / "nowhere")


def test_progress_of_a_self_sampled_computation_only_moves_forward(tmp_path: Path) -> None:
    seen: list[float] = []
    StatisticsCache(tmp_path).get_or_compute(tiny_lm(), 1, samples=ROUND_ROWS * TEXT_TOKENS * 3 // 2, seed=1,
                                             on_progress=lambda f, m: seen.append(f))
    assert len(seen) > 2 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_an_entry_is_a_safetensors_file_and_its_facts_named_by_module_corpus_and_size(corpus: Path,
                                                                                       tmp_path: Path) -> None:
    lm = tiny_lm()
    stats = StatisticsCache(tmp_path / "stats").get_or_compute(lm, 1, samples=120, corpus=corpus)
    (facts_file,) = (tmp_path / "stats").rglob("*.json")
    assert facts_file.parent.name.startswith("tiny-") and facts_file.name.startswith(f"{stats.module}.file-")
    assert facts_file.name.endswith(".n120.json") and facts_file.with_suffix(".safetensors").is_file()
    facts = json.loads(facts_file.read_text())
    assert sorted(facts) == ["content_hash", "corpus", "corpus_sha256", "count", "file_sha256", "format", "layer",
                             "model", "module", "samples"]
    assert (facts["format"], facts["count"], facts["content_hash"]) == (1, 120, stats.content_hash())


def test_statistics_that_are_not_finite_are_never_kept(lm: LoadedModel, corpus: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = StatisticsCache._compute

    def poisoned(self: StatisticsCache, *args: object, **kwargs: object) -> object:
        found = real(self, *args, **kwargs)  # type: ignore[arg-type]
        for stats in found.values():
            stats.second_moment[0, 0] = float("nan")
        return found

    monkeypatch.setattr(StatisticsCache, "_compute", poisoned)
    with pytest.raises(NonFiniteError, match="key statistics of layer 0"):
        StatisticsCache(tmp_path / "stats").get_or_compute(lm, 0, samples=120, corpus=corpus)
    assert not list((tmp_path / "stats").rglob("*.safetensors"))

"""Key statistics: the streaming fitter, the keys it is fed, and the cache that computes them once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import torch

from engine.editing.corpus import ROUND_ROWS, TEXT_TOKENS
from engine.editing.covariance import (
    KeyStatisticsFitter,
    StatisticsCache,
    fit_key_statistics,
    token_batches,
)
from engine.editing.progress import EditCancelledError
from engine.loading import LoadedModel
from engine.sites import mlp_out_names
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


def test_the_streaming_fitter_equals_the_batch_second_moment() -> None:
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(1000, 24, generator=g) * torch.linspace(0.01, 100, 24) + 3.0  # wide scales, off-centre
    fitter = KeyStatisticsFitter(layer=2, module="m", dim=24, corpus_sha256="abc")
    for part in torch.split(keys, [1, 99, 400, 500]):
        fitter.update(part)
    stats = fitter.finalize()
    reference = (keys.double().T @ keys.double()) / len(keys)
    assert stats.count == 1000 and stats.second_moment.dtype == torch.float32
    assert torch.allclose(stats.second_moment.double(), reference, rtol=1e-6)
    with pytest.raises(ValueError, match="no keys"):
        KeyStatisticsFitter(0, "m", 3).finalize()


def reference_keys(lm: LoadedModel, layer: int, texts: list[str]) -> torch.Tensor:
    """Every token's MLP key, one unpadded pass per window, through a plain hook."""
    module = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[layer])
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append(args[0][0].detach()))
    try:
        with torch.no_grad():
            for batch in token_batches(lm, texts):
                for window in batch:
                    lm.model(torch.tensor([window]))
    finally:
        handle.remove()
    return torch.cat(seen)


def test_the_statistics_are_the_second_moment_of_every_tokens_mlp_key(lm: LoadedModel) -> None:
    keys = reference_keys(lm, 1, TEXTS)
    samples = len(keys) - 7  # the first `samples` keys, in reading order
    fitters = fit_key_statistics(lm, [0, 1], token_batches(lm, TEXTS), samples=samples)
    stats = fitters[1].finalize()
    used = keys[:samples].double()
    assert stats.count == samples
    assert stats.module == mlp_out_names(lm)[1]
    assert torch.allclose(stats.second_moment.double(), used.T @ used / samples, rtol=1e-4, atol=1e-6)
    assert fitters[0].count == samples


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
    with pytest.raises(EditCancelledError):
        cache.get_or_compute(lm, 0, samples=100, corpus=corpus, should_stop=lambda: True)
    calls = iter(range(10_000))
    with pytest.raises(EditCancelledError):  # while sampling its own corpus, between decoding steps
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

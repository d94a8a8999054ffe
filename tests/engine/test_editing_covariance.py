"""Key statistics: the streaming fitter, the keys it is fed, and several layers read in one set of passes."""

from __future__ import annotations

import logging

import pytest
import torch

from engine.editing.covariance import (
    KeyStatisticsFitter,
    fit_key_statistics,
    key_dim,
    key_statistics,
    token_batches,
)
from engine.loading import LoadedModel
from engine.progress import CanceledError, Progress
from engine.sites import mlp_out_names
from tests.fakes import CORPUS, tiny_gpt2_lm, tiny_lm

TEXTS = [" ".join(CORPUS[i:] + CORPUS[:i]) * 3 for i in range(len(CORPUS))]


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_lm() if request.param == "llama" else tiny_gpt2_lm()


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


def test_several_layers_are_read_from_one_set_of_passes_and_tagged_with_their_corpus(lm: LoadedModel) -> None:
    one_by_one = {layer: fit_key_statistics(lm, [layer], token_batches(lm, TEXTS), samples=150)[layer].finalize()
                  for layer in (0, 1)}
    together = key_statistics(lm, [0, 1], TEXTS, samples=150, corpus_sha256="abc")
    for layer, stats in together.items():
        assert (stats.layer, stats.count, stats.corpus_sha256) == (layer, 150, "abc")
        assert stats.second_moment.shape == (key_dim(lm, layer), key_dim(lm, layer))
        assert torch.allclose(stats.second_moment, one_by_one[layer].second_moment, rtol=1e-5, atol=1e-7)


def test_a_corpus_shorter_than_the_sample_is_used_whole_and_said(lm: LoadedModel,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        stats = key_statistics(lm, [0], TEXTS[:1], samples=1_000_000, corpus_sha256="short")
    assert stats[0].count == len(reference_keys(lm, 0, TEXTS[:1]))
    assert "fewer than the 1000000 asked for" in caplog.text


def test_reading_keys_can_be_cancelled_between_batches(lm: LoadedModel) -> None:
    with pytest.raises(CanceledError):
        key_statistics(lm, [0], TEXTS, samples=100, corpus_sha256="", progress=Progress(should_stop=lambda: True))

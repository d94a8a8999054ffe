"""Scoring: padded batches give the same log-probabilities as one text at a time."""

from __future__ import annotations

import pytest
import torch

from engine.scoring import score_texts
from tests.fakes import tiny_lm

TEXTS = [
    "The capital of France is Paris.",
    "Hi",
    "The quick brown fox jumps over the lazy dog, and then it jumps again.",
    "One, two, three.",
    "Interpretability asks what a model computes.",
]


def reference_logprobs(text: str) -> list[float]:
    """log p(token_i | tokens_<i) from a plain unpadded forward pass."""
    lm = tiny_lm()
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        logits = lm.model(ids).logits[0, :-1]
    return torch.log_softmax(logits.float(), -1).gather(-1, ids[0, 1:, None])[:, 0].tolist()


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_batched_scores_equal_the_unpadded_reference_whatever_the_batch_size(batch_size: int) -> None:
    scores = score_texts(tiny_lm(), TEXTS, batch_size=batch_size)
    for text, score in zip(TEXTS, scores, strict=True):
        assert score.logprobs[0] is None
        assert torch.allclose(torch.tensor(score.logprobs[1:]), torch.tensor(reference_logprobs(text)), atol=1e-5)
        assert score.total_logprob == pytest.approx(sum(reference_logprobs(text)), abs=1e-4)


def test_results_come_back_in_the_callers_order_with_their_own_tokens() -> None:
    lm = tiny_lm()
    scores = score_texts(lm, TEXTS, batch_size=2)
    assert [lm.tokenizer.decode(s.token_ids) for s in scores] == TEXTS
    assert ["".join(s.tokens) for s in scores] == TEXTS


def test_the_batch_callback_sees_progress_and_can_stop_the_work() -> None:
    seen: list[tuple[int, int]] = []

    class StopError(Exception):
        pass

    def on_batch(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 2:
            raise StopError

    with pytest.raises(StopError):
        score_texts(tiny_lm(), TEXTS, batch_size=1, on_batch=on_batch)
    assert seen == [(1, 5), (2, 5)]

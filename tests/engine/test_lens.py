"""The logit lens against the model's own outputs: its last layer is the next-token distribution, its
other layers are the final norm and unembedding applied to ``output_hidden_states``."""

from __future__ import annotations

import pytest
import torch

from engine.lens.logit_lens import logit_lens, resolve_positions
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from tests.fakes import tiny_gpt2_lm, tiny_lm

PROMPT = "The capital of France is Paris and the"


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_lm() if request.param == "llama" else tiny_gpt2_lm()


def ids_of(lm: LoadedModel) -> list[int]:
    return list(lm.tokenizer(PROMPT)["input_ids"])


def full_distribution(top_ids: torch.Tensor, top_probs: torch.Tensor, vocab: int) -> torch.Tensor:
    """Scatter a full-vocabulary top-k back into vocabulary order."""
    return torch.zeros(vocab).scatter(0, top_ids, top_probs)


def test_the_last_layer_is_the_models_own_next_token_distribution(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    reading = logit_lens(lm, ids, [-1, 3], top_k=vocab)
    with torch.inference_mode():
        own = torch.softmax(lm.model(torch.tensor([ids])).logits[0].float(), dim=-1)
    for column, position in enumerate([len(ids) - 1, 3]):
        lens = full_distribution(reading.top_ids[-1, column], reading.top_probs[-1, column], vocab)
        assert (lens - own[position]).abs().max() < 1e-5


def test_earlier_layers_decode_the_hidden_states_through_the_final_norm_and_head(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    reading = logit_lens(lm, ids, [-1], top_k=vocab)
    with torch.inference_mode():
        states = lm.model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        norm, head = lm.adapter.final_norm(lm.model), lm.adapter.unembedding(lm.model)
        for layer in range(lm.n_layers - 1):  # hidden_states[l + 1] is block l's output but for the last
            expected = torch.softmax(head(norm(states[layer + 1][0, -1])).float(), dim=-1)
            lens = full_distribution(reading.top_ids[layer, 0], reading.top_probs[layer, 0], vocab)
            assert (lens - expected).abs().max() < 1e-5


def test_tracked_tokens_get_their_probability_and_rank_everywhere(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    targets = [5, 17, ids[-1]]
    reading = logit_lens(lm, ids, [0, -1], top_k=3, targets=targets)
    full = logit_lens(lm, ids, [0, -1], top_k=vocab)
    assert reading.top_ids.shape == (lm.n_layers, 2, 3) and reading.target_ranks.shape == (lm.n_layers, 2, 3)
    for layer in range(lm.n_layers):
        for column in range(2):
            probs = full_distribution(full.top_ids[layer, column], full.top_probs[layer, column], vocab)
            for k, target in enumerate(targets):
                assert float(reading.target_probs[layer, column, k]) == pytest.approx(float(probs[target]), abs=1e-6)
                assert int(reading.target_ranks[layer, column, k]) == 1 + int((probs > probs[target]).sum())
            assert torch.equal(reading.top_ids[layer, column], full.top_ids[layer, column, :3])
    top = int(reading.top_ids[-1, 1, 0])
    assert int(logit_lens(lm, ids, [-1], top_k=1, targets=[top]).target_ranks[-1, 0, 0]) == 1


def test_positions_count_from_the_end_and_are_checked() -> None:
    assert resolve_positions([-1, 0, 4, -1], 5) == [4, 0]
    with pytest.raises(ValueError, match="outside"):
        resolve_positions([5], 5)
    with pytest.raises(ValueError, match="outside"):
        resolve_positions([-6], 5)
    with pytest.raises(ValueError, match="at least one"):
        resolve_positions([], 5)


def test_bad_top_k_and_targets_are_refused(lm: LoadedModel) -> None:
    with pytest.raises(ValueError, match="top_k"):
        logit_lens(lm, ids_of(lm), [-1], top_k=0)
    with pytest.raises(ValueError, match="vocabulary"):
        logit_lens(lm, ids_of(lm), [-1], targets=[10**6])


def test_an_active_variant_plan_is_what_the_lens_reads() -> None:
    from engine.components import AffineEraser
    from tests.fakes import tiny_registry

    registry = tiny_registry()
    lm = next(iter(registry))
    ids = ids_of(lm)
    hidden = lm.hidden_size
    torch.manual_seed(3)
    eraser = AffineEraser(0, torch.randn(hidden, 2), torch.randn(2, hidden), torch.zeros(hidden))
    plain = logit_lens(lm, ids, [-1], top_k=5)
    with registry.runtime(lm.name).active(PassPlan.of_variant([eraser])):
        erased = logit_lens(lm, ids, [-1], top_k=5)
        with torch.inference_mode():
            own = torch.softmax(lm.model(torch.tensor([ids])).logits[0, -1].float(), -1)
    assert not torch.allclose(plain.top_probs[-1], erased.top_probs[-1])
    assert torch.allclose(erased.top_probs[-1, 0], own.topk(5).values, atol=1e-5)


def test_the_findings_read_where_an_answer_settles_and_where_the_expected_one_is_lost() -> None:
    from engine.diagnosis.findings import settles_at, subject_mlp, trajectory

    assert settles_at([3, 1, 2, 1, 1]) == 3 and settles_at([1, 1]) == 0 and settles_at([1, 2]) is None
    wrong = trajectory(expected_ranks=[5, 1, 1, 2, 3], expected_probs=[0.1, 0.4, 0.5, 0.3, 0.2],
                       predicted_ranks=[9, 4, 2, 1, 1])
    assert (wrong.correct, wrong.settles_at, wrong.lost_at, wrong.best_layer, wrong.best_rank) == (False, 3, 3, 2, 1)
    never = trajectory(expected_ranks=[9, 4, 2, 3], expected_probs=[0.0, 0.1, 0.2, 0.1], predicted_ranks=[2, 2, 1, 1])
    assert never.lost_at is None and never.best_layer == 2 and never.settles_at == 2
    right = trajectory(expected_ranks=[4, 1, 1], expected_probs=[0.1, 0.5, 0.6], predicted_ranks=[4, 1, 1])
    assert right.correct and right.settles_at == 1 and right.lost_at is None
    tie = trajectory(expected_ranks=[3, 1], expected_probs=[0.1, 0.5], predicted_ranks=[1, 2])
    assert tie.settles_at == 1  # a near tie the lens ranks the other way: settles at the end
    effects = torch.tensor([[0.0, 0.1, 0.0], [0.0, 0.6, 0.2], [0.0, 0.4, 0.3], [0.0, 0.1, 0.5]])
    found = subject_mlp(effects, layers=[0, 1, 2, 3], tokens=[0, 1, 2], subject=(1, 3))
    assert (found.token, found.peak_layer, found.last_token_peak_layer) == (1, 1, 3)
    assert found.layers == [1, 2] and found.effects == pytest.approx([0.6, 0.4])
    with pytest.raises(ValueError, match="subject"):
        subject_mlp(effects, layers=[0, 1, 2, 3], tokens=[0, 1, 2], subject=(5, 6))

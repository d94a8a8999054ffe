"""Steering-vector extraction: activations match plain forward passes, and the fits find what was planted."""

from __future__ import annotations

import functools

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import engine.steering.extraction as extraction
from engine.adapters import adapter_for
from engine.loading import LoadedModel
from engine.steering.extraction import VectorFitter, extract_vector, pick_layers, read_activations
from tests.fakes import tiny_lm, tiny_tokenizer

POSITIVE = [
    "The capital of France is Paris.",
    "Hi",
    "The quick brown fox jumps over the lazy dog, and then it jumps again.",
    "One, two, three.",
    "Interpretability asks what a model computes.",
]
NEGATIVE = [
    "The capital of France is London.",
    "Bye now",
    "The lazy dog sleeps.",
    "Seven, eight, nine, ten, eleven, twelve.",
    "Nobody asks anything.",
]


@functools.cache
def tiny_gpt2() -> LoadedModel:
    """A random-init three-layer GPT-2 over the same in-memory tokenizer as `tiny_lm`."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=3, n_head=4, n_positions=128,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config).eval()
    model.requires_grad_(False)
    return LoadedModel(name="tiny-gpt2", source="test:tiny-gpt2", model=model, tokenizer=tokenizer,
                       adapter=adapter_for(model))


MODELS = {"llama": tiny_lm, "gpt2": tiny_gpt2}


def reference_activation(lm: LoadedModel, text: str, layer: int, reading: str) -> torch.Tensor:
    """The residual stream after block ``layer`` for one unpadded text, from a plain forward pass.

    Below the last block this is ``hidden_states[layer + 1]``; transformers replaces the last
    entry with the final-norm output, so the last block's output is taken from a hook instead.
    """
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    seen: list[torch.Tensor] = []
    block = lm.adapter.blocks(lm.model)[layer]
    handle = block.register_forward_hook(lambda m, a, o: seen.append(o[0] if isinstance(o, tuple) else o))
    try:
        with torch.no_grad():
            out = lm.model(input_ids=ids, output_hidden_states=True)
    finally:
        handle.remove()
    hidden = (out.hidden_states[layer + 1] if layer < lm.n_layers - 1 else seen[0])[0].float()
    return hidden[-1] if reading == "last" else hidden.mean(0)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("reading", ["last", "mean"])
def test_mean_diff_equals_the_mean_of_unpadded_reference_differences(family: str, reading: str) -> None:
    lm = MODELS[family]()
    layers = list(range(lm.n_layers))
    vector = extract_vector(lm, POSITIVE, NEGATIVE, layers=layers, reading=reading, batch_size=3)
    for layer in layers:
        diffs = [reference_activation(lm, p, layer, reading) - reference_activation(lm, n, layer, reading)
                 for p, n in zip(POSITIVE, NEGATIVE, strict=True)]
        expected = torch.stack(diffs).mean(0)
        assert torch.allclose(vector.directions[layer], expected, atol=1e-5)
        assert vector.norms[layer] == pytest.approx(float(expected.norm()), rel=1e-5)
    assert (vector.method, vector.reading, vector.n_pairs, vector.normalized) == ("mean_diff", reading, 5, False)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_last_blocks_reading_is_the_residual_stream_before_the_final_norm(family: str) -> None:
    lm = MODELS[family]()
    last = lm.n_layers - 1
    acts = read_activations(lm, POSITIVE, [last], reading="last")[last]
    for text, act in zip(POSITIVE, acts, strict=True):
        ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
        with torch.no_grad():
            normed = lm.model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
            assert torch.allclose(lm.adapter.final_norm(lm.model)(act), normed, atol=1e-5)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("reading", ["last", "mean"])
@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_batched_reading_equals_one_text_at_a_time(family: str, reading: str, batch_size: int) -> None:
    lm = MODELS[family]()
    layers = list(range(lm.n_layers))
    texts = POSITIVE + NEGATIVE
    batched = read_activations(lm, texts, layers, reading=reading, batch_size=batch_size)
    for layer in layers:
        alone = torch.cat([read_activations(lm, [t], [layer], reading=reading)[layer] for t in texts])
        assert batched[layer].shape == (len(texts), lm.hidden_size)
        assert batched[layer].dtype == torch.float32
        assert torch.allclose(batched[layer], alone, atol=1e-5)


def test_reading_reports_progress_after_each_batch() -> None:
    seen: list[tuple[int, int]] = []
    read_activations(tiny_lm(), POSITIVE, [0], reading="last", batch_size=2, on_batch=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def planted_pairs(n: int, hidden: int, direction: torch.Tensor, *, shift: float, noise: float,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs sharing a random base: positive = base + noise + shift * direction, negative = base + noise - it."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, hidden, generator=g) * 5
    pos = base + noise * torch.randn(n, hidden, generator=g) + shift * direction
    neg = base + noise * torch.randn(n, hidden, generator=g) - shift * direction
    return pos, neg


def unit(hidden: int, seed: int) -> torch.Tensor:
    v = torch.randn(hidden, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def fit(pos: torch.Tensor, neg: torch.Tensor, method: str, **kwargs: bool) -> extraction.SteeringVector:
    fitter = VectorFitter([0], method)
    fitter.update({0: pos}, {0: neg})
    return fitter.fit(model="synthetic", reading="last", **kwargs)


@pytest.mark.parametrize("flip", [1.0, -1.0])
def test_pca_recovers_a_planted_direction_with_the_right_sign(flip: float) -> None:
    u = flip * unit(64, seed=0)
    pos, neg = planted_pairs(50, 64, u, shift=2.0, noise=0.3, seed=1)
    v = fit(pos, neg, "pca").directions[0]
    assert torch.nn.functional.cosine_similarity(v, u, dim=0) > 0.99
    # Scaled by the mean projection, it is about as long as the mean difference (4 along u).
    assert float(v.norm()) == pytest.approx(4.0, rel=0.05)


def test_pca_is_not_centred_so_identical_differences_survive() -> None:
    d = 3.0 * unit(16, seed=2)
    base = torch.randn(10, 16, generator=torch.Generator().manual_seed(3))
    vector = fit(base + d, base, "pca")
    # Centred PCA would see an all-zero matrix here; uncentred PCA returns d itself.
    assert torch.allclose(vector.directions[0], d, atol=1e-5)
    assert vector.accuracy[0] == 1.0


def test_pca_sign_follows_the_majority_of_pairs_not_the_largest() -> None:
    u = unit(8, seed=4)
    diffs = torch.stack([u, u, u, -10 * u])
    v = fit(diffs, torch.zeros_like(diffs), "pca").directions[0]
    assert float(v @ u) > 0


def test_normalize_gives_unit_directions_and_keeps_the_raw_norms() -> None:
    pos, neg = planted_pairs(20, 32, unit(32, seed=5), shift=1.5, noise=0.5, seed=6)
    for method in ("mean_diff", "pca"):
        raw, normed = fit(pos, neg, method), fit(pos, neg, method, normalize=True)
        assert normed.normalized and not raw.normalized
        assert float(normed.directions[0].norm()) == pytest.approx(1.0, abs=1e-6)
        assert normed.norms[0] == pytest.approx(float(raw.directions[0].norm()), rel=1e-6)
        assert torch.allclose(normed.directions[0] * normed.norms[0], raw.directions[0], atol=1e-5)


@pytest.mark.parametrize("method", ["mean_diff", "pca"])
def test_held_out_accuracy_is_perfect_for_separable_pairs_and_near_chance_for_random_ones(method: str) -> None:
    separable = fit(*planted_pairs(30, 32, unit(32, seed=7), shift=2.0, noise=0.2, seed=8), method)
    g = torch.Generator().manual_seed(9)
    random = fit(torch.randn(40, 32, generator=g), torch.randn(40, 32, generator=g), method)
    assert separable.accuracy[0] == 1.0
    assert random.accuracy[0] is not None and 0.2 <= random.accuracy[0] <= 0.8


@pytest.mark.parametrize("method", ["mean_diff", "pca"])
def test_held_out_accuracy_equals_refitting_without_each_pair(method: str) -> None:
    pos, neg = planted_pairs(12, 16, unit(16, seed=10), shift=0.4, noise=1.0, seed=11)
    correct = 0
    for i in range(12):
        keep = [j for j in range(12) if j != i]
        v = fit(pos[keep], neg[keep], method).directions[0]
        correct += int(float((pos[i] - neg[i]) @ v) > 0)
    assert fit(pos, neg, method).accuracy[0] == pytest.approx(correct / 12)
    assert 0 < correct < 12  # the check means something only if some pairs are misclassified


def test_one_pair_has_no_held_out_accuracy() -> None:
    vector = extract_vector(tiny_lm(), POSITIVE[:1], NEGATIVE[:1], layers=[0])
    assert vector.accuracy == {0: None}
    assert vector.layer_scores == {}


def test_auto_picks_the_only_layer_that_separates(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_gpt2()
    u = unit(lm.hidden_size, seed=12)

    def synthetic(lm: LoadedModel, texts: list[str], layers: list[int], **_: object) -> dict[int, torch.Tensor]:
        g = torch.Generator().manual_seed(13)
        sign = torch.tensor([1.0 if t.startswith("good") else -1.0 for t in texts])[:, None]
        return {layer: torch.randn(len(texts), lm.hidden_size, generator=g) + (layer == 1) * sign * 3 * u
                for layer in layers}

    monkeypatch.setattr(extraction, "read_activations", synthetic)
    n = 20
    vector = extract_vector(lm, [f"good {i}" for i in range(n)], [f"bad {i}" for i in range(n)], layers="auto")
    assert list(vector.directions) == [1]
    assert sorted(vector.layer_scores) == list(range(lm.n_layers))
    assert vector.layer_scores[1] == 1.0 == max(vector.layer_scores.values())
    assert all(score < 1.0 for layer, score in vector.layer_scores.items() if layer != 1)
    assert vector.accuracy == {1: 1.0}


def test_auto_breaks_ties_towards_the_middle_layer() -> None:
    assert pick_layers({0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, 1, 5) == [2]
    assert pick_layers({0: 1.0, 1: 0.5, 2: 0.9, 3: 1.0, 4: 0.2}, 2, 5) == [0, 3]
    assert pick_layers({0: 0.7, 1: 0.7, 2: 0.7, 3: 0.7}, 3, 4) == [0, 1, 2]


@pytest.mark.parametrize(("positive", "negative", "kwargs", "message"), [
    (POSITIVE, NEGATIVE[:4], {"layers": [0]}, "pair up"),
    ([], [], {"layers": [0]}, "at least one"),
    (POSITIVE, NEGATIVE, {"layers": [2]}, "out of range"),
    (POSITIVE, NEGATIVE, {"layers": [-1]}, "out of range"),
    (POSITIVE, NEGATIVE, {"layers": []}, "at least one layer"),
    (POSITIVE, NEGATIVE, {"layers": [0], "method": "ica"}, "unknown method"),
    (POSITIVE, NEGATIVE, {"layers": [0], "reading": "first"}, "unknown reading"),
    (POSITIVE, NEGATIVE, {"layers": "auto", "auto_top_k": 3}, "auto_top_k"),
    (POSITIVE[:1], NEGATIVE[:1], {"layers": "auto"}, "at least 2 pairs"),
    (["", "x"], ["a", "b"], {"layers": [0]}, "at least one token"),
])
def test_bad_inputs_are_refused_with_a_clear_message(positive: list[str], negative: list[str],
                                                     kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extract_vector(tiny_lm(), positive, negative, **kwargs)


def test_the_fitter_refuses_mismatched_pairs_and_an_empty_fit() -> None:
    fitter = VectorFitter([0, 1])
    with pytest.raises(ValueError, match="no pairs"):
        fitter.fit(model="m", reading="last")
    with pytest.raises(ValueError, match=r"\[n, hidden\]"):
        fitter.update({0: torch.zeros(3, 4), 1: torch.zeros(3, 4)}, {0: torch.zeros(2, 4), 1: torch.zeros(3, 4)})
    with pytest.raises(ValueError, match="unknown method"):
        VectorFitter([0], "ica")


def test_a_stopped_reading_leaves_no_hooks_on_the_shared_model() -> None:
    lm = tiny_lm()
    # transformers installs hooks of its own, once, for output_hidden_states: count, don't expect none.
    before = [len(block._forward_hooks) for block in lm.adapter.blocks(lm.model)]

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_activations(lm, POSITIVE, [0, 1], reading="last", batch_size=2, on_batch=stop)
    assert [len(block._forward_hooks) for block in lm.adapter.blocks(lm.model)] == before

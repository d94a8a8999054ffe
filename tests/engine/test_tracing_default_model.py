"""The debugging properties on the default model (SmolLM2-135M): the lens's last layer is the model's
output, causal tracing finds the subject's MLPs in early-to-middle layers, and restoring or patching
everything gives the clean run back."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
import torch

from engine.hooks import embed, record_sites
from engine.lens.logit_lens import logit_lens
from engine.loading import LoadedModel
from engine.tracing.activation_patching import first_difference
from engine.tracing.causal_trace import causal_trace, corrupt, embedding_std, subject_span
from engine.tracing.grid import answer_probability
from engine.tracing.patching import CleanRun, Restoration, restore, run_corrupted
from store.model_cache import ModelCache
from tests.integration.harness import SHARED_MODEL_CACHE

EIFFEL = "The Eiffel Tower is located in the city of"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine two OpenMP threads made a trace 2-4x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def default_lm() -> LoadedModel:
    return ModelCache(SHARED_MODEL_CACHE).load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")


def token(lm: LoadedModel, text: str) -> int:
    (only,) = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return int(only)


def test_the_lens_at_the_last_layer_is_the_default_models_next_token_distribution() -> None:
    lm = default_lm()
    ids = list(lm.tokenizer(EIFFEL)["input_ids"])
    vocab = lm.adapter.embedding(lm.model).num_embeddings
    reading = logit_lens(lm, ids, [-1], top_k=vocab)
    with torch.inference_mode():
        own = torch.softmax(lm.model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
    lens = torch.zeros(vocab).scatter(0, reading.top_ids[-1, 0], reading.top_probs[-1, 0])
    assert (lens - own).abs().max() < 1e-5
    assert int(reading.top_ids[-1, 0, 0]) == token(lm, " Paris")


def mlp_peak(lm: LoadedModel, prompt: str, subject: str, answer: str,
             on_subject_only: bool = False) -> tuple[int, int, float, list[int], tuple[int, int]]:
    """(layer, token, indirect effect) of the largest MLP cell of the grid (every token, or the subject's),
    the prompt's ids and the subject span."""
    ids, span = subject_span(lm.tokenizer, prompt, subject)
    tokens = list(range(*span)) if on_subject_only else None
    trace = causal_trace(lm, ids, span, token(lm, answer), kinds=["mlp"], tokens=tokens, samples=3, seed=0)
    grid = trace.grid
    assert grid.p_clean > 0.5 and float(grid.p_corrupted.mean()) < 0.1 * grid.p_clean  # the noise removes the fact
    effects = grid.indirect_effect("mlp")
    layer, column = divmod(int(effects.argmax()), effects.shape[1])
    return layer, grid.tokens[column], float(effects[layer, column]), ids, span


def test_tracing_the_eiffel_tower_finds_the_subject_mlps_in_early_to_middle_layers() -> None:
    lm = default_lm()
    layer, position, effect, ids, (start, end) = mlp_peak(lm, EIFFEL, "The Eiffel Tower", " Paris")
    assert start <= position < end, "the largest MLP effect is on the subject"
    assert layer < lm.n_layers // 2, "in early-to-middle layers"
    assert effect > 0.3
    # SmolLM2 resolves the name at the last token of "Eiffel" (" E", "iffel"): " Tower", the subject's
    # last token, adds nothing it needs. Tracing the name itself puts the peak at its last token.
    assert lm.tokenizer.decode(ids[position : position + 1]) == "iffel"
    eiffel_only = mlp_peak(lm, EIFFEL, "Eiffel", " Paris", on_subject_only=True)
    assert eiffel_only[1] == eiffel_only[4][1] - 1 and eiffel_only[0] < lm.n_layers // 2


def test_tracing_the_colosseum_puts_the_largest_mlp_effect_at_the_subjects_last_token() -> None:
    lm = default_lm()
    layer, position, effect, _, (_, end) = mlp_peak(lm, "The Colosseum is located in the city of", "The Colosseum",
                                                    " Rome")
    assert position == end - 1 and layer < lm.n_layers // 2 and effect > 0.2


def test_restoring_every_layer_at_every_token_recovers_the_clean_probability() -> None:
    lm = default_lm()
    ids, span = subject_span(lm.tokenizer, EIFFEL, "The Eiffel Tower")
    activations, logits = record_sites(lm, embed(lm, ids), ["residual", "mlp", "attention"])
    clean = CleanRun(activations, logits)
    corrupted = run_corrupted(lm, corrupt(lm, ids, span, samples=3, scale=3 * embedding_std(lm), seed=0), span[0])
    reduce = answer_probability(token(lm, " Paris"))
    p_clean = float(reduce(logits[None])[0])
    everywhere = tuple(range(len(ids)))
    everything = [Restoration("residual", tuple(range(lm.n_layers)), everywhere),
                  Restoration("mlp", tuple(range(lm.n_layers)), everywhere)]
    restored = restore(lm, clean, corrupted, everything, reduce=reduce)
    assert float(reduce(corrupted.logits).max()) < 0.2 * p_clean
    assert (restored[0] - p_clean).abs().max() < 1e-5  # the residual stream everywhere: the clean run
    # Restoring every MLP leaves the attention outputs corrupted: most of the answer, not all of it.
    assert float(restored[1].mean()) > 0.5 * p_clean


def test_patching_every_position_from_the_clean_prompt_reproduces_the_clean_output_exactly() -> None:
    lm = default_lm()
    clean_ids = list(lm.tokenizer(EIFFEL)["input_ids"])
    corrupted_ids = list(lm.tokenizer("Our Colosseum is located in the city of")["input_ids"])
    assert len(corrupted_ids) == len(clean_ids) and first_difference(clean_ids, corrupted_ids) == 0
    activations, logits = record_sites(lm, embed(lm, clean_ids), ["residual"])
    corrupted = run_corrupted(lm, embed(lm, corrupted_ids), 0)
    assert int(corrupted.logits[0].argmax()) != int(logits.argmax())
    patches = [Restoration("residual", (layer,), tuple(range(len(clean_ids)))) for layer in (0, 12, 29)]
    for patch in patches:
        out = restore(lm, CleanRun(activations, logits), corrupted, [patch], reduce=lambda x: x)
        assert torch.equal(out[0, 0], logits)

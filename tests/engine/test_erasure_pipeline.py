"""`erase_concept` end to end on models: the eraser it stores is the one served, in any dtype."""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from concept_erasure import LeaceEraser

from engine.components import AffineEraser
from engine.erasure.pipeline import encode_labels, erase_concept
from engine.erasure.probes import split_held_out
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.runtime import InterventionRuntime
from store.model_cache import ModelCache
from tests.fakes import tiny_lm
from tests.integration.harness import SHARED_MODEL_CACHE

SUBJECTS = ["The capital of France", "The quick brown fox", "Interpretability", "One, two, three", "The lazy dog",
            "Transformers"]
ENDINGS = {"city": ["is Paris.", "is in France."], "animal": ["is a fox.", "jumps over the dog."]}


def tiny_examples(n_repeats: int = 4) -> tuple[list[str], list[str]]:
    """Texts whose label is told by their ending: decodable at any layer of any model."""
    texts, labels = [], []
    for subject, (label, endings), count in itertools.product(SUBJECTS, ENDINGS.items(), range(n_repeats)):
        for ending in endings:
            texts.append(f"{subject} {'very ' * count}{ending}")
            labels.append(label)
    return texts, labels


def recorded(lm: LoadedModel, texts: list[str], layer: int) -> torch.Tensor:
    """The last-token hidden state after block ``layer``, read the plain way: ``output_hidden_states``."""
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
            rows.append(lm.model(input_ids=ids, output_hidden_states=True).hidden_states[layer + 1][0, -1])
    return torch.stack(rows)


@contextmanager
def block_output_seen(lm: LoadedModel, layer: int) -> Iterator[list[torch.Tensor]]:
    """Record what block ``layer`` hands on, after the runtime's hooks (registered earlier) ran."""
    seen: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: object, output: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
        seen.append((output[0] if isinstance(output, tuple) else output).detach().clone())

    handle = lm.adapter.blocks(lm.model)[layer].register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def class_mean_gap(x: torch.Tensor, labels: list[str]) -> float:
    y = torch.tensor([sorted(set(labels)).index(label) for label in labels])
    means = torch.stack([x[y == c].double().mean(0) for c in range(int(y.max()) + 1)])
    return float((means.amax(0) - means.amin(0)).max())


def fitting_indices(labels: list[str], held_out: float, seed: int = 0) -> list[int]:
    """The examples `erase_concept` fits on: the split it documents, redone here."""
    return split_held_out(encode_labels(labels)[0], held_out, seed)[0]


def in_dtype(dtype: torch.dtype) -> LoadedModel:
    base = tiny_lm()
    model = copy.deepcopy(base.model)
    torch.nn.Module.to(model, dtype)
    return LoadedModel(name=f"tiny-{dtype}", source="test", model=model, tokenizer=base.tokenizer,
                       adapter=base.adapter)


def test_the_served_eraser_equals_erasing_the_recorded_hidden_states_offline() -> None:
    lm = tiny_lm()
    texts, labels = tiny_examples()
    outcome = erase_concept(lm, texts, labels, layers=[0], held_out=0.25, canaries=["The capital of"])
    eraser = outcome.erasers[0]
    offline = LeaceEraser(eraser.proj_left, eraser.proj_right, eraser.bias)(recorded(lm, texts, 0))
    served = []
    with InterventionRuntime(lm).installed() as runtime:
        for text in texts:
            ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
            with block_output_seen(lm, 0) as seen, runtime.active(PassPlan.of_variant([eraser])), torch.no_grad():
                lm.model(input_ids=ids)
            served.append(seen[0][0, -1])
    assert torch.max(torch.abs(torch.stack(served) - offline)) <= 1e-5
    fit = fitting_indices(labels, 0.25)
    assert class_mean_gap(offline[fit], [labels[i] for i in fit]) < 1e-4
    assert class_mean_gap(recorded(lm, texts, 0)[fit], [labels[i] for i in fit]) > 1e-3  # a tiny model: small states


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_models_are_fitted_in_float64_and_served_in_their_dtype(dtype: torch.dtype) -> None:
    lm = in_dtype(dtype)
    texts, labels = tiny_examples()
    outcome = erase_concept(lm, texts, labels, layers=[0, 1], held_out=0.25, canaries=["The capital of"])
    states = recorded(lm, texts, 0)
    assert states.dtype == dtype
    eraser = outcome.erasers[0]
    assert eraser.proj_left.dtype == torch.float32
    fit = fitting_indices(labels, 0.25)
    assert class_mean_gap(eraser.erase(states[fit].double()), [labels[i] for i in fit]) < 1e-4
    assert outcome.layers[0].mean_gap_after < 1e-4
    assert outcome.layers[0].kl is not None and outcome.kl_all_layers is not None
    with InterventionRuntime(lm).installed() as runtime:
        ids = torch.tensor([lm.tokenizer(texts[0])["input_ids"]])
        with block_output_seen(lm, 0) as seen, runtime.active(PassPlan.of_variant([eraser])), torch.no_grad():
            lm.model(input_ids=ids)
        assert seen[0].dtype == dtype
        assert torch.allclose(seen[0][0, -1].double(), eraser.erase(states[0].double()), rtol=2e-2, atol=2e-2)
        out = generate_batch(lm, [GenerationRow(ids[0].tolist(), SamplingParams(max_new_tokens=4),
                                                variant=list(outcome.erasers.values()))], runtime)[0]
        assert len(out.token_ids) >= 1


def test_every_reading_counts_its_rows_and_all_tokens_fit_on_every_token() -> None:
    lm = tiny_lm()
    texts, labels = tiny_examples(n_repeats=2)
    tokens = [len(lm.tokenizer(t)["input_ids"]) for t in texts]
    for reading in ("last", "mean", "all"):
        outcome = erase_concept(lm, texts, labels, layers=[1], reading=reading, held_out=0.25, canaries=[])
        held = outcome.n_held_out_texts
        fitted_tokens = outcome.n_fit_rows
        assert outcome.n_fit_texts + held == len(texts)
        if reading == "all":
            assert len(texts) - held < fitted_tokens < sum(tokens)
            assert outcome.n_probe_train == outcome.n_fit_texts  # one random token per text
        else:
            assert fitted_tokens == outcome.n_fit_texts
        assert outcome.layers[0].mean_gap_after < 1e-4
        assert outcome.layers[0].kl is None and outcome.kl_all_layers is None


def test_a_parent_variants_activations_are_the_ones_fitted_on() -> None:
    lm = tiny_lm()
    texts, labels = tiny_examples()
    first = erase_concept(lm, texts, labels, layers=[1], held_out=0.25, canaries=[])
    again = erase_concept(lm, texts, labels, layers=[1], held_out=0.25, canaries=["The capital of"],
                          parent=list(first.erasers.values()))
    # Read through the parent, the concept is already gone at that layer: nothing left to erase.
    assert first.layers[0].mean_gap_before > 1e-3 and first.layers[0].probe_before == 1.0
    assert again.layers[0].mean_gap_before < 1e-4
    assert again.layers[0].probe_before == again.layers[0].probe_after
    assert again.layers[0].kl is not None and again.layers[0].kl < 1e-6


def test_a_three_class_concept_with_integer_labels_is_erased_with_rank_two() -> None:
    lm = tiny_lm()
    endings = {0: ["is Paris.", "is in France."], 1: ["is a fox.", "jumps over the dog."], 2: ["is one, two.",
                                                                                            "counts to ten."]}
    texts = [f"{s} {'very ' * n}{e}" for s, (_, ends), n in itertools.product(SUBJECTS, endings.items(), range(3))
             for e in ends]
    labels = [c for _, (c, ends), _ in itertools.product(SUBJECTS, endings.items(), range(3)) for _ in ends]
    outcome = erase_concept(lm, texts, labels, layers=[1], held_out=0.25, canaries=[])
    report = outcome.layers[0]
    assert outcome.classes == [0, 1, 2] and report.rank == 2
    assert report.mean_gap_after < 1e-4 < report.mean_gap_before
    assert report.probe_after == report.majority_baseline  # trained on the erased fitting rows: the prior alone


@pytest.mark.parametrize(
    ("texts", "labels", "reason"),
    [([], [], "at least two examples"), (["a b", "c d"], ["x", "x"], "at least two classes; found only 'x'"),
     (["a b", "c d"], ["x"], "2 texts but 1 labels"), (["a b", "c d"], ["x", 1], "all strings or all integers")],
)
def test_empty_or_single_class_input_is_refused_with_a_reason(texts: list[str], labels: list[str],
                                                             reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        erase_concept(tiny_lm(), texts, labels, layers=[0])


def test_a_cancel_between_batches_stops_the_work_and_leaves_the_model_as_it_was() -> None:
    lm = tiny_lm()
    texts, labels = tiny_examples()
    d = lm.hidden_size
    parent = [AffineEraser(0, torch.randn(d, 1), torch.randn(1, d), torch.zeros(d))]
    ids = torch.tensor([lm.tokenizer(texts[0])["input_ids"]])
    with torch.no_grad():
        before = lm.model(input_ids=ids).logits
    calls: list[float] = []

    def cancel_at_second_batch(fraction: float, stage: str) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            raise KeyboardInterrupt("canceled")

    with InterventionRuntime(lm).installed() as runtime:
        hooks = runtime.hook_count
        with pytest.raises(KeyboardInterrupt):
            erase_concept(lm, texts, labels, layers=[1], batch_size=4, runtime=runtime, parent=parent,
                          on_progress=cancel_at_second_batch)
        assert runtime.hook_count == hooks
        with torch.no_grad():
            assert torch.equal(lm.model(input_ids=ids).logits, before)
        with runtime.active(PassPlan.of_variant([])):  # the pass lock was released
            pass


# The default model: a textbook concept in real hidden states.

JOBS = ["doctor", "nurse", "teacher", "engineer", "pilot", "lawyer", "baker", "farmer", "writer", "singer",
        "painter", "chef"]
VERBS = ["works as a", "wants to be a", "trained as a", "is proud to be a"]
PEOPLE = {"male": ["He", "My brother", "The man"], "female": ["She", "My sister", "The woman"]}


@functools.cache
def default_lm() -> LoadedModel:
    torch.manual_seed(0)
    return ModelCache(SHARED_MODEL_CACHE).load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")


def gender_examples() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for job, verb, (label, people) in itertools.product(JOBS, VERBS, PEOPLE.items()):
        for person in people:
            texts.append(f"{person} {verb} {job}.")
            labels.append(label)
    return texts, labels


def test_on_the_default_model_a_decodable_concept_is_erased_to_the_majority_baseline() -> None:
    lm, layer = default_lm(), 8
    texts, labels = gender_examples()
    outcome = erase_concept(lm, texts, labels, layers=[layer], reading="last", held_out=0.5, batch_size=48,
                            canaries=["The capital of France is"])
    report = outcome.layers[0]
    assert report.probe_before is not None and report.probe_after is not None and report.majority_baseline is not None
    assert report.probe_before >= 0.85
    assert abs(report.probe_after - report.majority_baseline) <= 0.03, report
    assert report.rank == 1
    # Independently: the stored eraser applied to hidden states read the plain way equalises the class means.
    fit = fitting_indices(labels, 0.5)
    states = recorded(lm, [texts[i] for i in fit], layer)
    erased = LeaceEraser(*(t.double() for t in (outcome.erasers[layer].proj_left, outcome.erasers[layer].proj_right,
                                                outcome.erasers[layer].bias)))(states.double())
    assert class_mean_gap(states, [labels[i] for i in fit]) > 1.0
    assert class_mean_gap(erased, [labels[i] for i in fit]) < 1e-4


"""The edit evaluation: CounterFact's comparisons against independent references, fluency, drift."""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Iterator

import pytest
import torch

from engine.adapters import linear_weight
from engine.canaries import canary_drift
from engine.components import LowRankDelta
from engine.editing.evaluation import evaluate_edits, ngram_entropy, starts_with_answer
from engine.editing.request import EditRequest, NeighborhoodPrompt
from engine.editing.scorecard import EditEvaluation
from engine.loading import LoadedModel
from engine.progress import CanceledError
from engine.runtime import InterventionRuntime, editable_modules
from store.model_cache import ModelCache
from tests.fakes import tiny_gpt2_lm, tiny_lm
from tests.integration.harness import SHARED_MODEL_CACHE

FAMILIES: dict[str, Callable[[], LoadedModel]] = {"llama": tiny_lm, "gpt2": tiny_gpt2_lm}
CANARIES = ("The quick brown fox", "One, two, three,", "Interpretability asks what")


@pytest.fixture(params=sorted(FAMILIES))
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return FAMILIES[request.param]()


@pytest.fixture
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


def tiny_requests() -> list[EditRequest]:
    """Requests of different lengths, so their batches need padding; one without target_true."""
    return [
        EditRequest("The capital of {} is", "France", " Rome", " Paris",
                    paraphrases=("France has its capital in", "The quick brown fox says France is"),
                    neighborhood=(NeighborhoodPrompt("The capital of Germany is", " Berlin"),
                                  NeighborhoodPrompt("One, two, three,", " four"))),
        EditRequest("{} are neural networks built from", "Transformers", " attention and MLP", " dogs",
                    neighborhood=(NeighborhoodPrompt("Interpretability asks what a model", " computes"),)),
        EditRequest("The quick brown {} jumps over the", "fox", " lazy dog", None, paraphrases=("A fox jumps over",)),
    ]


def random_delta(lm: LoadedModel, layer: int, seed: int, scale: float = 2.0) -> LowRankDelta:
    """A rank-2 delta on a block's MLP output projection that visibly changes the model."""
    name = list(editable_modules(lm))[layer]
    n_out, n_in = linear_weight(editable_modules(lm)[name]).shape
    g = torch.Generator().manual_seed(seed)
    return LowRankDelta(name, torch.randn(2, n_in, generator=g) * scale / n_in**0.5, torch.randn(n_out, 2, generator=g))


def merged_copy(lm: LoadedModel, deltas: list[LowRankDelta]) -> LoadedModel:
    """The independent reference: a deep copy of the model with ``W + B A`` written into its weights."""
    model = copy.deepcopy(lm.model)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for delta in deltas:
            linear_weight(modules[delta.module]).add_(delta.b @ delta.a)
    return LoadedModel(lm.name, lm.source, model, lm.tokenizer, lm.adapter)


def reference_prob(lm: LoadedModel, prompt: str, answer: str) -> float:
    """exp(mean log-probability of the answer's tokens), one unpadded forward pass, no runtime."""
    prompt_ids = list(lm.tokenizer(prompt)["input_ids"])
    answer_ids = list(lm.tokenizer(answer, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt_ids + answer_ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, -1)
    picked = [float(logprobs[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(answer_ids)]
    return math.exp(sum(picked) / len(picked))


def all_checks(evaluation: EditEvaluation) -> list:
    return [c for r in evaluation.requests for c in (r.efficacy, *r.paraphrases, *r.neighborhood)]


def test_every_probability_equals_an_unbatched_forward_pass_of_merged_weights(lm: LoadedModel,
                                                                             runtime: InterventionRuntime) -> None:
    deltas = [random_delta(lm, 0, 1), random_delta(lm, 1, 2)]
    evaluation = evaluate_edits(lm, runtime, tiny_requests(), deltas, canaries=CANARIES, generation_tokens=4)
    merged = merged_copy(lm, deltas)
    checks = all_checks(evaluation)
    assert len(checks) == 9  # 3 edit prompts, 3 paraphrases, 3 neighbourhood prompts
    for c in checks:
        assert c.p_wanted_edited == pytest.approx(reference_prob(merged, c.prompt, c.wanted), rel=1e-4)
        assert c.p_wanted_base == pytest.approx(reference_prob(lm, c.prompt, c.wanted), rel=1e-4)
        if c.rival is not None:
            assert c.p_rival_edited == pytest.approx(reference_prob(merged, c.prompt, c.rival), rel=1e-4)
            assert c.success_edited == (reference_prob(merged, c.prompt, c.wanted)
                                        > reference_prob(merged, c.prompt, c.rival))
    assert any(c.p_wanted_edited != pytest.approx(c.p_wanted_base, rel=1e-3) for c in checks)  # the delta matters


def test_the_evaluation_under_the_runtime_equals_the_evaluation_of_a_merged_copy(lm: LoadedModel,
                                                                                runtime: InterventionRuntime) -> None:
    deltas = [random_delta(lm, 1, 3)]
    served = evaluate_edits(lm, runtime, tiny_requests(), deltas, canaries=CANARIES, generation_tokens=6)
    merged = merged_copy(lm, deltas)
    with InterventionRuntime(merged).installed() as merged_runtime:
        copied = evaluate_edits(merged, merged_runtime, tiny_requests(), [], canaries=CANARIES, generation_tokens=6)
    for ours, theirs in zip(all_checks(served), all_checks(copied), strict=True):
        assert ours.p_wanted_edited == pytest.approx(theirs.p_wanted_edited, rel=1e-4)
        assert ours.success_edited == theirs.success_edited
    assert [r.continuation_edited for r in served.requests] == [r.continuation_edited for r in copied.requests]
    assert served.fluency.edited == pytest.approx(copied.fluency.edited)


def test_an_empty_variant_changes_nothing_and_has_no_drift(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    evaluation = evaluate_edits(lm, runtime, tiny_requests(), [], canaries=CANARIES, generation_tokens=6)
    for c in all_checks(evaluation):
        assert (c.p_wanted_edited, c.success_edited) == (c.p_wanted_base, c.success_base)
    assert evaluation.efficacy.edited == evaluation.efficacy.base
    assert evaluation.neighborhood.edited == evaluation.neighborhood.base
    assert evaluation.fluency.edited == evaluation.fluency.base
    assert evaluation.drift.mean_kl == 0.0 and evaluation.drift.max_kl == 0.0
    assert evaluation.drift.n_positions == sum(len(lm.tokenizer(t)["input_ids"]) for t in CANARIES)


def test_the_parent_is_the_before_and_drift_is_measured_against_it(lm: LoadedModel,
                                                                   runtime: InterventionRuntime) -> None:
    first, second = random_delta(lm, 0, 4), random_delta(lm, 1, 5)
    parent_only = evaluate_edits(lm, runtime, tiny_requests(), [first], canaries=CANARIES, generation_tokens=4)
    child = evaluate_edits(lm, runtime, tiny_requests(), [first, second], parent=[first], canaries=CANARIES,
                           generation_tokens=4)
    for p, c in zip(all_checks(parent_only), all_checks(child), strict=True):
        assert c.p_wanted_base == pytest.approx(p.p_wanted_edited, rel=1e-5)
    (expected,) = canary_drift(lm, runtime, [[first, second]], reference=[first], prompts=CANARIES)
    assert child.drift.mean_kl == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert child.drift.max_kl >= child.drift.mean_kl > 0


def test_without_target_true_efficacy_is_the_greedy_continuation(lm: LoadedModel,
                                                                 runtime: InterventionRuntime) -> None:
    evaluation = evaluate_edits(lm, runtime, tiny_requests(), [random_delta(lm, 1, 6)], canaries=CANARIES,
                                generation_tokens=4)
    fox = evaluation.requests[2]
    assert fox.efficacy.rival is None and fox.efficacy.p_rival_edited is None
    assert fox.efficacy.success_edited == starts_with_answer(fox.continuation_edited, " lazy dog")
    assert fox.efficacy.success_base == starts_with_answer(fox.continuation_base, " lazy dog")


def test_rates_average_each_requests_rate() -> None:
    lm = tiny_lm()
    with InterventionRuntime(lm).installed() as runtime:
        evaluation = evaluate_edits(lm, runtime, tiny_requests(), [random_delta(lm, 0, 7)], canaries=CANARIES,
                                    generation_tokens=4)
    per_request = [sum(c.success_edited for c in r.neighborhood) / len(r.neighborhood)
                   for r in evaluation.requests if r.neighborhood]
    assert evaluation.neighborhood.edited == pytest.approx(sum(per_request) / len(per_request))
    assert evaluation.neighborhood.n_prompts == 3
    assert evaluation.paraphrase.n_prompts == 3
    rivals = [c for r in evaluation.requests for c in r.paraphrases if c.rival is not None]
    assert evaluation.paraphrase.magnitude_edited == pytest.approx(
        sum(c.p_wanted_edited - (c.p_rival_edited or 0.0) for c in rivals) / len(rivals))


def test_the_report_is_json_with_or_without_its_per_request_detail() -> None:
    lm = tiny_lm()
    with InterventionRuntime(lm).installed() as runtime:
        evaluation = evaluate_edits(lm, runtime, tiny_requests(), [random_delta(lm, 0, 8)], canaries=CANARIES,
                                    generation_tokens=4)
    full = json.loads(json.dumps(evaluation.to_dict()))
    assert full["requests"][0]["efficacy"]["wanted"] == " Rome"
    assert full["efficacy"]["n_prompts"] == 3
    brief = json.loads(json.dumps(evaluation.to_dict(per_request=False)))
    assert "requests" not in brief and brief["drift"] == full["drift"]


def test_progress_is_reported_per_stage_and_a_stop_request_ends_the_work() -> None:
    lm, seen = tiny_lm(), []
    with pytest.raises(CanceledError):
        evaluate_edits(lm, None, tiny_requests(), [], canaries=CANARIES,
                       on_progress=lambda fraction, message: seen.append(fraction), should_stop=lambda: len(seen) == 2)
    assert seen == [0.25, 0.5]
    evaluate_edits(lm, None, tiny_requests(), [], canaries=CANARIES, generation_tokens=2,
                   on_progress=lambda fraction, message: seen.append(fraction))
    assert seen[2:] == [0.25, 0.5, 0.75, 1.0]


def test_a_variant_without_the_runtime_is_refused() -> None:
    lm = tiny_lm()
    with pytest.raises(ValueError, match="runtime"):
        evaluate_edits(lm, None, tiny_requests(), [random_delta(lm, 0, 9)], canaries=CANARIES)
    with pytest.raises(ValueError, match="no edit requests"):
        evaluate_edits(lm, None, [], [], canaries=CANARIES)


def test_ngram_entropy_matches_a_hand_computation() -> None:
    # "a b a b": bigrams ab, ba, ab -> H2 = H(2/3, 1/3); trigrams aba, bab -> H3 = 1 bit.
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert ngram_entropy("a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.0) / 2)
    # Punctuation is a word of its own, as nltk's tokenizer makes it: "Rome, Rome" is 3 words.
    h2_punct = -(2 * 0.5 * math.log2(0.5))
    assert ngram_entropy("Rome, Rome") == pytest.approx((2 / 3 * h2_punct + 4 / 3 * 0.0) / 2)
    assert ngram_entropy("") == 0.0
    assert ngram_entropy("Rome Rome Rome Rome Rome Rome") < ngram_entropy("The city of Rome is old and very big")


@pytest.mark.parametrize(("text", "answer", "expected"), [
    (" Rome.\n", " Rome", True), (" Rome", " Rome", True), (" Romeo and", " Rome", False),
    (" Rome-based", " Rome", True), ("Rome", " Rome", False), (" New York City", " New York", True),
    (" rome", " Rome", False),
])
def test_an_answer_starts_a_continuation_only_at_a_word_boundary(text: str, answer: str, expected: bool) -> None:
    assert starts_with_answer(text, answer) is expected


@functools.cache
def default_lm() -> LoadedModel:
    return ModelCache(SHARED_MODEL_CACHE).load_model(
        "smollm2-135m", "builtin:smollm2-135m", device="cpu", dtype="float32")


def test_on_the_default_model_an_empty_variant_keeps_known_facts_and_their_neighbours() -> None:
    lm = default_lm()
    requests = [
        EditRequest("The capital of {} is", "France", " Rome", " Paris", ("The capital city of France is",),
                    (NeighborhoodPrompt("The capital of Germany is", " Berlin"),
                     NeighborhoodPrompt("The capital of Japan is", " Tokyo"))),
        EditRequest("The {} is located in the city of", "Eiffel Tower", " London", " Paris", (),
                    (NeighborhoodPrompt("The Colosseum is located in the city of", " Rome"),)),
    ]
    with InterventionRuntime(lm).installed() as runtime:
        evaluation = evaluate_edits(lm, runtime, requests, [], generation_tokens=8)
    assert evaluation.efficacy.edited == 0.0  # the model prefers the true capital: an empty edit has not taken
    assert evaluation.paraphrase.edited == 0.0
    assert evaluation.neighborhood.edited == 1.0
    assert evaluation.drift.mean_kl == 0.0
    assert [starts_with_answer(r.continuation_edited, r.target_true or "") for r in evaluation.requests] == [True, True]
    assert evaluation.efficacy.magnitude_edited is not None and evaluation.efficacy.magnitude_edited < 0
    # Without target_true the verdict is the greedy continuation: the true answer "succeeds", a false one not.
    for target, verdict in ((" Paris", 1.0), (" Rome", 0.0)):
        alone = EditRequest("The capital of {} is", "France", target)
        assert evaluate_edits(lm, None, [alone], [], generation_tokens=4).efficacy.base == verdict

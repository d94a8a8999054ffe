"""`/erase` and variants over HTTP: the job, the stored variant, serving it, and every refusal."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from concept_erasure import LeaceEraser
from fastapi.testclient import TestClient

from engine.components import LowRankDelta
from engine.loading import LoadedModel
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, run_enqueued, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem

PROMPT = "The capital of France is"
SUBJECTS = ["The capital of France", "The quick brown fox", "Interpretability", "One, two, three", "The lazy dog"]
ENDINGS = {"city": ["is Paris.", "is in France."], "animal": ["is a fox.", "jumps over the dog."]}
EXAMPLES = [{"text": f"{s} {'very ' * n}{e}", "label": label}
            for s, (label, endings), n in itertools.product(SUBJECTS, ENDINGS.items(), range(3)) for e in endings]


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory, models=(TINY_MODEL,))
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def erase(client: TestClient, state: AppState, **body: Any) -> dict[str, Any]:
    reply = client.post("/erase", json={"name": "no-city", "examples": EXAMPLES, "layers": [1], **body})
    assert reply.status_code == 202, reply.text
    assert reply.json()["kind"] == "erase" and reply.headers["location"] == f"/jobs/{reply.json()['id']}"
    run_enqueued(state, reply.json()["id"])
    job: dict[str, Any] = client.get(f"/jobs/{reply.json()['id']}").json()
    assert job["status"] == "succeeded", job
    return job


@contextmanager
def reference_eraser(lm: LoadedModel, layer: int, factors: dict[str, torch.Tensor]) -> Iterator[None]:
    """A plain hook applying the concept-erasure package's eraser with the stored factors."""
    package = LeaceEraser(factors["proj_left"], factors["proj_right"], factors["bias"])

    def hook(module: torch.nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        return package(output)

    handle = lm.adapter.blocks(lm.model)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def greedy(lm: LoadedModel, prompt: str, n: int) -> list[int]:
    ids = list(lm.tokenizer(prompt)["input_ids"])
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[-n:]


def generate_ids(client: TestClient, **body: Any) -> list[int]:
    reply = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 6, **body})
    assert reply.status_code == 200, reply.text
    return [t["id"] for t in reply.json()["tokens"]]


def test_an_erase_job_stores_a_variant_with_its_report_and_generate_serves_it(client: TestClient,
                                                                                state: AppState) -> None:
    job = erase(client, state, held_out=0.25)
    result = job["result"]
    assert result["variant"]["ref"] == "no-city@1" and result["classes"] == ["animal", "city"]
    (layer,) = result["layers"]
    assert layer["layer"] == 1 and layer["rank"] == 1
    assert layer["probe_accuracy_before"] >= 0.85 and layer["max_class_mean_gap_after"] < 1e-4
    assert abs(layer["probe_accuracy_after"] - layer["majority_baseline"]) <= 0.1
    assert layer["kl"] >= 0.0 and result["kl_all_layers"] >= 0.0

    shown = client.get(f"/models/{TINY_MODEL}/variants/no-city").json()
    assert (shown["ref"], shown["method"], shown["parent"], shown["hidden_size"]) == ("no-city@1", "leace", None, 32)
    assert shown["report"]["layers"][0]["rank"] == 1
    assert shown["request"]["examples"]["count"] == len(EXAMPLES)  # the examples by count and hash, not inline
    assert shown["provenance"]["job_id"] == job["id"]
    assert [c["site"] for c in shown["components"]] == ["block.1"]

    variant = state.stores("default").variants.load(TINY_MODEL, "no-city@1")
    factors = variant.components[0].tensors()
    lm = tiny_lm()
    with reference_eraser(lm, 1, factors):
        expected = greedy(lm, PROMPT, 6)
    reply = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 6, "variant": "no-city"}).json()
    assert [t["id"] for t in reply["tokens"]] == expected
    assert reply["variant"] == "no-city@1"
    assert generate_ids(client) == greedy(lm, PROMPT, 6)  # the base model is untouched


def test_variants_are_listed_shown_and_deleted_with_404s_for_unknown_ones(client: TestClient,
                                                                          state: AppState) -> None:
    erase(client, state)
    erase(client, state, variant="no-city@1", layers=[0])
    listed = client.get(f"/models/{TINY_MODEL}/variants").json()
    assert [v["ref"] for v in listed["variants"]] == ["no-city@1", "no-city@2"]
    second = client.get(f"/models/{TINY_MODEL}/variants/no-city@2").json()
    assert (second["parent"], second["lineage"], second["n_components"]) == ("no-city@1", ["no-city@1"], 2)
    assert [c["origin"] for c in second["components"]] == ["no-city@1", "no-city@2"]
    assert [v["ref"] for v in client.get("/models").json()["models"][0]["variants"]] == ["no-city@1", "no-city@2"]

    assert client.delete(f"/models/{TINY_MODEL}/variants/no-city@1").json()["versions"] == [1]
    assert_problem(client.get(f"/models/{TINY_MODEL}/variants/no-city@1"), 404, "ref")
    assert generate_ids(client, variant="no-city@2")  # a child keeps its parent's components itself
    assert_problem(client.post("/generate", json={"prompt": PROMPT, "variant": "no-city@1"}), 404, "variant")
    assert client.delete(f"/models/{TINY_MODEL}/variants/no-city").json()["versions"] == [2]
    assert_problem(client.delete(f"/models/{TINY_MODEL}/variants/no-city"), 404, "ref")
    assert_problem(client.get("/models/nope/variants"), 404, "model")
    assert_problem(client.get(f"/models/{TINY_MODEL}/variants/no-city@0"), 422, "ref")


def test_concurrent_generations_on_different_variants_each_equal_themselves_alone(client: TestClient,
                                                                                  state: AppState) -> None:
    erase(client, state, name="a", layers=[0])
    erase(client, state, name="b", layers=[1])
    bodies = [{"variant": [None, "a", "b"][i % 3], "prompt": [PROMPT, "One, two, three,", "Hi"][i // 3]}
              for i in range(9)]
    assert state.batcher is not None
    batches_before = state.batcher.batches
    with ThreadPoolExecutor(9) as pool:
        together = list(pool.map(lambda body: generate_ids(client, **body), bodies))
    assert state.batcher.batches - batches_before < len(bodies)  # rows on different variants shared passes
    assert together == [generate_ids(client, **body) for body in bodies]
    assert len({tuple(ids) for ids in together}) > 3


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        ({"examples": []}, 422, "examples", "at least two labelled examples"),
        ({"examples": [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}]}, 422, "examples", "two classes"),
        ({"examples": [{"text": "a", "label": "x"}, {"text": "b", "label": 1}]}, 422, "examples", "all strings"),
        ({"examples": [{"text": "", "label": "x"}] * 2}, 422, "examples.0.text", None),
        ({"layers": [7]}, 422, "layers", "out of range"),
        ({"layers": [1, 1]}, 422, "layers", "distinct"),
        ({"layers": "some"}, 422, "layers", None),
        ({"method": "inlp"}, 422, "method", None),
        ({"reading": "first"}, 422, "reading", None),
        ({"held_out": 1.0}, 422, "held_out", None),
        ({"name": "../x"}, 422, "name", None),
        ({"variant": "missing"}, 404, "variant", "no variant 'missing'"),
        ({"model": "nope"}, 404, "model", None),
        ({"batch_size": 10_000}, 422, "batch_size", None),
    ],
)
def test_bad_erase_requests_get_a_problem_naming_the_field_and_the_reason(
    client: TestClient, body: dict[str, Any], status: int, field: str, reason: str | None
) -> None:
    full = {"name": "no-city", "examples": EXAMPLES[:2] + EXAMPLES[-2:], "layers": [1], **body}
    problem = assert_problem(client.post("/erase", json=full), status)
    # A union's member may follow the field (`layers.list[...]`): the field the client wrote comes first.
    assert problem["field"] == field or problem["field"].startswith(f"{field}."), problem
    if reason is not None:
        assert reason in problem["detail"], problem


def test_too_many_examples_are_refused_before_any_work(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path, max_erasure_examples=3), tiny_registry(), *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as client:
        body = {"name": "x", "examples": EXAMPLES[:2] + EXAMPLES[-2:], "layers": [0]}
        assert_problem(client.post("/erase", json=body), 422, "examples")


def test_a_variant_with_components_the_runtime_cannot_apply_is_a_409_not_a_silent_base_model(
        client: TestClient, state: AppState) -> None:
    delta = LowRankDelta("model.layers.0.mlp.up_proj", torch.zeros(1, 32), torch.zeros(64, 1))
    state.stores("default").variants.save(TINY_MODEL, "edited", [delta], method="rome", hidden_size=32)
    problem = assert_problem(client.post("/generate", json={"prompt": PROMPT, "variant": "edited"}), 409, "variant")
    assert "module.model.layers.0.mlp.up_proj" in problem["detail"]


def test_jobs_naming_an_unknown_variant_are_refused_at_submission(client: TestClient) -> None:
    assert_problem(client.post("/score", json={"texts": ["Hi"], "variant": "ghost"}), 404, "variant")
    assert_problem(client.post("/attribute", json={"prompt": PROMPT, "variant": "ghost@2"}), 404, "variant")
    assert_problem(client.post("/generate", json={"prompt": PROMPT, "variant": "ghost"}), 404, "variant")
    assert_problem(client.post("/generate", json={"prompt": PROMPT, "variant": "a/b"}), 422, "variant")


def test_a_score_job_on_a_variant_scores_with_its_eraser(client: TestClient, state: AppState) -> None:
    erase(client, state)
    texts = ["The capital of France is Paris.", "Hi there"]
    reply = client.post("/score", json={"texts": texts, "variant": "no-city"})
    assert reply.status_code == 202, reply.text
    run_enqueued(state, reply.json()["id"])
    result = client.get(f"/jobs/{reply.json()['id']}").json()["result"]
    assert result["variant"] == "no-city@1"
    lm = tiny_lm()
    factors = state.stores("default").variants.load(TINY_MODEL, "no-city").components[0].tensors()
    for text, view in zip(texts, result["texts"], strict=True):
        ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
        with reference_eraser(lm, 1, factors), torch.no_grad():
            logprobs = torch.log_softmax(lm.model(input_ids=ids).logits[0].double(), -1)
        expected = [float(logprobs[i - 1, ids[0, i]]) for i in range(1, ids.shape[1])]
        assert [t["logprob"] for t in view["tokens"][1:]] == pytest.approx(expected, abs=1e-4)


def test_a_variant_deleted_before_its_job_runs_fails_the_job_with_a_404(client: TestClient, state: AppState) -> None:
    erase(client, state)
    reply = client.post("/attribute", json={"prompt": PROMPT, "variant": "no-city", "method": "shap",
                                            "max_evals": 20})
    assert reply.status_code == 202, reply.text
    client.delete(f"/models/{TINY_MODEL}/variants/no-city")
    run_enqueued(state, reply.json()["id"])
    job = client.get(f"/jobs/{reply.json()['id']}").json()
    assert job["status"] == "failed"
    assert (job["error"]["status"], job["error"]["field"]) == (404, "variant")


def test_an_attribution_job_on_a_variant_explains_the_variants_prediction(client: TestClient,
                                                                         state: AppState) -> None:
    erase(client, state)
    reply = client.post("/attribute", json={"prompt": PROMPT, "variant": "no-city", "rule": "gauss_legendre",
                                            "n_steps": 4})
    assert reply.status_code == 202, reply.text
    run_enqueued(state, reply.json()["id"])
    job = client.get(f"/jobs/{reply.json()['id']}").json()
    assert job["status"] == "succeeded", job
    result, lm = job["result"], tiny_lm()
    assert result["variant"] == "no-city@1"
    target = result["targets"][0]
    ids = torch.tensor([lm.tokenizer(PROMPT)["input_ids"]])
    factors = state.stores("default").variants.load(TINY_MODEL, "no-city").components[0].tensors()
    with reference_eraser(lm, 1, factors), torch.no_grad():
        logprobs = torch.log_softmax(lm.model(input_ids=ids).logits[0, -1].double(), -1)
    assert target["id"] == int(logprobs.argmax())  # the top prediction of the variant
    assert target["f_input"] == pytest.approx(float(logprobs[target["id"]]), abs=1e-4)

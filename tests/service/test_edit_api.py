"""`/edit` over HTTP: the job, the stored edited variant, serving and rolling it back, and every refusal."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from config.settings import DEFAULT_TENANT
from engine.loading import LoadedModel
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, run_enqueued, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem

FACT = {"prompt": "The capital of {} is", "subject": "France", "target_new": " Rome", "target_true": " Paris",
        "paraphrases": ["France's capital city is"],
        "neighborhood": [{"prompt": "The capital of Germany is", "answer": " Berlin"}]}
# Small enough for a tiny random model on two cores; the default model's edits are tested elsewhere.
QUICK = {"v_steps": 5, "mom2_samples": 256, "n_templates": 3}


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory, models=(TINY_MODEL,))
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def edit(client: TestClient, state: AppState, **body: Any) -> dict[str, Any]:
    body = {"name": "moved", "requests": [FACT], "hyperparameters": QUICK, "generation_tokens": 4, **body}
    reply = client.post("/edit", json=body)
    assert reply.status_code == 202, reply.text
    assert reply.json()["kind"] == "edit"
    run_enqueued(state, reply.json()["id"])
    job: dict[str, Any] = client.get(f"/jobs/{reply.json()['id']}").json()
    return job


def merged_copy(lm: LoadedModel, deltas: list[tuple[str, torch.Tensor, torch.Tensor]]) -> torch.nn.Module:
    model = copy.deepcopy(lm.model)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, a, b in deltas:
            modules[name].weight += b @ a
    return model


def test_an_edit_job_stores_a_rank_one_variant_with_its_evaluation(client: TestClient, state: AppState) -> None:
    job = edit(client, state)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["variant"]["ref"] == "moved@1" and result["variant"]["method"] == "rome"
    assert [d["rank"] for d in result["deltas"]] == [1] and result["deltas"][0]["norm"] > 0
    assert len(result["statistics"]) == 1 and result["statistics"][0]["count"] >= QUICK["mom2_samples"]
    evaluation = result["evaluation"]
    assert evaluation["n_requests"] == 1 and 0.0 <= evaluation["efficacy"]["edited"] <= 1.0
    assert evaluation["requests"][0]["neighborhood"][0]["wanted"] == " Berlin"
    shown = client.get(f"/models/{TINY_MODEL}/variants/moved").json()
    assert shown["components"][0]["kind"] == "low_rank_delta"
    assert shown["report"]["efficacy"] == evaluation["efficacy"]
    assert shown["hyperparameters"]["statistics"] == {str(s["layer"]): s["sha256"] for s in result["statistics"]}


def test_serving_the_edited_variant_equals_merged_weights_and_the_base_is_a_rollback(
        client: TestClient, state: AppState) -> None:
    edit(client, state, name="served")
    lm = state.registry.get(TINY_MODEL)
    variant = state.stores(DEFAULT_TENANT).variants.load(TINY_MODEL, "served")
    deltas = [(c.module, c.a, c.b) for c in variant.components]  # type: ignore[attr-defined]
    ids = torch.tensor([lm.tokenizer("The capital of France is")["input_ids"]])
    with torch.no_grad():
        merged = torch.log_softmax(merged_copy(lm, deltas)(input_ids=ids).logits[0, -1], -1)
        base = torch.log_softmax(lm.model(input_ids=ids).logits[0, -1], -1)
    # The lens reads every block; its last is the model's output.
    scored = client.post("/logit-lens", json={"prompt": "The capital of France is", "variant": "served", "top_k": 1})
    assert scored.status_code == 200, scored.text
    top = scored.json()["layers"][-1]["cells"][0]["top"][0]
    assert top["id"] == int(merged.argmax())
    assert top["probability"] == pytest.approx(float(merged.exp().max()), abs=1e-4)
    rolled_back = client.post("/logit-lens", json={"prompt": "The capital of France is", "top_k": 1}).json()
    assert rolled_back["layers"][-1]["cells"][0]["top"][0]["probability"] == pytest.approx(
        float(base.exp().max()), abs=1e-5)


def test_the_same_edit_twice_gives_the_same_delta(client: TestClient, state: AppState) -> None:
    first, second = edit(client, state, name="one"), edit(client, state, name="two")
    assert first["status"] == second["status"] == "succeeded"
    store = state.stores(DEFAULT_TENANT).variants
    a, b = store.load(TINY_MODEL, "one"), store.load(TINY_MODEL, "two")
    for x, y in zip(a.components, b.components, strict=True):
        assert torch.equal(x.a, y.a) and torch.equal(x.b, y.b)  # type: ignore[attr-defined]


def test_an_edit_on_a_parent_keeps_the_parents_deltas_first(client: TestClient, state: AppState) -> None:
    edit(client, state, name="base-edit")
    job = edit(client, state, name="child", variant="base-edit",
               requests=[{**FACT, "subject": "Germany", "target_new": " Madrid", "target_true": " Berlin"}])
    assert job["status"] == "succeeded", job
    shown = client.get(f"/models/{TINY_MODEL}/variants/child").json()
    assert shown["parent"] == "base-edit@1" and len(shown["components"]) == 2
    assert shown["components"][0]["origin"] == "base-edit@1"


def test_memit_writes_several_facts_in_one_job(client: TestClient, state: AppState) -> None:
    facts = [{**FACT, "subject": s, "target_new": t} for s, t in (("France", " Rome"), ("Spain", " Oslo"),
                                                                  ("Italy", " Lima"))]
    job = edit(client, state, name="many", method="memit", requests=facts,
               hyperparameters={**QUICK, "layers": [0, 1]})
    assert job["status"] == "succeeded", job
    assert [d["rank"] for d in job["result"]["deltas"]] == [3, 3]
    assert job["result"]["layers"] == [0, 1] and job["result"]["evaluation"]["n_requests"] == 3


@pytest.mark.parametrize(("change", "field"), [
    ({"requests": [{**FACT, "prompt": "The capital of France is"}]}, "requests.0.prompt"),
    ({"requests": [{**FACT, "prompt": "{} and {}"}]}, "requests.0.prompt"),
    ({"requests": [{**FACT, "subject": "   "}]}, "requests.0.subject"),
    ({"requests": []}, "requests"),
    ({"method": "rome2"}, "method"),
    ({"name": "../etc"}, "name"),
    ({"hyperparameters": {"layers": [0, 1]}}, "hyperparameters.layers"),
    ({"hyperparameters": {"layers": [9]}}, "hyperparameters.layers"),
    ({"method": "memit", "hyperparameters": {"layers": [1, 0]}}, "hyperparameters.layers"),
    ({"hyperparameters": {"v_lr": -1}}, "hyperparameters.v_lr"),
    ({"hyperparameters": {"learning_rate": 1}}, "hyperparameters.learning_rate"),
    ({"requests": [{**FACT, "neighborhood": [{"prompt": "x " * 600, "answer": " y"}]}]},
     "requests.0.neighborhood.0.prompt"),
])
def test_bad_edit_requests_are_refused_with_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    body = {"name": "bad", "requests": [FACT], **change}
    assert_problem(client.post("/edit", json=body), 422, field)


def test_too_many_facts_and_unknown_parents_are_refused_before_any_work(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path, max_rome_requests=2, max_edit_requests=3), tiny_registry(),
                      *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as client:
        assert_problem(client.post("/edit", json={"name": "x", "requests": [FACT] * 3}), 422, "requests")
        assert_problem(client.post("/edit", json={"name": "x", "method": "memit", "requests": [FACT] * 4}), 422,
                       "requests")
        assert_problem(client.post("/edit", json={"name": "x", "requests": [FACT], "variant": "ghost"}), 404,
                       "variant")

"""`/logit-lens`, `/trace`, `/diagnose` and `/ui` over HTTP on the tiny model: answers, jobs, and a 4xx
naming the field for every request the engine would refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from engine.components import AffineEraser
from service.main import create_app
from service.state import AppState
from service.views.ui import CONTENT_SECURITY_POLICY
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem

PROMPT = "The capital of France is Paris and the"


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True, max_lens_positions=8), tiny_registry(),
                      *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def next_token_probs(prompt: str) -> torch.Tensor:
    lm = tiny_lm()
    with torch.inference_mode():
        return torch.softmax(lm.model(torch.tensor([lm.tokenizer(prompt)["input_ids"]])).logits[0, -1], -1)


# --- /logit-lens -------------------------------------------------------------------------------


def test_the_lens_answers_every_layer_and_its_last_layer_is_the_models_prediction(client: TestClient) -> None:
    reply = client.post("/logit-lens", json={"prompt": PROMPT, "top_k": 3, "targets": ["The", 7]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    lm = tiny_lm()
    n_tokens = len(lm.tokenizer(PROMPT)["input_ids"])
    assert body["model"] == TINY_MODEL and body["variant"] is None
    assert body["positions"] == [n_tokens - 1] and len(body["tokens"]) == n_tokens
    assert [layer["layer"] for layer in body["layers"]] == [0, 1]
    assert [t["id"] for t in body["targets"]] == [lm.tokenizer("The", add_special_tokens=False)["input_ids"][0], 7]
    probs = next_token_probs(PROMPT)
    (last,) = body["layers"][-1]["cells"]
    assert [t["id"] for t in last["top"]] == probs.topk(3).indices.tolist()
    for t in last["top"]:
        assert t["probability"] == pytest.approx(float(probs[t["id"]]), abs=1e-6)
    for target in last["targets"]:
        assert target["probability"] == pytest.approx(float(probs[target["id"]]), abs=1e-6)
        assert target["rank"] == 1 + int((probs > probs[target["id"]]).sum())


def test_the_lens_reads_every_position_on_request(client: TestClient) -> None:
    reply = client.post("/logit-lens", json={"prompt": "The capital", "positions": "all", "top_k": 1})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["positions"] == list(range(len(body["tokens"])))
    assert all(len(layer["cells"]) == len(body["positions"]) for layer in body["layers"])


def test_the_lens_reads_a_stored_variant(client: TestClient, state: AppState) -> None:
    lm = tiny_lm()
    torch.manual_seed(0)
    hidden = lm.hidden_size
    eraser = AffineEraser(1, torch.randn(hidden, 3), torch.randn(3, hidden), torch.zeros(hidden))
    stored = state.stores("default").variants.save(TINY_MODEL, "erased", [eraser], method="leace",
                                                 hidden_size=lm.hidden_size)
    base = client.post("/logit-lens", json={"prompt": PROMPT, "top_k": 5}).json()
    reply = client.post("/logit-lens", json={"prompt": PROMPT, "top_k": 5, "variant": "erased"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["variant"] == stored.ref
    # Block 0 is before the eraser, the last block after it.
    assert reply.json()["layers"][0] == base["layers"][0]
    assert reply.json()["layers"][1] != base["layers"][1]


def test_a_variant_the_runtime_cannot_serve_yet_is_refused_not_ignored(client: TestClient, state: AppState) -> None:
    from engine.components import LowRankDelta

    lm = tiny_lm()
    delta = LowRankDelta("model.layers.0.mlp.down_proj", torch.zeros(1, 65), torch.zeros(lm.hidden_size, 1))
    state.stores("default").variants.save(TINY_MODEL, "edited", [delta], method="rome", hidden_size=lm.hidden_size)
    problem = assert_problem(client.post("/logit-lens", json={"prompt": PROMPT, "variant": "edited"}), 409, "variant")
    assert "maps 65" in problem["detail"]  # refused, never silently read as the base model


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"prompt": PROMPT, "positions": [99]}, 422, "positions"),
        ({"prompt": PROMPT, "positions": []}, 422, "positions"),
        ({"prompt": PROMPT, "positions": "all"}, 422, "positions"),  # more tokens than the limit of 8
        ({"prompt": PROMPT, "top_k": 51}, 422, "top_k"),
        ({"prompt": PROMPT, "top_k": 0}, 422, "top_k"),
        ({"prompt": PROMPT, "targets": ["two words"]}, 422, "targets.0"),
        ({"prompt": PROMPT, "targets": [7, 10**6]}, 422, "targets.1"),
        ({"prompt": PROMPT, "targets": list(range(17))}, 422, "targets"),
        ({"prompt": PROMPT, "variant": "nope"}, 404, "variant"),
        ({"prompt": PROMPT, "variant": "../x"}, 422, "variant"),
        ({"prompt": PROMPT, "model": "nope"}, 404, "model"),
        ({"prompt": "word " * 2000}, 422, "prompt"),
        ({"prompt": PROMPT, "messages": [{"role": "user", "content": "hi"}]}, 422, "body"),
        ({}, 422, "body"),
    ],
)
def test_bad_lens_requests_get_a_problem_naming_the_field(
    client: TestClient, body: dict[str, Any], status: int, field: str
) -> None:
    assert_problem(client.post("/logit-lens", json=body), status, field)


def test_the_lens_needs_the_model_in_the_api_process(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path), tiny_registry(), *fake_clients())
    state.registry = type(state.registry)()
    with TestClient(create_app(state=state)) as client:
        reply = client.post("/logit-lens", json={"prompt": PROMPT})
    assert_problem(reply, 503)
    assert "retry-after" in reply.headers


# --- /trace and /diagnose ----------------------------------------------------------------------


def test_a_trace_and_a_diagnosis_are_accepted_as_jobs(client: TestClient) -> None:
    for path, body, kind in [
        ("/trace", {"prompt": PROMPT, "subject": "France"}, "trace"),
        ("/trace", {"method": "activation_patching", "prompt": "The capital of France is",
                    "corrupted_prompt": "The capital of seven is", "answer": "The"}, "trace"),
        ("/diagnose", {"prompt": PROMPT, "expected": " Paris", "subject": "France"}, "diagnose"),
    ]:
        reply = client.post(path, json=body)
        assert reply.status_code == 202, reply.text
        assert reply.json()["kind"] == kind and reply.json()["status"] == "queued"
        assert reply.headers["location"] == f"/jobs/{reply.json()['id']}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": PROMPT}, "subject"),
        ({"prompt": PROMPT, "subject": "Germany"}, "subject"),
        ({"prompt": PROMPT, "method": "activation_patching"}, "corrupted_prompt"),
        ({"prompt": PROMPT, "method": "activation_patching", "corrupted_prompt": "Short"}, "corrupted_prompt"),
        ({"prompt": PROMPT, "subject": "France", "samples": 51}, "samples"),
        ({"prompt": PROMPT, "subject": "France", "samples": 0}, "samples"),
        ({"prompt": PROMPT, "subject": "France", "layers": [2]}, "layers"),
        ({"prompt": PROMPT, "subject": "France", "tokens": [99]}, "tokens"),
        ({"prompt": PROMPT, "subject": "France", "answer": "two words"}, "answer"),
        ({"prompt": PROMPT, "subject": "France", "kinds": ["embedding"]}, "kinds.0"),
        ({"prompt": PROMPT, "subject": "France", "window": 0}, "window"),
        ({"prompt": "word " * 70, "subject": "word"}, "prompt"),
        ({"prompt": PROMPT, "subject": "France", "samples": 50, "tokens": None}, "samples"),  # too many runs
    ],
)
def test_bad_trace_requests_get_a_problem_naming_the_field(
    tmp_path: Path, body: dict[str, Any], field: str
) -> None:
    state = app_state(tiny_settings(tmp_path, api_load_models=True, max_trace_evaluations=2000), tiny_registry(),
                      *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as client:
        assert_problem(client.post("/trace", json=body), 422, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": PROMPT, "expected": " Paris", "subject": "Germany"}, "subject"),
        ({"prompt": PROMPT, "expected": " Paris", "samples": 51}, "samples"),
        ({"prompt": PROMPT, "expected": ""}, "expected"),
        ({"prompt": "word " * 70, "expected": " Paris"}, "prompt"),
        ({"prompt": PROMPT, "expected": " Paris", "variant_name": "a/b"}, "variant_name"),
        ({"prompt": PROMPT}, "expected"),
    ],
)
def test_bad_diagnosis_requests_get_a_problem_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    assert_problem(client.post("/diagnose", json=body), 422, field)


def test_an_unknown_model_is_a_404_for_the_jobs_too(client: TestClient) -> None:
    assert_problem(client.post("/trace", json={"prompt": PROMPT, "subject": "France", "model": "nope"}), 404, "model")
    assert_problem(client.post("/diagnose", json={"prompt": PROMPT, "expected": " x", "model": "nope"}), 404, "model")


# --- /ui ---------------------------------------------------------------------------------------


def test_the_page_and_its_assets_are_served_under_a_strict_policy(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "<script>" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    for name in ("render.js", "app.js"):
        assert f'<script src="/ui/assets/{name}" defer></script>' in page.text
        script = client.get(f"/ui/assets/{name}")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert "innerHTML" not in script.text and "eval(" not in script.text
    assert "fetch(" in client.get("/ui/assets/app.js").text
    style = client.get("/ui/assets/app.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert_problem(client.get("/ui/assets/secrets.txt"), 422)


def test_the_page_needs_no_key_but_its_requests_do(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path, api_load_models=True, api_keys=["k"]), tiny_registry(), *fake_clients())
    with TestClient(create_app(state=state)) as client:
        assert client.get("/ui").status_code == 200
        assert_problem(client.post("/logit-lens", json={"prompt": PROMPT}), 401, "X-API-Key")
        assert client.post("/logit-lens", json={"prompt": PROMPT}, headers={"X-API-Key": "k"}).status_code == 200

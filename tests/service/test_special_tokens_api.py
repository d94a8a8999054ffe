"""Special-token text a caller sends is text, on every endpoint that takes prompts, unless it opts in.

On the tiny model, ``<|eos|>`` written inside a prompt must not reach the model as the end-of-sequence
token, whichever endpoint reads the prompt; with ``allow_special_tokens: true`` it does. The chat
template's side is tested on the default model's tokenizer in tests/engine/test_special_tokens.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.state import AppState
from tests.fakes import EOS, app_state, beat, fake_clients, run_enqueued, tiny_lm, tiny_registry, tiny_settings

PROMPT = f"The capital of France{EOS} is Paris and"
Ids = Callable[[dict[str, Any]], list[int]]


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True, max_lens_positions=64), tiny_registry(),
                      *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def answer(client: TestClient, state: AppState, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The response, or the result of the job the request submitted (run as a worker would)."""
    reply = client.post(path, json=body)
    assert reply.status_code in (200, 202), reply.text
    if reply.status_code == 200:
        done: dict[str, Any] = reply.json()
        return done
    run_enqueued(state, reply.json()["id"])
    job = client.get(f"/jobs/{reply.json()['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    result: dict[str, Any] = job["result"]
    return result


ENDPOINTS: list[tuple[str, dict[str, Any], Ids]] = [
    ("/logit-lens", {"prompt": PROMPT}, lambda r: [t["id"] for t in r["tokens"]]),
    ("/score", {"texts": [PROMPT]}, lambda r: [t["id"] for t in r["texts"][0]["tokens"]]),
    ("/attribute", {"prompt": PROMPT, "rule": "riemann_trapezoid", "n_steps": 4},
     lambda r: [t["id"] for t in r["inputs"]]),
    ("/trace", {"prompt": PROMPT, "subject": "France", "samples": 1, "kinds": ["residual"]},
     lambda r: [t["id"] for t in r["tokens"]]),
    ("/trace", {"method": "activation_patching", "prompt": PROMPT, "corrupted_prompt": PROMPT.replace("Paris", "Nice"),
                "kinds": ["residual"]}, lambda r: [t["id"] for t in r["tokens"] + r["corrupted_tokens"]]),
    ("/diagnose", {"prompt": PROMPT, "expected": " Paris", "subject": "France", "samples": 1, "kinds": ["mlp"],
                   "attribution_evaluations": 8}, lambda r: [t["id"] for t in r["tokens"]]),
]


@pytest.mark.parametrize(("path", "body", "ids"), ENDPOINTS,
                         ids=["lens", "score", "attribute", "causal-trace", "patching", "diagnose"])
def test_special_token_text_in_a_prompt_is_text_unless_the_request_allows_it(
        client: TestClient, state: AppState, path: str, body: dict[str, Any], ids: Ids) -> None:
    eos = tiny_lm().tokenizer.eos_token_id
    as_text = ids(answer(client, state, path, body))
    assert eos not in as_text
    assert tiny_lm().tokenizer.decode(as_text).count(EOS) >= 1
    assert eos in ids(answer(client, state, path, {**body, "allow_special_tokens": True}))


def test_generation_reads_special_token_text_as_text_unless_allowed(client: TestClient) -> None:
    tokenizer = tiny_lm().tokenizer
    body = {"prompt": PROMPT, "max_new_tokens": 1}
    as_text = client.post("/generate", json=body).json()["usage"]["prompt_tokens"]
    allowed = client.post("/generate", json={**body, "allow_special_tokens": True}).json()["usage"]["prompt_tokens"]
    assert as_text == len(tokenizer(PROMPT, split_special_tokens=True)["input_ids"])
    assert allowed == len(tokenizer(PROMPT)["input_ids"]) < as_text


def test_extraction_reads_special_token_text_as_text_unless_allowed(client: TestClient) -> None:
    body = {"name": "eos", "layers": [1], "positive": [f"Yes{EOS}", f"Sure{EOS}"], "negative": ["No", "Never"]}
    as_text = client.post("/steering/vectors", json=body)
    allowed = client.post("/steering/vectors", json={**body, "name": "eos-allowed", "allow_special_tokens": True})
    assert as_text.status_code == allowed.status_code == 201, (as_text.text, allowed.text)
    assert as_text.json()["norms"] != allowed.json()["norms"]


def test_an_attributed_continuation_keeps_special_token_text_as_text(client: TestClient, state: AppState) -> None:
    body = {"prompt": "The capital of France is", "target": {"kind": "continuation", "text": f" Paris{EOS}"},
            "rule": "riemann_trapezoid", "n_steps": 4}
    eos = tiny_lm().tokenizer.eos_token_id
    assert eos not in [t["id"] for t in answer(client, state, "/attribute", body)["targets"]]
    allowed = answer(client, state, "/attribute", {**body, "allow_special_tokens": True})
    assert eos in [t["id"] for t in allowed["targets"]]

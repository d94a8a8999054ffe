"""The job routes' shared request checks, over HTTP: the exact problem (field, detail) and the order they run in.

Clients match on these details and fields, so they are pinned word for word here; the per-route tests
check the field and the reason, these check that moving the checks into one module changed no answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem
from tests.service.test_edit_api import FACT
from tests.service.test_erase_api import EXAMPLES

LONG = "The capital of France is Paris. " * 3
#: A model the deployment serves but the API process does not hold: only a worker knows its depth.
REMOTE = "remote"
REMOTE_LAYERS = 4


def n_tokens(text: str, *, add_special_tokens: bool = True) -> int:
    return len(tiny_lm().tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def make_client(tmp_path: Path, **overrides: Any) -> TestClient:
    state = app_state(tiny_settings(tmp_path, **overrides), tiny_registry(), *fake_clients())
    beat(state.directory)
    return TestClient(create_app(state=state))


@pytest.fixture
def remote_state(tmp_path: Path) -> AppState:
    models = {TINY_MODEL: f"test:{TINY_MODEL}", REMOTE: f"test:{REMOTE}"}
    state = app_state(tiny_settings(tmp_path, models=models, max_prompt_tokens=4), tiny_registry(), *fake_clients())
    state.directory.beat("worker-2", {"name": "worker-2", "pid": 2, "host": "test", "time": time.time(),
                                      "models": {REMOTE: {"architecture": "llama", "n_layers": REMOTE_LAYERS}}})
    return state


@pytest.fixture
def remote_client(remote_state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=remote_state)) as client:
        yield client


def assert_refused(client: TestClient, path: str, body: dict[str, Any], field: str, detail: str) -> None:
    problem = assert_problem(client.post(path, json=body), 422, field)
    assert problem["title"] == "Invalid request"
    assert problem["detail"] == detail


def test_score_refuses_too_many_texts_with_the_count_and_the_limit(tmp_path: Path) -> None:
    with make_client(tmp_path, max_score_texts=2) as client:
        assert_refused(client, "/score", {"texts": ["a", "b", "c"]}, "texts", "3 texts; the limit is 2")


def test_score_refuses_a_batch_size_over_the_limit(tmp_path: Path) -> None:
    with make_client(tmp_path, max_batch_size=4) as client:
        assert_refused(client, "/score", {"texts": ["a"], "batch_size": 5}, "batch_size",
                       "batch_size 5 exceeds the limit 4")


def test_score_refuses_the_first_text_over_the_token_limit_by_index(tmp_path: Path) -> None:
    with make_client(tmp_path, max_prompt_tokens=4) as client:
        assert_refused(client, "/score", {"texts": ["ok", LONG, LONG]}, "texts.1",
                       f"text 1 has {n_tokens(LONG)} tokens; the limit is 4")


def test_score_checks_the_count_then_the_batch_size_then_the_tokens(tmp_path: Path) -> None:
    with make_client(tmp_path, max_score_texts=2, max_batch_size=4, max_prompt_tokens=4) as client:
        assert_refused(client, "/score", {"texts": [LONG] * 3, "batch_size": 5}, "texts", "3 texts; the limit is 2")
        assert_refused(client, "/score", {"texts": [LONG], "batch_size": 5}, "batch_size",
                       "batch_size 5 exceeds the limit 4")


def test_erase_refuses_too_many_examples_with_the_count_and_the_limit(tmp_path: Path) -> None:
    with make_client(tmp_path, max_erasure_examples=3) as client:
        assert_refused(client, "/erase", {"name": "x", "examples": EXAMPLES[:2] + EXAMPLES[-2:], "layers": [0]},
                       "examples", "4 examples; the limit is 3")


def test_erase_refuses_a_batch_size_over_the_limit_naming_the_field(tmp_path: Path) -> None:
    with make_client(tmp_path, max_batch_size=4) as client:
        assert_refused(client, "/erase", {"name": "x", "examples": EXAMPLES, "layers": [0], "batch_size": 5},
                       "batch_size", "batch_size 5 exceeds the limit 4")


def test_erase_refuses_layers_beyond_the_resident_models_blocks(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        assert_refused(client, "/erase", {"name": "x", "examples": EXAMPLES, "layers": [0, 7, 9]}, "layers",
                       f"layers [7, 9] are out of range: {TINY_MODEL} has blocks 0..1")


def test_erase_refuses_an_example_over_the_token_limit_by_index(tmp_path: Path) -> None:
    examples = [{**EXAMPLES[0], "text": "a"}, EXAMPLES[-1], {**EXAMPLES[1], "text": LONG}]
    with make_client(tmp_path, max_prompt_tokens=n_tokens(EXAMPLES[-1]["text"])) as client:
        limit = n_tokens(EXAMPLES[-1]["text"])
        assert_refused(client, "/erase", {"name": "x", "examples": examples, "layers": [0]}, "examples.2.text",
                       f"example 2 has {n_tokens(LONG)} tokens; 1 to {limit} are allowed")


def test_erase_checks_the_batch_size_then_the_layers_then_the_tokens(tmp_path: Path) -> None:
    examples = [{**EXAMPLES[0], "text": LONG}, EXAMPLES[-1]]
    with make_client(tmp_path, max_batch_size=4, max_prompt_tokens=4) as client:
        body = {"name": "x", "examples": examples, "layers": [7]}
        assert_refused(client, "/erase", {**body, "batch_size": 5}, "batch_size", "batch_size 5 exceeds the limit 4")
        assert_refused(client, "/erase", body, "layers", f"layers [7] are out of range: {TINY_MODEL} has blocks 0..1")


def test_erase_checks_layers_against_a_live_workers_report_for_a_model_the_api_does_not_hold(
        remote_client: TestClient) -> None:
    body = {"model": REMOTE, "name": "x", "examples": EXAMPLES[:2] + EXAMPLES[-2:], "layers": [3, 4]}
    assert_refused(remote_client, "/erase", body, "layers",
                   f"layers [4] are out of range: {REMOTE} has blocks 0..{REMOTE_LAYERS - 1}")


def test_without_the_models_tokenizer_the_api_leaves_token_limits_to_the_worker(remote_client: TestClient) -> None:
    long_examples = [{**example, "text": LONG} for example in EXAMPLES[:2] + EXAMPLES[-2:]]
    reply = remote_client.post("/erase", json={"model": REMOTE, "name": "x", "examples": long_examples,
                                               "layers": [3]})
    assert reply.status_code == 202, reply.text
    reply = remote_client.post("/score", json={"model": REMOTE, "texts": [LONG]})
    assert reply.status_code == 202, reply.text


@pytest.mark.parametrize(("method", "facts", "detail"), [
    ("rome", 3, "3 facts; rome takes at most 2 per request (use memit for more)"),
    ("memit", 4, "4 facts; memit takes at most 3 per request"),
])
def test_edit_refuses_more_facts_than_its_method_takes(tmp_path: Path, method: str, facts: int, detail: str) -> None:
    with make_client(tmp_path, max_rome_requests=2, max_edit_requests=3) as client:
        assert_refused(client, "/edit", {"name": "x", "method": method, "requests": [FACT] * facts}, "requests",
                       detail)


def test_edit_refuses_layers_beyond_the_models_blocks(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        assert_refused(client, "/edit", {"name": "x", "method": "memit", "requests": [FACT],
                                         "hyperparameters": {"layers": [1, 2, 5]}}, "hyperparameters.layers",
                       f"layers [2, 5] are out of range: {TINY_MODEL} has blocks 0..1")


def test_edit_refuses_the_first_fact_text_over_the_token_limit_naming_fact_and_field(tmp_path: Path) -> None:
    fact = {**FACT, "paraphrases": ["France's capital city is", LONG]}
    limit = 20
    with make_client(tmp_path, max_prompt_tokens=limit) as client:
        assert_refused(client, "/edit", {"name": "x", "requests": [FACT, fact]}, "requests.1.paraphrases.1",
                       f"fact 1: paraphrases.1 has {n_tokens(LONG, add_special_tokens=False)} tokens; 1 to {limit} "
                       "are allowed")


def test_edit_checks_the_fact_count_then_the_layers_then_the_texts(tmp_path: Path) -> None:
    fact = {**FACT, "target_new": LONG}
    with make_client(tmp_path, max_rome_requests=1, max_prompt_tokens=20) as client:
        body = {"name": "x", "requests": [fact], "hyperparameters": {"layers": [0, 1]}}
        assert_refused(client, "/edit", {**body, "requests": [fact] * 2}, "requests",
                       "2 facts; rome takes at most 1 per request (use memit for more)")
        assert_refused(client, "/edit", body, "hyperparameters.layers", "ROME edits exactly one layer; got 2")
        assert_refused(client, "/edit", {**body, "hyperparameters": {"layers": [0]}}, "requests.0.target_new",
                       f"fact 0: target_new has {n_tokens(LONG, add_special_tokens=False)} tokens; 1 to 20 are "
                       "allowed")


PROMPT = "The capital of France is Paris and the"


@pytest.mark.parametrize(("overrides", "path", "body", "field", "detail"), [
    ({"max_lens_top_k": 2}, "/logit-lens", {"prompt": PROMPT, "top_k": 3}, "top_k", "top_k is 3; the limit is 2"),
    ({"max_lens_targets": 1}, "/logit-lens", {"prompt": PROMPT, "targets": [1, 2]}, "targets",
     "2 targets; the limit is 1"),
    ({"max_lens_positions": 2}, "/logit-lens", {"prompt": PROMPT, "positions": "all"}, "positions",
     f"{n_tokens(PROMPT)} positions; the limit is 2 (the prompt has {n_tokens(PROMPT)} tokens)"),
    ({"max_trace_samples": 2}, "/trace", {"prompt": PROMPT, "subject": "France", "samples": 3}, "samples",
     "samples is 3; the limit is 2"),
    ({"max_trace_samples": 2}, "/diagnose", {"prompt": PROMPT, "expected": " Paris", "samples": 3}, "samples",
     "samples is 3; the limit is 2"),
])
def test_debugging_routes_refuse_a_number_over_its_limit_with_the_value_and_the_limit(
        tmp_path: Path, overrides: dict[str, Any], path: str, body: dict[str, Any], field: str, detail: str) -> None:
    with make_client(tmp_path, api_load_models=True, **overrides) as client:
        assert_refused(client, path, body, field, detail)

"""The HTTP API over fake Redis and the tiny model: status codes, headers, problems, jobs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import torch
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer

from schemas.jobs import JobStatus
from schemas.problems import PROBLEM_MEDIA_TYPE
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, dumps, fake_clients, tiny_lm, tiny_registry, tiny_settings
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

QUEUE = f"interp.model.{TINY_MODEL}"
SCORE = {"texts": ["The capital of France is Paris.", "Hello there"]}


def make_state(tmp_path: Path, *, live_worker: bool = True, **overrides: Any) -> AppState:
    settings = tiny_settings(tmp_path, **overrides)
    state = app_state(settings, tiny_registry(), *fake_clients())
    if live_worker:
        beat(state.directory)
    return state


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    return make_state(tmp_path)


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["type"]
    if field is not None:
        assert problem.get("field") == field, problem
    return problem


def rq_queue(state: AppState) -> Queue:
    return Queue(QUEUE, connection=state.rq_redis, serializer=JSONSerializer)


def submit(client: TestClient, body: dict[str, Any] = SCORE, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/score", json=body, headers=headers)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/score", "/generate"])
def test_an_unknown_model_is_a_404_naming_the_model_field(client: TestClient, path: str) -> None:
    body = {"model": "nope", "texts": ["hi"]} if path == "/score" else {"model": "nope", "prompt": "hi"}
    problem = assert_problem(client.post(path, json=body), 404, "model")
    assert "nope" in problem["detail"] and TINY_MODEL in problem["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/score", {"texts": [""]}, "texts.0"),
        ("/score", {"texts": ["ok", ""]}, "texts.1"),
        ("/score", {"texts": []}, "texts"),
        ("/score", {}, "texts"),
        ("/score", {"texts": ["ok"], "batch_size": 0}, "batch_size"),
        ("/generate", {"prompt": "hi", "max_new_tokens": 0}, "max_new_tokens"),
        ("/generate", {"prompt": "hi", "temperature": -1}, "temperature"),
        ("/generate", {"prompt": ""}, "prompt"),
    ],
)
def test_a_malformed_body_is_a_422_naming_the_field(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(client.post(path, json=body), 422, field)
    assert problem["errors"][0]["field"] == field
    assert problem["detail"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("overrides", "body", "field"),
    [
        ({"max_score_texts": 2}, {"texts": ["a", "b", "c"]}, "texts"),
        ({"max_batch_size": 4}, {"texts": ["a"], "batch_size": 5}, "batch_size"),
        ({"max_prompt_tokens": 3}, {"texts": ["ok", "this text is longer than three tokens"]}, "texts.1"),
    ],
)
def test_a_request_over_a_configured_limit_is_a_422_naming_the_field(
    tmp_path: Path, overrides: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    state = make_state(tmp_path, **overrides)
    with TestClient(create_app(state=state)) as client:
        assert_problem(client.post("/score", json=body), 422, field)
    assert rq_queue(state).job_ids == []


def test_generate_over_the_token_limit_is_a_422_naming_the_field(tmp_path: Path) -> None:
    with TestClient(create_app(state=make_state(tmp_path, max_new_tokens=4))) as client:
        assert_problem(client.post("/generate", json={"prompt": "hi", "max_new_tokens": 5}), 422,
                       "max_new_tokens")


def test_a_body_that_is_not_json_is_a_422_about_the_body(client: TestClient) -> None:
    response = client.post("/score", content=b'{"texts": [', headers={"content-type": "application/json"})
    problem = assert_problem(response, 422, "body")
    assert problem["errors"][0]["type"] == "json_invalid"


def test_a_body_over_the_size_limit_is_a_413(client: TestClient, state: AppState) -> None:
    big = dumps({"texts": ["x" * 2_000_000]})
    assert_problem(client.post("/score", content=big), 413, "body")
    assert rq_queue(state).job_ids == []


def test_a_chunked_body_over_the_size_limit_is_a_413(client: TestClient) -> None:
    chunks = iter([b'{"texts": ["', b"x" * 700_000, b"x" * 700_000, b'"]}'])
    response = client.post("/score", content=chunks, headers={"content-type": "application/json"})
    assert_problem(response, 413, "body")


def test_an_unknown_job_is_a_404(client: TestClient) -> None:
    assert_problem(client.get(f"/jobs/{'a' * 32}"), 404, "job_id")
    assert_problem(client.post(f"/jobs/{'a' * 32}/cancel"), 404, "job_id")


def test_a_malformed_job_id_is_a_422(client: TestClient) -> None:
    assert_problem(client.get("/jobs/not-a-job"), 422, "job_id")


def test_an_unknown_route_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404)


def test_a_wrong_method_is_a_405_problem(client: TestClient) -> None:
    assert_problem(client.get("/score"), 405)


# --- jobs -----------------------------------------------------------------------------------


def test_score_answers_202_with_location_and_a_queued_job(client: TestClient, state: AppState) -> None:
    response = submit(client)

    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert response.headers["Retry-After"] == str(state.settings.retry_after_seconds)
    assert "Idempotent-Replayed" not in response.headers
    assert (job["status"], job["kind"], job["model"]) == ("queued", "score", TINY_MODEL)
    assert job["progress"] == {"fraction": 0.0, "stage": "queued"}
    assert job["links"] == {"self": f"/jobs/{job['id']}", "cancel": f"/jobs/{job['id']}/cancel"}
    assert job["result"] is None
    assert rq_queue(state).job_ids == [job["id"]]

    polled = client.get(response.headers["Location"])
    assert polled.status_code == 200
    assert polled.json()["id"] == job["id"] and polled.json()["status"] == "queued"
    assert polled.headers["Retry-After"] == str(state.settings.retry_after_seconds)


def test_the_same_idempotency_key_returns_the_same_job(client: TestClient, state: AppState) -> None:
    first = submit(client, key="retry-me")
    again = submit(client, key="retry-me")

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert rq_queue(state).job_ids == [first.json()["id"]]


def test_another_body_with_a_used_idempotency_key_is_a_409(client: TestClient, state: AppState) -> None:
    first = submit(client, key="retry-me")
    problem = assert_problem(submit(client, {"texts": ["different"]}, key="retry-me"), 409, "Idempotency-Key")
    assert problem["job_id"] == first.json()["id"]
    assert rq_queue(state).job_ids == [first.json()["id"]]


def test_canceling_a_queued_job_cancels_it_and_takes_it_off_the_queue(
    client: TestClient, state: AppState
) -> None:
    job_id = submit(client).json()["id"]
    other_id = submit(client).json()["id"]

    response = client.post(f"/jobs/{job_id}/cancel")

    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "canceled" and job["cancel_requested"] is True
    assert job["error"]["type"] == "urn:interp:problem:canceled"
    assert rq_queue(state).job_ids == [other_id]
    assert client.get(f"/jobs/{job_id}").json()["status"] == "canceled"


def test_canceling_a_running_job_only_requests_it(client: TestClient, state: AppState) -> None:
    job_id = submit(client).json()["id"]
    assert state.store.claim(job_id, "worker-1")

    job = client.post(f"/jobs/{job_id}/cancel").json()

    assert (job["status"], job["cancel_requested"]) == ("running", True)  # the worker stops it


def test_canceling_a_finished_job_is_a_409(client: TestClient, state: AppState) -> None:
    job_id = submit(client).json()["id"]
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
    assert_problem(client.post(f"/jobs/{job_id}/cancel"), 409, "job_id")


def test_long_polling_a_queued_job_returns_after_the_wait(client: TestClient) -> None:
    job_id = submit(client).json()["id"]
    started = time.monotonic()
    response = client.get(f"/jobs/{job_id}", params={"wait": 0.2})
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert 0.2 <= elapsed < 1.0


def test_long_polling_returns_as_soon_as_the_job_ends(client: TestClient, state: AppState) -> None:
    job_id = submit(client).json()["id"]
    state.store.claim(job_id, "worker-1")
    finisher = threading.Timer(0.2, state.store.finish, args=(job_id, JobStatus.succeeded),
                               kwargs={"result": {"texts": [], "elapsed_seconds": 0.0}})
    finisher.start()
    started = time.monotonic()
    response = client.get(f"/jobs/{job_id}", params={"wait": 10})
    elapsed = time.monotonic() - started
    finisher.join()
    assert response.json()["status"] == "succeeded"
    assert "Retry-After" not in response.headers
    assert elapsed < 2.0


def test_a_slow_job_store_does_not_stall_other_requests(
    client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(client).json()["id"]
    real_get = state.store.get

    def slow_get(jid: str) -> Any:
        time.sleep(1.0)
        return real_get(jid)

    monkeypatch.setattr(state.store, "get", slow_get)
    poller = threading.Thread(target=client.get, args=(f"/jobs/{job_id}",))
    poller.start()
    time.sleep(0.1)  # the poll is now inside the slow read
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    elapsed = time.monotonic() - started
    poller.join()
    assert elapsed < 0.5


def test_a_scored_job_reads_back_succeeded_with_its_result(client: TestClient, state: AppState) -> None:
    job = submit(client).json()
    runtime = WorkerRuntime(settings=state.settings, registry=state.registry, store=state.store,
                            worker_name="worker-1")
    run_job(runtime, job["id"], "score", {**SCORE, "model": None, "batch_size": None})

    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "succeeded"
    assert done["progress"] == {"fraction": 1.0, "stage": "done"}
    assert [len(t["tokens"]) for t in done["result"]["texts"]] == [
        len(tiny_lm().tokenizer(text)["input_ids"]) for text in SCORE["texts"]
    ]


def test_a_job_whose_worker_died_reads_back_failed(client: TestClient, state: AppState) -> None:
    job_id = submit(client).json()["id"]
    state.store.claim(job_id, "vanished")
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"]["type"] == "urn:interp:problem:worker-lost"


# --- generation -----------------------------------------------------------------------------


def greedy_reference(prompt: str, n: int) -> list[int]:
    """Argmax decoding that recomputes the whole sequence each step (no KV cache)."""
    lm = tiny_lm()
    ids = list(lm.tokenizer(prompt)["input_ids"])
    out: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            logits = lm.model(input_ids=torch.tensor([ids + out])).logits[0, -1]
            out.append(int(torch.argmax(logits)))
    return out


def test_greedy_generate_matches_a_manual_argmax_loop(client: TestClient) -> None:
    prompt, n = "The capital of France is", 8
    expected = greedy_reference(prompt, n)
    assert tiny_lm().tokenizer.eos_token_id not in expected  # precondition: runs to the limit

    response = client.post("/generate", json={"prompt": prompt, "max_new_tokens": n})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["id"] for t in body["tokens"]] == expected
    assert body["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": len(tiny_lm().tokenizer(prompt)["input_ids"]),
                             "completion_tokens": n}
    assert body["text"] == tiny_lm().tokenizer.decode(expected, skip_special_tokens=True)
    assert body["model"] == TINY_MODEL


def test_seeded_sampling_is_reproducible(client: TestClient) -> None:
    body = {"prompt": "One, two", "max_new_tokens": 6, "temperature": 1.0, "seed": 7}
    first = client.post("/generate", json=body).json()
    again = client.post("/generate", json=body).json()
    assert [t["id"] for t in first["tokens"]] == [t["id"] for t in again["tokens"]]


def test_a_form_encoded_body_is_read_as_json(client: TestClient) -> None:
    """``curl -d '{...}'`` sends application/x-www-form-urlencoded; it still works."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    generated = client.post("/generate", content=dumps({"prompt": "Hi", "max_new_tokens": 2}), headers=form)
    assert generated.status_code == 200, generated.text
    assert len(generated.json()["tokens"]) == 2
    scored = client.post("/score", content=dumps({"texts": ["Hi there"]}), headers=form)
    assert scored.status_code == 202, scored.text


def test_generate_for_a_model_not_resident_in_the_api_is_a_503(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, models={TINY_MODEL: "test:tiny", "other": "test:other"})
    state = app_state(settings, tiny_registry(), *fake_clients())
    with TestClient(create_app(state=state)) as client:
        response = client.post("/generate", json={"model": "other", "prompt": "hi"})
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


# --- availability ---------------------------------------------------------------------------


def test_without_a_live_worker_score_is_a_503_with_retry_after(tmp_path: Path) -> None:
    state = make_state(tmp_path, live_worker=False)
    with TestClient(create_app(state=state)) as client:
        response = submit(client)
        ready = client.get("/readyz")
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert rq_queue(state).job_ids == []
    assert ready.status_code == 503
    assert ready.json()["workers"] == {TINY_MODEL: 0}


def test_with_a_live_worker_the_service_is_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "redis": True, "workers": {TINY_MODEL: 1}, "detail": None}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_models_lists_the_resident_model(client: TestClient) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    (info,) = response.json()["models"]
    config = tiny_lm().model.config
    assert (info["name"], info["architecture"], info["workers"]) == (TINY_MODEL, "llama", 1)
    assert (info["n_layers"], info["hidden_size"], info["vocab_size"]) == (
        config.num_hidden_layers, config.hidden_size, config.vocab_size)


@pytest.fixture
def redis_down_state(tmp_path: Path) -> AppState:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "socket_connect_timeout": 0.2,
                               "socket_timeout": 0.2, "retry": Retry(NoBackoff(), 0)}
    settings = tiny_settings(tmp_path)
    return app_state(settings, tiny_registry(), redis.Redis(decode_responses=True, **options),
                     redis.Redis(**options))


def test_with_redis_down_job_routes_answer_503_with_retry_after(redis_down_state: AppState) -> None:
    with TestClient(create_app(state=redis_down_state)) as client:
        responses = [submit(client), client.get(f"/jobs/{'a' * 32}"), client.post(f"/jobs/{'a' * 32}/cancel")]
        ready = client.get("/readyz")
        health = client.get("/healthz")
    for response in responses:
        assert_problem(response, 503)
        assert response.headers["Retry-After"] == "1"
    assert ready.status_code == 503
    assert ready.json()["redis"] is False and ready.headers["Retry-After"] == "1"
    assert health.status_code == 200


# --- API keys -------------------------------------------------------------------------------


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(state=make_state(tmp_path, api_keys=["s3cret", "other"]))) as test_client:
        yield test_client


@pytest.mark.parametrize("key", [None, "", "wrong", "s3cret "])
def test_with_api_keys_a_request_without_a_valid_key_is_a_401(keyed_client: TestClient, key: str | None) -> None:
    headers = {"X-API-Key": key} if key is not None else {}
    assert_problem(keyed_client.post("/score", json=SCORE, headers=headers), 401, "X-API-Key")
    assert_problem(keyed_client.get(f"/jobs/{'a' * 32}", headers=headers), 401, "X-API-Key")
    assert_problem(keyed_client.get("/models", headers=headers), 401, "X-API-Key")
    assert_problem(keyed_client.post("/generate", json={"prompt": "hi"}, headers=headers), 401, "X-API-Key")


@pytest.mark.parametrize("key", ["s3cret", "other"])
def test_with_api_keys_any_configured_key_is_accepted(keyed_client: TestClient, key: str) -> None:
    response = keyed_client.post("/score", json=SCORE, headers={"X-API-Key": key})
    assert response.status_code == 202, response.text
    assert keyed_client.get(response.headers["Location"], headers={"X-API-Key": key}).status_code == 200


def test_with_api_keys_health_probes_need_no_key(keyed_client: TestClient) -> None:
    assert keyed_client.get("/healthz").status_code == 200
    assert keyed_client.get("/readyz").status_code == 200


def test_without_api_keys_no_key_is_needed(client: TestClient) -> None:
    assert client.get("/models").status_code == 200


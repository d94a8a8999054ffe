"""Observability: Prometheus /metrics, request ids (header, logs, job record), one JSON log line per request."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from config.logs import JsonFormatter, configure_logging, log_context
from jobs.directory import WorkerDirectory
from schemas.jobs import JobStatus
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem, make_state

KEY = "key-of-team-a-0001"
SCORE = {"texts": ["The capital of France is Paris."]}


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged meanwhile, formatted as the services format it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [entry for entry in map(json.loads, stream.getvalue().splitlines()) if entry["message"] == "request"]


# --- metrics --------------------------------------------------------------------------------------


def test_latency_is_recorded_by_route_template_never_by_raw_path(client: TestClient) -> None:
    job = client.post("/score", json=SCORE).json()
    for _ in range(3):
        client.get(f"/jobs/{job['id']}")
    client.get(f"/jobs/{'f' * 32}")
    client.get("/no/such/path")
    samples = scrape(client)
    count = "interp_http_request_duration_seconds_count"
    assert samples[(count, (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "200")))] == 3
    assert samples[(count, (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "404")))] == 1
    assert samples[(count, (("method", "POST"), ("route", "/score"), ("status", "202")))] == 1
    assert samples[(count, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    routes = {dict(labels).get("route") for (name, labels) in samples if name == count}
    assert not any(job["id"] in str(route) or "f" * 32 in str(route) for route in routes)


def test_queue_depth_jobs_by_status_and_workers_come_from_redis(client: TestClient, state: AppState) -> None:
    ids = [client.post("/score", json=SCORE).json()["id"] for _ in range(3)]
    assert state.store.claim(ids[0], "worker-1")
    state.rq_redis.lpop(f"rq:queue:{state.settings.queue_name(TINY_MODEL)}")  # as the worker's dequeue does
    assert state.store.claim(ids[1], "worker-1") and state.store.finish(ids[1], JobStatus.succeeded, result={})
    state.rq_redis.lpop(f"rq:queue:{state.settings.queue_name(TINY_MODEL)}")
    beat(state.directory, "worker-2")
    samples = scrape(client)
    assert samples[("interp_queue_depth", (("model", TINY_MODEL),))] == 1
    assert samples[("interp_jobs", (("status", "queued"),))] == 1
    assert samples[("interp_jobs", (("status", "running"),))] == 1
    assert samples[("interp_jobs_submitted_total", ())] == 3
    assert samples[("interp_jobs_ended_total", (("status", "succeeded"),))] == 1
    assert samples[("interp_workers", (("model", TINY_MODEL),))] == 2
    assert samples[("interp_redis_up", ())] == 1


def test_model_memory_is_reported_for_the_api_and_for_each_worker_from_its_heartbeat(client: TestClient,
                                                                                     state: AppState) -> None:
    lm = tiny_lm()
    resident = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    WorkerDirectory.beat(state.directory, "gpu-worker", {
        "name": "gpu-worker", "models": {TINY_MODEL: {"parameter_bytes": 4242}}, "rss_bytes": 10**9})
    samples = scrape(client)
    assert samples[("interp_model_parameter_bytes", (("model", TINY_MODEL),))] == resident
    assert samples[("interp_worker_model_parameter_bytes", (("model", TINY_MODEL), ("worker", "gpu-worker")))] == 4242
    assert samples[("interp_worker_rss_bytes", (("worker", "gpu-worker"),))] == 10**9
    assert samples[("process_resident_memory_bytes", ())] > resident


def test_the_worker_heartbeat_publishes_its_models_bytes_and_memory(state: AppState) -> None:
    from workers.runtime import WorkerRuntime
    from workers.worker import ModelWorker

    runtime = WorkerRuntime(settings=state.settings, registry=tiny_registry(), store=state.store, worker_name="w")
    info = ModelWorker(runtime, state.directory, connection=state.rq_redis).heartbeat_info()
    assert info["models"][TINY_MODEL]["parameter_bytes"] == tiny_lm().parameter_bytes > 0
    assert info["rss_bytes"] > info["models"][TINY_MODEL]["parameter_bytes"]


def test_metrics_survive_a_redis_outage(tmp_path: Path) -> None:
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.integration.harness import free_port

    state = make_state(tmp_path, live_worker=False)
    port = free_port()
    state.redis = redis_lib.Redis(port=port, decode_responses=True, socket_connect_timeout=0.2,
                                  retry=Retry(NoBackoff(), 0))
    state.rq_redis = redis_lib.Redis(port=port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    with TestClient(create_app(state=state)) as client:
        samples = scrape(client)
    assert samples[("interp_redis_up", ())] == 0
    assert not any(name.startswith("interp_queue_depth") for name, _ in samples)


def test_metrics_need_a_key_when_keys_are_set_unless_public(tmp_path: Path) -> None:
    with TestClient(create_app(state=make_state(tmp_path, api_keys=f"{KEY}:team-a"))) as client:
        assert_problem(client.get("/metrics"), 401, "X-API-Key")
        assert ("interp_redis_up", ()) in scrape(client, **{"X-API-Key": KEY})
    with TestClient(create_app(state=make_state(tmp_path, api_keys=f"{KEY}:team-a", metrics_public=True))) as client:
        assert client.get("/metrics").status_code == 200


# --- request ids and logs -------------------------------------------------------------------------


def test_a_request_id_is_echoed_when_valid_and_made_when_missing_or_invalid(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "trace-7f.a:b_c-1"}).headers["X-Request-ID"] == \
        "trace-7f.a:b_c-1"
    made = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(made) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in made)
    for bad in ["has space", "x" * 129, "new\\nline", "quote\"", "é"]:
        replaced = client.get("/healthz", headers=[(b"X-Request-ID", bad.encode("utf-8"))]).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    # Errors carry it too, the body guard's 413 included.
    assert client.post("/score", content=b"x" * 2_000_000, headers={"X-Request-ID": "big-1"}).headers[
        "X-Request-ID"] == "big-1"


def test_a_job_keeps_the_id_of_the_request_that_submitted_it(client: TestClient) -> None:
    reply = client.post("/score", json=SCORE, headers={"X-Request-ID": "submit-123"})
    assert reply.json()["request_id"] == "submit-123"
    assert client.get(reply.headers["Location"]).json()["request_id"] == "submit-123"
    made = client.post("/score", json=SCORE)
    assert client.get(made.headers["Location"]).json()["request_id"] == made.headers["X-Request-ID"]


def test_each_request_is_one_json_log_line_with_its_id_route_status_duration_and_tenant(
    tmp_path: Path, captured: io.StringIO
) -> None:
    state = make_state(tmp_path, api_keys=f"{KEY}:team-a")
    with TestClient(create_app(state=state)) as client:
        job = client.post("/score", json=SCORE, headers={"X-API-Key": KEY, "X-Request-ID": "r-1"}).json()
        client.get(f"/jobs/{job['id']}?secret=query", headers={"X-API-Key": KEY, "X-Request-ID": "r-2"})
        client.get("/models", headers={"X-Request-ID": "r-3"})  # no key: a 401, no tenant
    lines = access_lines(captured)
    assert [(e["request_id"], e["route"], e["method"], e["status"], e.get("tenant")) for e in lines] == [
        ("r-1", "/score", "POST", 202, "team-a"), ("r-2", "/jobs/{job_id}", "GET", 200, "team-a"),
        ("r-3", "/models", "GET", 401, None)]
    for entry in lines:
        assert entry["level"] == "INFO" and entry["duration_ms"] >= 0 and entry["time"].endswith("Z")
    service_lines = [line for line in captured.getvalue().splitlines() if '"logger": "httpx' not in line]
    assert service_lines and not any("secret=query" in line or KEY in line for line in service_lines)


def test_an_unhandled_error_is_logged_once_as_json_with_its_request_id(state: AppState, captured: io.StringIO,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(state.directory, "live", broken)
    with TestClient(create_app(state=state), raise_server_exceptions=False) as client:
        reply = client.get("/models", headers={"X-Request-ID": "crash-1"})
    assert reply.status_code == 500 and reply.headers["X-Request-ID"] == "crash-1"
    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["request_id"] == "crash-1" and "RuntimeError: boom" in errors[0]["exception"]
    assert [e["status"] for e in entries if e["message"] == "request"] == [500]


def test_log_lines_escape_control_characters_and_carry_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("worker", fmt="json", level="INFO")
        with log_context(job_id="j-1", request_id="r-9", tenant="team-a"):
            logging.getLogger("workers.tasks").warning("forged\n{\"level\": \"ERROR\"}")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["message"] == "forged\n{\"level\": \"ERROR\"}" and entry["level"] == "WARNING"
    assert (entry["process"], entry["job_id"], entry["request_id"], entry["tenant"]) == ("worker", "j-1", "r-9",
                                                                                         "team-a")

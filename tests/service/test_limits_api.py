"""Per-tenant limits over HTTP: the request rate (shared by API processes) and the cap on active jobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis as AsyncRedis

from jobs.store import JobStore
from schemas.jobs import JobStatus
from service.main import create_app
from service.rate_limit import RateLimiter
from service.state import AppState
from tests.fakes import app_state, beat, fake_clients, tiny_registry, tiny_settings
from tests.integration.harness import free_port
from tests.service.test_api import assert_problem

KEYS = "key-of-team-a-0001:team-a,key-of-team-b-0002:team-b"
A, B = {"X-API-Key": "key-of-team-a-0001"}, {"X-API-Key": "key-of-team-b-0002"}
SCORE = {"texts": ["The capital of France is Paris."]}


def keyed_state(tmp_path: Path, clients: Any = None, **overrides: Any) -> AppState:
    settings = tiny_settings(tmp_path, api_keys=KEYS, **overrides)
    state = app_state(settings, tiny_registry(), *(clients or fake_clients()))
    beat(state.directory)
    return state


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[tuple[TestClient, AppState]]:
    state = keyed_state(tmp_path, max_active_jobs_per_tenant=2, rate_limit_per_second=0)
    with TestClient(create_app(state=state)) as client:
        yield client, state


# --- request rate ---------------------------------------------------------------------------------


def test_a_tenant_over_its_burst_gets_429_with_retry_after_and_other_tenants_do_not(tmp_path: Path) -> None:
    state = keyed_state(tmp_path, rate_limit_per_second=0.5, rate_limit_burst=3)
    with TestClient(create_app(state=state)) as client:
        statuses = [client.get("/models", headers=A).status_code for _ in range(3)]
        refused = client.get("/models", headers=A)
        other = client.get("/models", headers=B)
        health = [client.get("/healthz").status_code for _ in range(5)]
    assert statuses == [200, 200, 200] and other.status_code == 200 and health == [200] * 5
    problem = assert_problem(refused, 429)
    assert "team-a" in problem["detail"]
    # One token comes back every 2 s at 0.5/s: the client is told to wait that long, not less.
    assert refused.headers["Retry-After"] == "2"


def test_the_bucket_refills_at_the_configured_rate(tmp_path: Path) -> None:
    state = keyed_state(tmp_path, rate_limit_per_second=20, rate_limit_burst=1)
    with TestClient(create_app(state=state)) as client:
        assert client.get("/models", headers=A).status_code == 200
        refused = client.get("/models", headers=A)
        time.sleep(0.1)  # two tokens' worth at 20/s
        again = client.get("/models", headers=A)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert again.status_code == 200


def test_two_api_processes_share_one_bucket_per_tenant(tmp_path: Path) -> None:
    clients = fake_clients()  # one Redis, two APIs
    first = keyed_state(tmp_path, clients, rate_limit_per_second=0.1, rate_limit_burst=4)
    second = keyed_state(tmp_path, clients, rate_limit_per_second=0.1, rate_limit_burst=4)
    with TestClient(create_app(state=first)) as one, TestClient(create_app(state=second)) as two:
        statuses = [c.get("/models", headers=A).status_code for c in (one, two, one, two, one, two)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_without_keys_there_is_no_rate_limit(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path, rate_limit_per_second=0.1, rate_limit_burst=1), tiny_registry(),
                      *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as client:
        assert [client.get("/models").status_code for _ in range(10)] == [200] * 10


def test_the_rate_limit_lets_requests_through_when_redis_is_away() -> None:
    dead = AsyncRedis(host="127.0.0.1", port=free_port(), decode_responses=True, socket_connect_timeout=0.2)
    limiter = RateLimiter(dead, rate=1.0, burst=1)
    assert asyncio.run(limiter.take("team-a")) == 0.0


# --- active jobs ----------------------------------------------------------------------------------


def test_a_tenant_at_its_job_cap_gets_429_and_other_tenants_do_not(capped: tuple[TestClient, AppState]) -> None:
    client, state = capped
    accepted = [client.post("/score", headers=A, json=SCORE) for _ in range(2)]
    refused = client.post("/score", headers=A, json=SCORE)
    assert [r.status_code for r in accepted] == [202, 202]
    problem = assert_problem(refused, 429)
    assert (problem["active"], problem["limit"]) == (2, 2) and int(refused.headers["Retry-After"]) >= 1
    assert client.post("/score", headers=B, json=SCORE).status_code == 202
    # Nothing was queued for the refused request.
    assert state.redis.hget("interp:stats:jobs", "submitted") == "3"


def test_ending_or_canceling_a_job_frees_its_slot(capped: tuple[TestClient, AppState]) -> None:
    client, state = capped
    first, second = (client.post("/score", headers=A, json=SCORE).json()["id"] for _ in range(2))
    assert client.post("/score", headers=A, json=SCORE).status_code == 429
    store: JobStore = state.store
    assert store.claim(first, "worker-1") and store.finish(first, JobStatus.succeeded, result={})
    assert client.post("/score", headers=A, json=SCORE).status_code == 202  # a running job counts, an ended one not
    assert client.post("/score", headers=A, json=SCORE).status_code == 429
    assert client.post(f"/jobs/{second}/cancel", headers=A).json()["status"] == "canceled"
    assert client.post("/score", headers=A, json=SCORE).status_code == 202


def test_a_replayed_idempotent_request_is_answered_even_at_the_cap(capped: tuple[TestClient, AppState]) -> None:
    client, _ = capped
    first = client.post("/score", headers={**A, "Idempotency-Key": "retry-me"}, json=SCORE)
    client.post("/score", headers=A, json=SCORE)
    replay = client.post("/score", headers={**A, "Idempotency-Key": "retry-me"}, json=SCORE)
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_without_keys_there_is_no_job_cap(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path, max_active_jobs_per_tenant=1), tiny_registry(), *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as client:
        assert [client.post("/score", json=SCORE).status_code for _ in range(3)] == [202] * 3

"""`POST /attribute` over HTTP: a job, or a 4xx naming the field before any work is queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.state import AppState
from tests.fakes import app_state, beat, fake_clients, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    state: AppState = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def test_an_attribution_is_accepted_as_a_job(client: TestClient) -> None:
    reply = client.post("/attribute", json={"prompt": "The capital of France is"})
    assert reply.status_code == 202, reply.text
    assert reply.json()["kind"] == "attribute" and reply.json()["status"] == "queued"
    assert reply.headers["location"].startswith("/jobs/")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"prompt": "The capital", "baseline": "zero"}, 422, "baseline"),  # RMSNorm: NaN, refused with why
        ({"prompt": "The capital", "baseline": "mask"}, 422, "baseline"),  # no mask token
        ({"prompt": "The capital", "target": {"kind": "next_token", "token": "two words"}}, 422, "target.token"),
        ({"prompt": "The capital", "target": {"kind": "generate", "n_tokens": 0}}, 422, "target.generate.n_tokens"),
        ({"prompt": "The capital", "method": "lime"}, 422, "method"),
        ({"prompt": "The capital", "rule": "simpson"}, 422, "rule"),
        ({"prompt": "word " * 2000}, 422, "prompt"),
        ({"prompt": "The capital", "model": "nope"}, 404, "model"),
        ({}, 422, "body"),
    ],
)
def test_bad_attribution_requests_get_a_problem_naming_the_field(
    client: TestClient, body: dict[str, Any], status: int, field: str
) -> None:
    problem = assert_problem(client.post("/attribute", json=body), status, field)
    if field == "baseline" and body["baseline"] == "zero":
        assert "RMSNorm" in problem["detail"]

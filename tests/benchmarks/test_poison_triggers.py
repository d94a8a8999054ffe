"""The load benchmark's poison requests are what they claim: each one gets a 4xx, and its table says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from benchmarks.poison import TRIGGERS, PoisonStats, report_rows
from service.main import create_app
from tests.fakes import app_state, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    state = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(state.directory)
    return TestClient(create_app(state=state), raise_server_exceptions=False)


def test_every_trigger_gets_a_422_of_its_own(client: TestClient) -> None:
    lm = tiny_lm()
    with client:
        for name, trigger in TRIGGERS.items():
            body = {"prompt": "Hi there", "max_new_tokens": 8, "temperature": 1.0,
                    **trigger(lm.hidden_size, lm.n_layers)}
            reply = client.post("/generate", json=body)
            assert reply.status_code == 422, (name, reply.text)


def test_the_table_passes_only_when_every_poison_request_got_a_4xx() -> None:
    stats = PoisonStats(measured_from=0.0)
    assert not stats.all_refused()  # nothing sent proves nothing
    stats.statuses["seed 2**64"].update({"422": 3})
    assert stats.all_refused()
    assert "| seed 2**64 | 3 | 422 x3 | yes |" in report_rows(stats, 1.0)
    stats.statuses["temperature 1e-45"].update({"500": 1, "ReadError": 1})
    assert not stats.all_refused()
    assert "| temperature 1e-45 | 2 | 500 x1, ReadError x1 | NO |" in report_rows(stats, 1.0)

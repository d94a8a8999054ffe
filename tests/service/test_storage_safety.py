"""Safe storage over HTTP: names that could leave a store are 422s naming the field, and a stored
file with one flipped byte is reported as a 409 problem, never served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from config.settings import DEFAULT_TENANT
from engine.components import AffineEraser
from jobs.record import JobRecord
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, run_enqueued, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem
from tests.service.test_erase_api import EXAMPLES

BAD_NAMES = ["../x", "..", "a/b", "a\\b", "a\x00b", "a\nb", ".hidden", "-x", "x" * 65, "", "a b", "é"]
HONEST = ["I will answer honestly:", "Let me be truthful:"]
DISHONEST = ["I will make something up:", "Let me say what sounds good:"]


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path / "data", api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def flip_a_manifest_digit(path: Path) -> None:
    """Change one digit of a stored number: still valid JSON, no longer what was written."""
    text = path.read_text()
    at = next(i for i, c in enumerate(text) if c.isdigit() and text[i - 1] == " ")
    path.write_text(text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:])


def eraser() -> AffineEraser:
    hidden = tiny_lm().hidden_size
    g = torch.Generator().manual_seed(3)
    return AffineEraser(1, torch.randn(hidden, 2, generator=g), torch.randn(2, hidden, generator=g),
                        torch.zeros(hidden))


# --- names ----------------------------------------------------------------------------------------


def name_requests(bad: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, field) for every place a client names something stored."""
    pair = {"positive": HONEST, "negative": DISHONEST, "layers": [1]}
    return [
        ("post", "/steering/vectors", {"name": bad, **pair}, "name"),
        ("post", "/erase", {"name": bad, "examples": EXAMPLES, "layers": [1]}, "name"),
        ("post", "/erase", {"name": "ok", "variant": bad, "examples": EXAMPLES, "layers": [1]}, "variant"),
        ("post", "/score", {"texts": ["hi"], "variant": bad}, "variant"),
        ("post", "/attribute", {"prompt": "hi", "variant": bad}, "variant"),
        ("post", "/generate", {"prompt": "hi", "variant": bad}, "variant"),
        ("post", "/generate", {"prompt": "hi", "steering": [{"vector": bad}]}, "steering.0.vector"),
        ("post", "/logit-lens", {"prompt": "hi", "variant": bad}, "variant"),
        ("post", "/score", {"texts": ["hi"], "model": bad}, "model"),
        ("get", "/steering/vectors", {"model": bad}, "model"),
    ]


@pytest.mark.parametrize("bad", [b for b in BAD_NAMES if b])  # "" is "the default" where a name is optional
def test_a_name_that_is_not_a_plain_path_component_is_a_422_naming_the_field(
    client: TestClient, state: AppState, bad: str
) -> None:
    before = files_under(state.settings.data_dir)
    for method, path, body, field in name_requests(bad):
        reply = client.get(path, params=body) if method == "get" else client.post(path, json=body)
        assert_problem(reply, 422, field)
    assert files_under(state.settings.data_dir) == before  # nothing was written anywhere


@pytest.mark.parametrize("bad", ["%2E%2E", "a%00b", "x" * 65, ".hidden", "a%0Ab", "a@0", "a@01", "a@1@2"])
def test_a_bad_reference_in_a_path_is_a_422_naming_it(client: TestClient, bad: str) -> None:
    for path in (f"/steering/vectors/{bad}", f"/models/{TINY_MODEL}/variants/{bad}"):
        assert_problem(client.get(path), 422, "ref")
        assert_problem(client.delete(path), 422, "ref")
    assert_problem(client.get(f"/models/{bad}/variants"), 422, "model")


@pytest.mark.parametrize("path", ["/steering/vectors/..%2F..%2Fetc", "/steering/vectors/../../x",
                                  f"/models/{TINY_MODEL}/variants/a%2Fb", "/models/..%2Fx/variants"])
def test_a_separator_inside_a_path_parameter_matches_no_route(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 404)  # routing stops it: no store is ever asked


def test_an_empty_name_is_refused_where_a_name_is_required(client: TestClient) -> None:
    assert_problem(client.post("/steering/vectors", json={"name": "", "positive": HONEST, "negative": DISHONEST}),
                   422, "name")


# --- corrupt files --------------------------------------------------------------------------------


def stored_vector(client: TestClient, state: AppState) -> Path:
    made = client.post("/steering/vectors", json={"name": "honesty", "positive": HONEST, "negative": DISHONEST,
                                                  "layers": [1]})
    assert made.status_code == 201, made.text
    return state.settings.vector_store_for(DEFAULT_TENANT) / TINY_MODEL / "honesty" / "1"


def test_a_vector_with_a_flipped_byte_is_a_409_wherever_it_is_asked_for(client: TestClient,
                                                                        state: AppState) -> None:
    flip_last_byte(stored_vector(client, state) / "vector.safetensors")
    problem = assert_problem(client.get("/steering/vectors/honesty"), 409, "ref")
    assert problem["title"] == "Corrupt vector" and "sha256" in problem["detail"]
    steered = {"prompt": "hi", "max_new_tokens": 2, "steering": [{"vector": "honesty@1"}]}
    assert_problem(client.post("/generate", json=steered), 409, "steering.0.vector")
    assert client.delete("/steering/vectors/honesty").json()["versions"] == [1]  # it can still be removed


def test_a_vector_whose_manifest_was_altered_is_a_409_and_is_not_listed(client: TestClient, state: AppState) -> None:
    flip_a_manifest_digit(stored_vector(client, state) / "manifest.json")
    assert client.get("/steering/vectors").json()["vectors"] == []
    assert assert_problem(client.get("/steering/vectors/honesty@1"), 409, "ref")["title"] == "Corrupt vector"


@pytest.mark.parametrize("damage", ["components", "manifest"])
def test_a_variant_with_a_flipped_byte_is_a_409_and_no_job_is_queued_on_it(client: TestClient, state: AppState,
                                                                           damage: str) -> None:
    stored = state.stores(DEFAULT_TENANT).variants.save(TINY_MODEL, "v", [eraser()], method="leace", hidden_size=32)
    version_dir = state.settings.variant_store / TINY_MODEL / "v" / str(stored.version)
    if damage == "components":
        flip_last_byte(version_dir / "components.safetensors")
    else:
        flip_a_manifest_digit(version_dir / "manifest.json")
    for reply, field in [(client.get(f"/models/{TINY_MODEL}/variants/v"), "ref"),
                         (client.post("/generate", json={"prompt": "hi", "variant": "v"}), "variant"),
                         (client.post("/logit-lens", json={"prompt": "hi", "variant": "v@1"}), "variant"),
                         (client.post("/score", json={"texts": ["hi"], "variant": "v"}), "variant"),
                         (client.post("/attribute", json={"prompt": "hi", "variant": "v"}), "variant")]:
        problem = assert_problem(reply, 409, field)
        assert problem["title"] == "Corrupt variant" and "not served" in problem["detail"]
    assert state.redis.hget("interp:stats:jobs", "submitted") is None


def test_a_variant_damaged_after_its_job_was_queued_fails_the_job_with_a_409(client: TestClient,
                                                                              state: AppState) -> None:
    state.stores(DEFAULT_TENANT).variants.save(TINY_MODEL, "v", [eraser()], method="leace", hidden_size=32)
    job = client.post("/score", json={"texts": ["hi"], "variant": "v"}).json()
    flip_last_byte(state.settings.variant_store / TINY_MODEL / "v" / "1" / "components.safetensors")
    run_enqueued(state, job["id"])
    record: JobRecord | None = state.store.get(job["id"])
    assert record is not None and record.status.value == "failed"
    # The same problem as at submission (one rule, one answer): 409, titled for the kind, naming the field.
    assert record.error is not None
    assert (record.error["status"], record.error["title"], record.error["field"]) == (409, "Corrupt variant", "variant")
    assert "sha256" in record.error["detail"]

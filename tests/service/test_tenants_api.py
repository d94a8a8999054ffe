"""API keys and tenants over HTTP: 401s, each tenant sees only its own variants, vectors and jobs."""

from __future__ import annotations

import hmac
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from config.logs import JsonFormatter
from config.settings import DEFAULT_TENANT
from engine.components import AffineEraser
from service.auth import KeyRing
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, run_enqueued, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem

KEY_A, KEY_B = "key-of-team-a-0001", "key-of-team-b-0002"
A, B = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
HONEST = ["I will answer honestly:", "Let me be truthful:"]
DISHONEST = ["I will make something up:", "Let me say what sounds good:"]


def keyed_state(tmp_path: Path, **overrides: Any) -> AppState:
    settings = tiny_settings(tmp_path, api_load_models=True, api_keys=f"{KEY_A}:team-a,{KEY_B}:team-b", **overrides)
    state = app_state(settings, tiny_registry(), *fake_clients())
    beat(state.directory)
    return state


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    return keyed_state(tmp_path)


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def eraser(seed: int) -> AffineEraser:
    g = torch.Generator().manual_seed(seed)
    hidden = tiny_lm().hidden_size
    return AffineEraser(1, torch.randn(hidden, 2, generator=g), torch.randn(2, hidden, generator=g),
                        torch.zeros(hidden))


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY_A + "x"},
                                     {"X-API-Key": KEY_A[:-1]}])
@pytest.mark.parametrize(("method", "path"), [("get", "/models"), ("get", "/steering/vectors"),
                                              ("get", f"/jobs/{'a' * 32}"), ("post", "/score"),
                                              ("get", "/metrics"), ("delete", f"/models/{TINY_MODEL}/variants/x")])
def test_without_a_valid_key_every_endpoint_but_health_is_a_401_with_www_authenticate(
    client: TestClient, headers: dict[str, str], method: str, path: str
) -> None:
    kwargs: dict[str, Any] = {"json": {"texts": ["hi"]}} if method == "post" else {}
    reply = getattr(client, method)(path, headers=headers, **kwargs)
    assert_problem(reply, 401, "X-API-Key")
    assert reply.headers["WWW-Authenticate"].startswith("ApiKey ")
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_the_key_ring_compares_every_key_whatever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {f"key-number-{i}": f"t{i % 3}" for i in range(7)}
    ring = KeyRing(keys)
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(len(a))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for given, tenant in [("key-number-0", "t0"), ("key-number-6", "t0"), ("key-number-4", "t1"), ("nope", None),
                          ("key-number-0-and-more", None), ("", None), (None, None)]:
        calls.clear()
        assert ring.tenant_for(given) == tenant
        # No early exit, and every comparison is of equal-length digests: no timing says which or how much.
        assert calls == [32] * len(keys)
    assert KeyRing({}).tenant_for(None) == DEFAULT_TENANT


@pytest.mark.parametrize("spelling", [
    "k-one-111:alpha, k-two-222:beta,k-three-33",
    '{"k-one-111": "alpha", "k-two-222": "beta", "k-three-33": "default"}',
])
def test_keys_are_configured_as_key_tenant_pairs_or_json(spelling: str, tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, api_keys=spelling)
    assert settings.api_keys == {"k-one-111": "alpha", "k-two-222": "beta", "k-three-33": DEFAULT_TENANT}
    assert tiny_settings(tmp_path, api_keys='["k-one-111", "k-two-222"]').api_keys == {
        "k-one-111": DEFAULT_TENANT, "k-two-222": DEFAULT_TENANT}
    assert "k-one-111" not in repr(settings) and "k-one-111" not in str(settings)


def test_a_keys_file_groups_keys_by_tenant_and_merges_with_the_inline_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"alpha": ["file-key-1", "file-key-2"], "beta": ["file-key-3"]}))
    settings = tiny_settings(tmp_path, api_keys="inline-key:gamma", api_keys_file=path)
    assert settings.api_keys == {"inline-key": "gamma", "file-key-1": "alpha", "file-key-2": "alpha",
                                 "file-key-3": "beta"}


@pytest.mark.parametrize("spelling", ["secret-key-1:alpha,secret-key-1:beta", "secret-key-1:../up",
                                      "secret-key-1:", "secret key:alpha", '{"secret-key-1": "a/b"}'])
def test_bad_key_configurations_are_refused_without_echoing_the_key(spelling: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as raised:
        tiny_settings(tmp_path, api_keys=spelling)
    assert "secret-key-1" not in str(raised.value) and "secret key" not in str(raised.value)


# --- tenants --------------------------------------------------------------------------------------


def test_a_vector_is_seen_used_and_deleted_only_by_the_tenant_that_made_it(client: TestClient) -> None:
    made = client.post("/steering/vectors", headers=A, json={"name": "honesty", "positive": HONEST,
                                                              "negative": DISHONEST, "layers": [1]})
    assert made.status_code == 201, made.text
    assert [v["ref"] for v in client.get("/steering/vectors", headers=A).json()["vectors"]] == ["honesty@1"]
    assert client.get("/steering/vectors", headers=B).json()["vectors"] == []
    # Exactly the 404 of a name that does not exist.
    theirs = assert_problem(client.get("/steering/vectors/honesty", headers=B), 404, "ref")
    missing = assert_problem(client.get("/steering/vectors/nothing", headers=B), 404, "ref")
    assert theirs["title"] == missing["title"] and theirs["type"] == missing["type"]
    steered = {"prompt": "The capital", "max_new_tokens": 2, "steering": [{"vector": "honesty", "alpha": 4.0}]}
    assert client.post("/generate", headers=A, json=steered).status_code == 200
    assert_problem(client.post("/generate", headers=B, json=steered), 404, "steering.0.vector")
    assert_problem(client.delete("/steering/vectors/honesty", headers=B), 404, "ref")
    # B may use the same name: its own version 1, not A's.
    again = client.post("/steering/vectors", headers=B, json={"name": "honesty", "positive": DISHONEST,
                                                               "negative": HONEST, "layers": [1]})
    assert again.json()["ref"] == "honesty@1" and again.json()["sha256"] != made.json()["sha256"]
    assert client.delete("/steering/vectors/honesty", headers=A).json()["versions"] == [1]
    assert client.get("/steering/vectors/honesty", headers=B).status_code == 200


def test_a_variant_is_listed_shown_served_and_deleted_only_for_its_tenant(client: TestClient,
                                                                          state: AppState) -> None:
    state.stores("team-a").variants.save(TINY_MODEL, "mine", [eraser(1)], method="leace", hidden_size=32)
    listed = client.get(f"/models/{TINY_MODEL}/variants", headers=A).json()["variants"]
    assert [v["ref"] for v in listed] == ["mine@1"]
    assert client.get(f"/models/{TINY_MODEL}/variants", headers=B).json()["variants"] == []
    models = {m["name"]: m for m in client.get("/models", headers=B).json()["models"]}
    assert TINY_MODEL in models and models[TINY_MODEL]["variants"] == []  # base models are everyone's
    assert [v["ref"] for v in client.get("/models", headers=A).json()["models"][0]["variants"]] == ["mine@1"]
    assert client.get(f"/models/{TINY_MODEL}/variants/mine", headers=A).status_code == 200
    assert_problem(client.get(f"/models/{TINY_MODEL}/variants/mine", headers=B), 404, "ref")
    body = {"prompt": "The capital", "max_new_tokens": 2, "variant": "mine"}
    assert client.post("/generate", headers=A, json=body).json()["variant"] == "mine@1"
    assert_problem(client.post("/generate", headers=B, json=body), 404, "variant")
    assert_problem(client.post("/logit-lens", headers=B, json={"prompt": "The capital", "variant": "mine"}), 404,
                   "variant")
    assert_problem(client.post("/score", headers=B, json={"texts": ["hi"], "variant": "mine"}), 404, "variant")
    assert_problem(client.delete(f"/models/{TINY_MODEL}/variants/mine", headers=B), 404, "ref")
    assert client.delete(f"/models/{TINY_MODEL}/variants/mine", headers=A).json()["versions"] == [1]


def test_another_tenants_job_is_a_404_to_read_view_and_cancel(client: TestClient, state: AppState) -> None:
    job = client.post("/score", headers=A, json={"texts": ["The capital of France is Paris."]}).json()
    record = state.store.get(job["id"])
    assert record is not None and record.tenant == "team-a"
    path = f"/jobs/{job['id']}"
    for reply in (client.get(path, headers=B), client.get(f"{path}?wait=1", headers=B),
                  client.post(f"{path}/cancel", headers=B), client.get(f"{path}/view", headers=B)):
        problem = assert_problem(reply, 404, "job_id")
        assert problem["title"] == "Unknown job"
    assert client.get(f"/jobs/{job['id']}", headers=A).json()["status"] == "queued"
    assert client.post(f"/jobs/{job['id']}/cancel", headers=A).json()["status"] == "canceled"


def test_a_job_carries_its_tenant_to_the_worker_which_stores_the_result_in_that_tenants_store(
    client: TestClient, state: AppState
) -> None:
    pairs = [{"positive": f"{h} {i}", "negative": f"{d} {i}"} for i in range(20) for h, d in zip(HONEST, DISHONEST,
                                                                                                  strict=True)]
    reply = client.post("/steering/vectors", headers=B, json={"name": "big", "pairs": pairs, "layers": [1]})
    assert reply.status_code == 202, reply.text  # 80 prompts: a job, run here as the worker would
    run_enqueued(state, reply.json()["id"])
    assert client.get(f"/jobs/{reply.json()['id']}", headers=B).json()["status"] == "succeeded"
    assert [v["ref"] for v in client.get("/steering/vectors", headers=B).json()["vectors"]] == ["big@1"]
    assert client.get("/steering/vectors", headers=A).json()["vectors"] == []
    assert state.stores("team-b").vectors.load(TINY_MODEL, "big@1").version == 1
    assert state.stores(DEFAULT_TENANT).vectors.list(TINY_MODEL) == []


def test_idempotency_keys_belong_to_a_tenant(client: TestClient) -> None:
    first = client.post("/score", headers={**A, "Idempotency-Key": "same"}, json={"texts": ["one"]})
    other = client.post("/score", headers={**B, "Idempotency-Key": "same"}, json={"texts": ["two"]})
    replay = client.post("/score", headers={**A, "Idempotency-Key": "same"}, json={"texts": ["one"]})
    assert (first.status_code, other.status_code, replay.status_code) == (202, 202, 202)
    assert other.json()["id"] != first.json()["id"] == replay.json()["id"]


def test_without_keys_everything_is_the_default_tenant_in_the_stores_old_layout(tmp_path: Path) -> None:
    state = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(state.directory)
    state.stores(DEFAULT_TENANT).variants.save(TINY_MODEL, "old", [eraser(2)], method="leace", hidden_size=32)
    assert (state.settings.variant_store / TINY_MODEL / "old" / "1").is_dir()  # where it always was
    with TestClient(create_app(state=state)) as client:
        assert [v["ref"] for v in client.get(f"/models/{TINY_MODEL}/variants").json()["variants"]] == ["old@1"]
        job = client.post("/score", json={"texts": ["hi"], "variant": "old"}).json()
        assert state.store.get(job["id"]).tenant == DEFAULT_TENANT  # type: ignore[union-attr]


def test_the_key_never_reaches_a_log_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        state = keyed_state(tmp_path)
        with TestClient(create_app(state=state)) as client:
            client.get("/models", headers=A)
            client.get("/models", headers={"X-API-Key": KEY_B + "-wrong"})
            client.post("/score", headers=A, json={"texts": ["hi"]})
            client.post("/score", headers=B, json={"texts": [""]})  # a 422
            client.get("/steering/vectors/nothing", headers=A)  # a 404
            client.get("/metrics", headers=B)
            client.get("/nowhere", headers=A)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    access = [line for line in lines if line["message"] == "request"]
    assert len(access) == 7 and {line.get("tenant") for line in access} == {"team-a", "team-b", None}
    assert KEY_A not in text and KEY_B not in text and "key-of-team" not in text

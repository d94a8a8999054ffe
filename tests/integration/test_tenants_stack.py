"""Tenants, safe storage and observability on the real stack: launcher, embedded Redis, worker process,
default model, HTTP, with API keys configured.

A worker job made by one tenant stores its vector in that tenant's store (the other tenant cannot see
it or the job); a corrupted stored file is a 409; /metrics reports the worker from its heartbeat; the
API's and the worker's log lines are JSON with the request id, and no key is ever in them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import LoggedProcess, base_env, free_port, python_module, wait_ready

pytestmark = pytest.mark.integration

MODEL = "smollm2-135m"
KEY_A, KEY_B = "it-key-team-a-7f3e9c", "it-key-team-b-1d8a42"
A, B = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
PAIRS = [{"positive": f"I always tell the truth about {topic}.", "negative": f"I always lie about {topic}."}
         for topic in ("cats", "dogs", "rain", "maths", "money", "work", "food", "music", "books", "films",
                       "trains", "trees", "rivers", "cities", "games", "tea", "sport", "art", "code", "time")]


class Stack:
    def __init__(self, launcher: LoggedProcess, base_url: str, data_dir: Path) -> None:
        self.launcher, self.base_url, self.data_dir = launcher, base_url, data_dir

    def get(self, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", headers=headers, timeout=40, **kwargs)

    def post(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.base_url}{path}", headers=headers, json=body, timeout=60)

    def wait(self, location: str, headers: dict[str, str], seconds: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            job: dict[str, Any] = self.get(location, headers, params={"wait": 10}).json()
            if job["status"] in ("succeeded", "failed", "canceled") or time.monotonic() > deadline:
                return job


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("tenant-stack")
    port = free_port()
    env = base_env(data_dir, INTERP_PORT=str(port), INTERP_API_KEYS=f"{KEY_A}:team-a,{KEY_B}:team-b",
                   INTERP_RATE_LIMIT_PER_SECOND="50", INTERP_MAX_ACTIVE_JOBS_PER_TENANT="4")
    launcher = python_module("launcher", env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, 300, launcher)
        launcher.wait_for_line(r"ready at", 30)
        yield Stack(launcher, base_url, data_dir)
    finally:
        launcher.stop()


def test_a_tenants_worker_job_stores_its_vector_where_only_that_tenant_sees_it(stack: Stack) -> None:
    assert stack.get("/models", {}).status_code == 401
    reply = stack.post("/steering/vectors", {**A, "X-Request-ID": "it-extract-1"},
                       {"name": "honesty", "pairs": PAIRS, "layers": [10]})
    assert reply.status_code == 202, reply.text  # 40 prompts: a job on the worker process
    location = reply.headers["location"]
    assert stack.get(location, B).status_code == 404
    job = stack.wait(location, A)
    assert job["status"] == "succeeded", job
    assert job["request_id"] == "it-extract-1" and job["result"]["ref"] == "honesty@1"
    assert [v["ref"] for v in stack.get("/steering/vectors", A).json()["vectors"]] == ["honesty@1"]
    assert stack.get("/steering/vectors", B).json()["vectors"] == []
    assert stack.get("/steering/vectors/honesty", B).status_code == 404
    stored = stack.data_dir / "vectors" / "_tenants" / "team-a" / MODEL / "honesty" / "1"
    assert (stored / "vector.safetensors").is_file() and not (stack.data_dir / "vectors" / MODEL).exists()

    steered = {"prompt": "The capital of France is", "max_new_tokens": 3,
               "steering": [{"vector": "honesty", "alpha": 2.0}]}
    assert stack.post("/generate", A, steered).status_code == 200
    assert stack.post("/generate", B, steered).status_code == 404

    # One flipped byte: reported as a 409 problem, never used.
    data = bytearray((stored / "vector.safetensors").read_bytes())
    data[-1] ^= 0x01
    (stored / "vector.safetensors").write_bytes(bytes(data))
    corrupt = stack.post("/generate", A, steered)
    assert corrupt.status_code == 409 and corrupt.headers["content-type"] == "application/problem+json"
    assert corrupt.json()["field"] == "steering.0.vector"


def test_a_score_job_keeps_its_request_id_and_the_metrics_see_the_worker(stack: Stack) -> None:
    reply = stack.post("/score", {**B, "X-Request-ID": "it-score-1"}, {"texts": ["The capital of France is Paris."]})
    assert reply.status_code == 202 and reply.headers["x-request-id"] == "it-score-1"
    job = stack.wait(reply.headers["location"], B)
    assert job["status"] == "succeeded" and job["request_id"] == "it-score-1"
    assert stack.get(reply.headers["location"], A).status_code == 404

    assert stack.get("/metrics", {}).status_code == 401
    text = stack.get("/metrics", A).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("interp_workers", (("model", MODEL),))] == 1
    api_bytes = samples[("interp_model_parameter_bytes", (("model", MODEL),))]
    worker_bytes = [v for (name, labels), v in samples.items() if name == "interp_worker_model_parameter_bytes"]
    assert worker_bytes == [api_bytes] and api_bytes > 500e6  # 135M float32 parameters, in both processes
    assert samples[("interp_jobs_ended_total", (("status", "succeeded"),))] >= 2
    assert samples[("interp_queue_depth", (("model", MODEL),))] == 0
    polls = [v for (name, labels), v in samples.items() if name == "interp_http_request_duration_seconds_count"
             and dict(labels)["route"] == "/jobs/{job_id}"]
    assert sum(polls) >= 3


def test_the_logs_are_json_lines_with_request_ids_and_never_a_key(stack: Stack) -> None:
    lines = [json.loads(line) for line in stack.launcher.lines if line.startswith("{")]
    api = [e for e in lines if e.get("process") == "api" and e["message"] == "request"]
    scored = [e for e in api if e.get("request_id") == "it-score-1"]
    assert [(e["route"], e["status"], e["tenant"]) for e in scored][:1] == [("/score", 202, "team-b")]
    assert all(e["duration_ms"] >= 0 for e in scored)
    worker = [e for e in lines if e.get("process") == "worker"]
    assert worker, "the worker logs JSON too"
    output = stack.launcher.output
    assert KEY_A not in output and KEY_B not in output

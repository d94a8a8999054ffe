"""Faults survived: Redis going away under load, a worker killed mid-job and mid-write, restarts.

One deployment for the module, as docker-compose runs it: a private redis-server with its
append-only file (never the shared Redis on 6379), a worker process and the API process, each
started and stopped by the tests. ``INTERP_JOB_RETRIES=1``: a job whose worker is killed runs once
more (the launcher's stack, with the default 0, shows the other branch in `test_stack.py`).
Tests run in file order and leave the deployment healthy for the next.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from store.variants import VariantStore
from tests.integration.harness import LoggedProcess, base_env, free_port, python_module, start_redis, wait_ready

pytestmark = pytest.mark.integration

MODEL = "smollm2-135m"
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)
PEOPLE = {"male": ["He", "My brother", "The man"], "female": ["She", "My sister", "The woman"]}
EXAMPLES = [{"text": f"{person} works as a {job}.", "label": label}
            for job, (label, people) in itertools.product(["doctor", "nurse", "teacher", "pilot"], PEOPLE.items())
            for person in people]
TERMINAL = ("succeeded", "failed", "canceled")


@dataclass
class Deployment:
    base_url: str
    env: dict[str, str]
    data_dir: Path
    redis_port: int
    processes: dict[str, LoggedProcess] = field(default_factory=dict)

    @property
    def redis(self) -> Redis:
        return Redis(port=self.redis_port, decode_responses=True, socket_timeout=2)

    def start(self, name: str) -> None:
        if name == "redis":
            self.processes["redis"] = start_redis(self.redis_port, self.data_dir / "redis")
        else:
            self.processes[name] = python_module("workers" if name == "worker" else "service", self.env)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.processes[name].stop(sig)

    def kill_worker(self) -> None:
        process = self.processes["worker"].proc
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def alive(self, name: str) -> bool:
        return self.processes[name].proc.poll() is None


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("faults")
    redis_port, api_port = free_port(), free_port()
    env = base_env(data_dir, INTERP_PORT=str(api_port), INTERP_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                   INTERP_API_LOAD_MODELS="false", INTERP_REDIS_TIMEOUT_SECONDS="1", INTERP_JOB_RETRIES="1",
                   # One thread: torch's second thread only spins when other processes share the cores.
                   INTERP_TORCH_THREADS="1")
    found = Deployment(f"http://127.0.0.1:{api_port}", env, data_dir, redis_port)
    try:
        for name in ("redis", "worker", "api"):
            found.start(name)
        wait_ready(found.base_url, 120, found.processes["api"])
        yield found
    finally:
        for name in ("api", "worker", "redis"):
            if name in found.processes:
                found.processes[name].stop()


def post(deployment: Deployment, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{deployment.base_url}{path}", json=body, timeout=30)
    assert reply.status_code == 202, reply.text
    job: dict[str, Any] = reply.json()
    return job


def job(deployment: Deployment, job_id: str, wait: float = 0) -> dict[str, Any]:
    reply = httpx.get(f"{deployment.base_url}/jobs/{job_id}", params={"wait": wait}, timeout=wait + 10)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def until(deployment: Deployment, job_id: str, predicate: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = job(deployment, job_id)
    while not predicate(seen):
        assert time.monotonic() < deadline, f"job {job_id} never got there; last: {seen}"
        time.sleep(0.05)
        seen = job(deployment, job_id)
    return seen


def ended(deployment: Deployment, job_id: str, timeout: float = 300) -> dict[str, Any]:
    return until(deployment, job_id, lambda j: j["status"] in TERMINAL, timeout)


def wait_for_worker(deployment: Deployment, timeout: float = 120) -> None:
    wait_ready(deployment.base_url, timeout, deployment.processes["worker"])


def test_redis_down_is_503_with_retry_after_and_the_service_recovers(deployment: Deployment) -> None:
    base_url = deployment.base_url
    before = post(deployment, "/score", {"texts": ["Before the outage."]})
    assert job(deployment, before["id"], wait=30)["status"] == "succeeded"

    deployment.stop("redis")
    for method, path, body in [
        ("POST", "/score", {"texts": ["During the outage."]}),
        ("GET", f"/jobs/{before['id']}", None),
        ("GET", "/readyz", None),
    ]:
        reply = httpx.request(method, f"{base_url}{path}", json=body, timeout=10)
        assert reply.status_code == 503, (path, reply.text)
        assert int(reply.headers["retry-after"]) >= 1
    problem = httpx.get(f"{base_url}/jobs/{before['id']}", timeout=10)
    assert problem.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200  # alive, just not ready

    # Redis returns on the same port with its append-only file: jobs and workers come back.
    time.sleep(0.5)
    deployment.start("redis")
    wait_ready(base_url, 60)
    assert job(deployment, before["id"])["status"] == "succeeded"
    after = post(deployment, "/score", {"texts": ["After the outage."]})
    assert job(deployment, after["id"], wait=30)["status"] == "succeeded"


@dataclass
class Load:
    """Client threads submitting score jobs and polling them, recording every answer."""

    base_url: str
    accepted: list[str] = field(default_factory=list)
    answers: list[tuple[str, int, str | None, str]] = field(default_factory=list)  # path, status, Retry-After, type
    transport_errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, index: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as http:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                try:
                    reply = http.post("/score", json={"texts": [f"Client {index} sends text {n}."]})
                    self.answers.append(("POST /score", reply.status_code, reply.headers.get("retry-after"),
                                         reply.headers.get("content-type", "")))
                    if reply.status_code == 202:
                        self.accepted.append(reply.json()["id"])
                    if self.accepted:
                        polled = http.get(f"/jobs/{self.accepted[-1]}")
                        self.answers.append(("GET /jobs/{id}", polled.status_code, polled.headers.get("retry-after"),
                                             polled.headers.get("content-type", "")))
                except httpx.HTTPError as exc:
                    self.transport_errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.3)


def test_stopping_redis_for_ten_seconds_under_load_loses_no_accepted_job(deployment: Deployment) -> None:
    # A job that is running on the worker when Redis goes away, and must keep its result.
    running = post(deployment, "/score", {"texts": [LONG_TEXT] * 40, "batch_size": 1})
    until(deployment, running["id"], lambda j: j["status"] == "running" and j["progress"]["fraction"] > 0)
    load = Load(deployment.base_url)
    threads = [threading.Thread(target=load.client, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    accepted_before = len(load.accepted)
    assert job(deployment, running["id"])["status"] == "running"  # so it computes through the outage
    deployment.stop("redis")  # SIGTERM: Redis writes its append-only file out and exits
    outage_started = time.monotonic()
    time.sleep(10)
    deployment.start("redis")
    outage = time.monotonic() - outage_started
    time.sleep(6)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert outage >= 10 and accepted_before > 0
    assert not load.transport_errors, load.transport_errors[:5]  # the API never stopped answering
    statuses = {status for _, status, _, _ in load.answers}
    assert statuses <= {200, 202, 503}, sorted(statuses)
    refused = [a for a in load.answers if a[1] == 503]
    assert refused, "no request met the outage"
    assert all(retry is not None and int(retry) >= 1 and kind == "application/problem+json"
               for _, _, retry, kind in refused)
    assert len(load.accepted) > accepted_before  # accepted again after the outage, by itself
    assert all(deployment.alive(name) for name in ("api", "worker", "redis"))  # nothing crashed

    # Every job accepted before, during or after the outage ends, and succeeds: the running one
    # computed through the outage and recorded its result when Redis came back.
    for job_id in [running["id"], *load.accepted]:
        seen = ended(deployment, job_id)
        assert seen["status"] == "succeeded", seen
    assert len(job(deployment, running["id"])["result"]["texts"]) == 40


def test_a_killed_workers_job_is_run_again_by_the_next_worker(deployment: Deployment) -> None:
    long = post(deployment, "/score", {"texts": [LONG_TEXT] * 60, "batch_size": 1})
    until(deployment, long["id"], lambda j: j["status"] == "running" and j["progress"]["fraction"] > 0)
    waiting = post(deployment, "/score", {"texts": ["Queued behind it."]})
    deployment.kill_worker()

    # Never left `running`: within the heartbeat TTL it is queued again, ahead of the job behind it.
    requeued = until(deployment, long["id"], lambda j: j["status"] != "running", timeout=30)
    assert requeued["status"] == "queued" and "retry 1 of 1" in requeued["progress"]["stage"], requeued
    assert job(deployment, waiting["id"])["status"] == "queued"
    deployment.start("worker")
    assert ended(deployment, long["id"])["status"] == "succeeded"
    assert ended(deployment, waiting["id"])["status"] == "succeeded"


def variant_versions(deployment: Deployment, name: str) -> list[int]:
    reply = httpx.get(f"{deployment.base_url}/models/{MODEL}/variants", timeout=10)
    assert reply.status_code == 200, reply.text
    return [v["version"] for v in reply.json()["variants"] if v["name"] == name]


def test_a_worker_killed_while_storing_a_variant_leaves_only_complete_versions(deployment: Deployment) -> None:
    name_dir = deployment.data_dir / "variants" / MODEL / "no-gender"
    store = VariantStore(deployment.data_dir / "variants")
    body = {"name": "no-gender", "examples": EXAMPLES, "layers": [2], "reading": "last", "held_out": 0.5}
    redis = deployment.redis
    for _ in range(3):  # the fit is done and the write lasts milliseconds: try again if the kill came too late
        erase = post(deployment, "/erase", body)
        key = f"interp:job:{erase['id']}"
        while True:
            status, stage = redis.hmget(key, "status", "stage")
            writing = name_dir.is_dir() and any(p.name.startswith(".tmp-") for p in name_dir.iterdir())
            if writing or stage == "storing" or status in TERMINAL:
                break
        if status not in TERMINAL:
            deployment.kill_worker()  # the fit is done; the version is about to be, or being, written
            break
    else:
        pytest.fail(f"never caught the worker storing a variant; the last job: {job(deployment, erase['id'])}")

    # The dead writer's temporary directory stays, and is never a version; every version is whole.
    versions = [m["version"] for m in store.list(MODEL) if m["name"] == "no-gender"]
    assert variant_versions(deployment, "no-gender") == versions
    for version in versions:
        assert store.load(MODEL, f"no-gender@{version}").components
    entries = {p.name for p in name_dir.iterdir() if not p.name.startswith(".")} if name_dir.is_dir() else set()
    assert entries == {str(v) for v in versions}

    # The job is run again by the next worker and ends with a complete, servable version.
    deployment.start("worker")
    done = ended(deployment, erase["id"])
    assert done["status"] == "succeeded", done
    ref = done["result"]["variant"]["ref"]
    assert store.load(MODEL, ref).ref == ref
    assert variant_versions(deployment, "no-gender")[-1] == int(ref.split("@")[1])


def test_variants_vectors_and_results_survive_restarting_redis_the_api_and_the_worker(
    deployment: Deployment,
) -> None:
    honest = ["I will answer truthfully:", "Here is the accurate answer:", "Let me be factual:"]
    lying = ["I will make something up:", "Here is a convenient lie:", "Let me invent an answer:"]
    pairs = [{"positive": f"{h} ({i})", "negative": f"{d} ({i})"} for i in range(6) for h, d in zip(
        honest, lying, strict=True)]
    vector = post(deployment, "/steering/vectors", {"name": "honesty", "pairs": pairs, "layers": [10]})
    scored = post(deployment, "/score", {"texts": ["The capital of France is Paris."]})
    jobs_before = {j["id"]: ended(deployment, j["id"]) for j in (vector, scored)}
    assert all(j["status"] == "succeeded" for j in jobs_before.values()), jobs_before
    variants_before = httpx.get(f"{deployment.base_url}/models/{MODEL}/variants", timeout=10).json()
    vector_before = httpx.get(f"{deployment.base_url}/steering/vectors/honesty", timeout=10).json()
    assert variants_before["variants"] and vector_before["ref"] == "honesty@1"
    ttls = {job_id: deployment.redis.ttl(f"interp:job:{job_id}") for job_id in jobs_before}

    for name in ("api", "worker", "redis"):
        deployment.stop(name)
    for name in ("redis", "worker", "api"):
        deployment.start(name)
    wait_ready(deployment.base_url, 120, deployment.processes["api"])

    assert httpx.get(f"{deployment.base_url}/models/{MODEL}/variants", timeout=10).json() == variants_before
    assert httpx.get(f"{deployment.base_url}/steering/vectors/honesty", timeout=10).json() == vector_before
    for job_id, before in jobs_before.items():
        assert job(deployment, job_id) == before  # status, result, timestamps, expires_at
        # Still within its retention, which kept running while everything was down.
        assert 0 < deployment.redis.ttl(f"interp:job:{job_id}") <= ttls[job_id]
    # And the restarted stack works.
    again = post(deployment, "/score", {"texts": ["After the restarts."]})
    assert ended(deployment, again["id"])["status"] == "succeeded"

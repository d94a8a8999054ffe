"""Redis going away and coming back: a private redis-server, the real API and a real worker.

Never touches the shared Redis on 6379: this test starts and stops its own server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import (
    LoggedProcess,
    base_env,
    free_port,
    python_module,
    start_redis,
    wait_ready,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict]:
    redis_port, api_port = free_port(), free_port()
    env = base_env(tmp_path, INTERP_PORT=str(api_port), INTERP_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                   INTERP_API_LOAD_MODELS="false", INTERP_REDIS_TIMEOUT_SECONDS="1")
    processes: dict[str, LoggedProcess] = {"redis": start_redis(redis_port, tmp_path / "redis")}
    processes["worker"] = python_module("workers", env)
    processes["api"] = python_module("service", env)
    base_url = f"http://127.0.0.1:{api_port}"
    try:
        wait_ready(base_url, 120, processes["api"])
        yield {"base_url": base_url, "processes": processes, "redis_port": redis_port, "dir": tmp_path / "redis"}
    finally:
        for name in ("api", "worker", "redis"):
            processes[name].stop()


def test_redis_down_is_503_with_retry_after_and_the_service_recovers(deployment: dict) -> None:
    base_url = deployment["base_url"]
    before = httpx.post(f"{base_url}/score", json={"texts": ["Before the outage."]}, timeout=10).json()
    assert httpx.get(f"{base_url}/jobs/{before['id']}", params={"wait": 30}, timeout=40).json()["status"] == "succeeded"

    deployment["processes"]["redis"].stop()
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
    deployment["processes"]["redis"] = start_redis(deployment["redis_port"], deployment["dir"])
    wait_ready(base_url, 60)
    assert httpx.get(f"{base_url}/jobs/{before['id']}", timeout=10).json()["status"] == "succeeded"
    after = httpx.post(f"{base_url}/score", json={"texts": ["After the outage."]}, timeout=10)
    assert after.status_code == 202
    done = httpx.get(f"{base_url}/jobs/{after.json()['id']}", params={"wait": 30}, timeout=40).json()
    assert done["status"] == "succeeded"


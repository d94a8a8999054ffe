"""The real stack, started once for the integration tests the way README command 1 starts it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from tests.integration.harness import LoggedProcess, base_env, free_port, python_module, wait_ready


@dataclass
class RunningStack:
    launcher: LoggedProcess
    base_url: str
    redis: Redis
    data_dir: Path | None = None  # INTERP_DATA_DIR: the variant and vector stores live under it

    def worker_pids(self) -> dict[str, int]:
        """Live worker name -> pid, from the workers' own heartbeats."""
        import json

        pids = {}
        for key in self.redis.scan_iter("interp:worker:*"):
            payload = self.redis.get(key)
            if payload:
                info = json.loads(payload)
                pids[info["name"]] = int(info["pid"])
        return pids


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir: Path = tmp_path_factory.mktemp("stack-data")
    port = free_port()
    env = base_env(data_dir, INTERP_PORT=str(port))
    launcher = python_module("launcher", env)
    try:
        url = launcher.wait_for_line(r"embedded Redis at (redis://\S+)", 30).group(1)
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, 300, launcher)
        launcher.wait_for_line(r"ready at", 30)
        yield RunningStack(launcher=launcher, base_url=base_url, redis=Redis.from_url(url, decode_responses=True),
                           data_dir=data_dir)
    finally:
        launcher.stop()

"""One request can never hurt another, on the real stack: launcher, embedded Redis, the default model, HTTP
over keep-alive connections, two tenants.

A poison request of one tenant (every trigger the API lets through today) sent at the same moment as
eight ordinary requests of another: the eight get the tokens each gets alone, the poison one gets a
422 naming its field, nobody gets a 500, and every connection stays open for the next request.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import LoggedProcess, base_env, free_port, python_module, wait_ready

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "it-key-team-a-5c1e77", "it-key-team-b-93d0aa"
A, B = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
HIDDEN = 576  # smollm2-135m
SAMPLED = {"temperature": 1.0, "seed": 1}
POISONS: dict[str, tuple[dict[str, Any], str]] = {
    "values of 1e38 with alpha 1000": ({"steering": [{"values": [1e38] * HIDDEN, "layers": [10], "alpha": 1000.0}],
                                        **SAMPLED}, "steering.0.alpha"),
    "two finite vectors that overflow only together": (
        {"steering": [{"values": [2e38] * HIDDEN, "layers": [10]}] * 2, **SAMPLED}, "steering.0.values"),
    "a seed of 2**64": ({"seed": 2**64, "temperature": 1.0}, "seed"),
    "a temperature so small the distribution overflows": ({"temperature": 1e-45, "seed": 1}, "temperature"),
}
ORDINARY = [{"prompt": prompt, "max_new_tokens": 6, **({"temperature": 0.8, "seed": i} if i % 2 else {})}
            for i, prompt in enumerate(["The capital of France is", "Water boils at", "Roses are red,",
                                        "The quick brown fox", "One, two, three,", "In 1969, the first",
                                        "My favourite colour is", "The largest planet is"])]


class Connection:
    """One keep-alive HTTP/1.1 connection; it fails loudly if the server closed it (no silent reconnect)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.conn.connect()
        self.sock = self.conn.sock

    def post(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self.conn.sock is self.sock, "the server closed the connection"
        self.conn.request("POST", "/generate", body=json.dumps(body), headers={**headers,
                                                                                "Content-Type": "application/json"})
        reply = self.conn.getresponse()
        return reply.status, json.loads(reply.read())

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data_dir: Path = tmp_path_factory.mktemp("poison-stack")
    port = free_port()
    env = base_env(data_dir, INTERP_PORT=str(port), INTERP_API_KEYS=f"{KEY_A}:team-a,{KEY_B}:team-b",
                   INTERP_RATE_LIMIT_PER_SECOND="100")
    launcher: LoggedProcess = python_module("launcher", env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", 300, launcher)
        launcher.wait_for_line(r"ready at", 30)
        yield port
    finally:
        launcher.stop()


@pytest.fixture(scope="module")
def alone(port: int) -> list[list[int]]:
    """The tokens of each ordinary request sent on its own."""
    connection = Connection(port)
    try:
        replies = [connection.post(A, body) for body in ORDINARY]
    finally:
        connection.close()
    assert [status for status, _ in replies] == [200] * len(ORDINARY), replies
    return [[t["id"] for t in reply["tokens"]] for _, reply in replies]


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poison_request_beside_eight_of_another_tenant_fails_alone_and_no_connection_closes(
    port: int, alone: list[list[int]], poison: str
) -> None:
    body, field = POISONS[poison]
    connections = [Connection(port) for _ in range(len(ORDINARY) + 1)]
    try:
        sends = [(A, b) for b in ORDINARY] + [(B, {"prompt": "Hi there", **body})]
        with ThreadPoolExecutor(len(sends)) as pool:
            replies = list(pool.map(lambda c, s: c.post(*s), connections, sends))
        *ordinary, (status, problem) = replies
        assert [s for s, _ in ordinary] == [200] * len(ORDINARY), ordinary
        assert [[t["id"] for t in reply["tokens"]] for _, reply in ordinary] == alone
        assert status == 422 and problem["field"] == field, problem
        # Every connection, the poison one's included, serves the next request.
        again = [c.post(A, {"prompt": "Hello", "max_new_tokens": 1}) for c in connections]
        assert [s for s, _ in again] == [200] * len(connections)
    finally:
        for connection in connections:
            connection.close()

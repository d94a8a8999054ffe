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


Reply = tuple[int | str, dict[str, Any]]


def twice(port: int, headers: dict[str, str], body: dict[str, Any]) -> tuple[Reply, Reply]:
    """Send ``body``, then at once a small request on the same keep-alive connection (no silent reconnect).

    Returns:
        Both replies: (status, JSON); a closed connection is the status ``closed: <error>``.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    replies: list[Reply] = []
    try:
        for payload in (body, {"prompt": "Hello", "max_new_tokens": 1}):
            if replies and conn.sock is None:
                replies.append(("closed: the client saw the server close it", {}))
                break
            try:
                conn.request("POST", "/generate", body=json.dumps(payload),
                             headers={**headers, "Content-Type": "application/json"})
                reply = conn.getresponse()
                replies.append((reply.status, json.loads(reply.read())))
            except (ConnectionError, http.client.HTTPException) as exc:
                replies.append((f"closed: {type(exc).__name__}", {}))
                break
    finally:
        conn.close()
    return replies[0], replies[1] if len(replies) > 1 else ("not sent", {})


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
    replies = [twice(port, A, body)[0] for body in ORDINARY]
    assert [status for status, _ in replies] == [200] * len(ORDINARY), replies
    return [[t["id"] for t in reply["tokens"]] for _, reply in replies]


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poison_request_beside_eight_of_another_tenant_fails_alone_and_no_connection_closes(
    port: int, alone: list[list[int]], poison: str
) -> None:
    body, field = POISONS[poison]
    sends = [(A, b) for b in ORDINARY] + [(B, {"prompt": "Hi there", **body})]
    with ThreadPoolExecutor(len(sends)) as pool:
        replies = list(pool.map(lambda send: twice(port, *send), sends))
    *ordinary, ((status, problem), _) = replies
    assert [first[0] for first, _ in ordinary] == [200] * len(ORDINARY), ordinary
    assert [[t["id"] for t in first[1]["tokens"]] for first, _ in ordinary] == alone
    assert status == 422 and problem["field"] == field, problem
    # Every connection, the poison one's included, served the next request.
    assert [second[0] for _, second in replies] == [200] * len(replies)

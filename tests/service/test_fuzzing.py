"""The API against its own OpenAPI spec: schemathesis's every phase, in-process, over fake Redis.

Examples, coverage (boundary values, wrong types, unexpected methods), fuzzing and stateful
sequences (links schemathesis infers, e.g. a job's id from its 202 into `GET /jobs/{job_id}`) run
against the ASGI app with the tiny model resident and a fake worker registered, so every route
does its real work except running jobs. Every check is on except `positive_data_acceptance`:
much of the API's validation depends on the model (a layer beyond its depth, a text that must be
one token, a prompt longer than its limit), which no JSON schema can say, so a schema-valid body
may rightly get a 422. What must hold: no 5xx, no unhandled exception, every status, header,
content type and body documented, and invalid input refused.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from service.main import create_app
from tests.fakes import app_state, beat, fake_clients, tiny_registry, tiny_settings

PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Per operation and phase; each run takes about half a minute on two cores.
MAX_EXAMPLES = 40
KEY = "fuzz-k3y"


Answers = collections.Counter[tuple[str, str, int]]


def run_schemathesis(tmp_path: Path, *, keyed: bool) -> tuple[list[str], Answers, set[str], set[str]]:
    """Run every phase; return the failures, (phase, operation, status) counts, the phases run, the checks run.

    With ``keyed`` the deployment sets an API key (per-tenant limits off, or the run would measure
    them): schemathesis sends it, and also leaves it out to check the 401s.
    """
    keys = {KEY: "fuzz"} if keyed else {}
    settings = tiny_settings(
        tmp_path,
        max_wait_seconds=0.2,  # long-polls on queued jobs end quickly: nothing runs them here
        max_new_tokens=16,
        max_prompt_tokens=64,
        worker_heartbeat_ttl_seconds=3600,  # the registered fake worker outlives the run
        api_keys=keys, rate_limit_per_second=0, max_active_jobs_per_tenant=0,
    )
    state = app_state(settings, tiny_registry(), *fake_clients())
    beat(state.directory)
    config = SchemathesisConfig.from_dict({
        "workers": 1,
        **({"auth": {"openapi": {"ApiKey": {"api_key": KEY}}}} if keyed else {}),
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"max-steps": 20}},
        "checks": {"positive_data_acceptance": {"enabled": False}},
        "continue-on-failure": True,
        "suppress-health-check": ["all"],
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(state=state), config=config)
    failures: list[str] = []
    statuses: Answers = collections.Counter()
    finished: set[str] = set()
    checked: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseFinished):
            finished.add(event.phase.name.value)
        elif isinstance(event, events.ScenarioFinished):
            for case_id, interaction in event.recorder.interactions.items():
                if interaction.response is not None:
                    operation = event.recorder.cases[case_id].value.operation.label
                    statuses[(event.phase.value, operation, interaction.response.status_code)] += 1
            for checks in event.recorder.checks.values():
                checked.update(check.name for check in checks)
                failures.extend(describe(event.label, check.name, check.failure_info)
                                for check in checks if check.failure_info is not None)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"unhandled error: {event.info if hasattr(event, 'info') else event}")
    return failures, statuses, finished, checked


def describe(label: str | None, check: str, info: Any) -> str:
    return f"{label}: {check}: {info.failure.title}: {info.failure.message}\n{info.code_sample}"


@pytest.mark.parametrize("keyed", [False, True], ids=["without-keys", "with-a-key"])
def test_every_phase_runs_and_no_response_is_a_5xx_or_outside_the_spec(tmp_path: Path, keyed: bool) -> None:
    started = time.perf_counter()
    failures, statuses, finished, checked = run_schemathesis(tmp_path, keyed=keyed)
    seconds = time.perf_counter() - started
    unique = list(dict.fromkeys(failures))
    assert not unique, f"{len(unique)} distinct failures:\n\n" + "\n\n".join(unique[:20])
    assert set(PHASES) <= finished, finished
    for phase in PHASES:
        answered = {status for (p, _, status), n in statuses.items() if p == phase and n}
        assert any(200 <= s < 300 for s in answered), (phase, sorted(answered))  # real work, not only refusals
    # Stateful sequences really chain calls: a job id from a 202 read back and canceled.
    assert statuses[("stateful", "GET /jobs/{job_id}", 200)] > 0
    assert statuses[("stateful", "POST /jobs/{job_id}/cancel", 202)] > 0
    assert not any(status >= 500 for _, _, status in statuses), statuses
    # Every response was checked against the spec; with a key, also that leaving it out is refused.
    assert {"not_a_server_error", "status_code_conformance", "content_type_conformance",
            "response_schema_conformance", "negative_data_rejection"} <= checked, checked
    if keyed:
        assert "ignored_auth" in checked, checked
    assert seconds < 150, f"fuzzing took {seconds:.0f} s; lower MAX_EXAMPLES"


# What the fuzzer found, pinned: each was a 500, an undocumented answer or an invalid input accepted.


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    state = app_state(tiny_settings(tmp_path), tiny_registry(), *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def assert_problem(reply: Any, status: int, field: str | None = None) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json().get("field") == field


@pytest.mark.parametrize("body", [b"\x0b\x82", b"\xa5", b"x\x93 @"])
def test_a_body_that_is_not_utf8_is_a_422_on_the_body_not_an_undocumented_400(client: TestClient,
                                                                               body: bytes) -> None:
    assert_problem(client.post("/score", content=body), 422, "body")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/steering/vectors", "GET, POST"),
    ("PUT", "/steering/vectors/honesty@1", "DELETE, GET"),
    ("PATCH", "/models/tiny/variants/no-gender", "DELETE, GET"),
    ("DELETE", "/score", "POST"),
])
def test_a_405_lists_every_method_of_the_path_in_allow(client: TestClient, method: str, path: str,
                                                       allowed: str) -> None:
    reply = client.request(method, path)
    assert_problem(reply, 405)
    assert reply.headers["allow"] == allowed


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/logit-lens", {"prompt": "The capital of France is", "targets": [False]}, "targets.0.str"),
    ("/attribute", {"prompt": "The capital of France is", "target": {"kind": "next_token", "token": True}},
     "target.next_token.token.str"),
])
def test_a_boolean_is_not_taken_for_a_token_id(client: TestClient, path: str, body: dict[str, Any],
                                               field: str) -> None:
    assert_problem(client.post(path, json=body), 422, field)


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/steering/vectors/honesty@007"),
                                              ("GET", "/steering/vectors/honesty@0"),
                                              ("GET", "/models/tiny/variants/x@0")])
def test_a_version_that_is_not_a_positive_integer_is_a_422_not_a_500(client: TestClient, method: str,
                                                                     path: str) -> None:
    assert_problem(client.request(method, path), 422, "ref")


def test_listing_the_vectors_of_an_unknown_model_is_a_documented_404(client: TestClient) -> None:
    assert_problem(client.get("/steering/vectors", params={"model": "nope"}), 404, "model")
    assert "404" in client.get("/openapi.json").json()["paths"]["/steering/vectors"]["get"]["responses"]


def test_an_empty_layer_list_is_a_422_not_an_extraction_error(client: TestClient) -> None:
    body = {"name": "honesty", "positive": ["I am honest"], "negative": ["I lie"], "layers": []}
    assert_problem(client.post("/steering/vectors", json=body), 422, "layers.list[constrained-int]")

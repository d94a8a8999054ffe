"""Request validation at the door (issue #18): bounded, finite numbers; strict types; the spec's patterns
are the server's; and a key is checked before a body is read.

Each refusal here used to reach the engine (NaN weights stored, NaN traces answered), be read as
something else (`false` as 0), or be answered in an order that told a caller without a key about
the body it sent.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from ops.generate import OPERATION as GENERATE
from ops.lens import OPERATION as LENS
from ops.registry import JOBS
from schemas.names import NAME_PATTERN
from service.main import create_app
from service.state import AppState
from tests.fakes import app_state, beat, fake_clients, tiny_registry, tiny_settings
from tests.service.test_api import SCORE, assert_problem
from tests.service.test_edit_api import FACT
from tests.service.test_openapi import operations, spec

PROMPT = "The capital of France is Paris and the"
EDIT = {"name": "moved", "requests": [FACT]}
TRACE = {"prompt": PROMPT, "subject": "France"}
#: Stands in for a number JSON cannot spell (`Infinity`, `NaN`) until the body is written out.
NUMBER = "@number@"


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def post_raw(client: TestClient, path: str, text: str, headers: dict[str, str] | None = None) -> Any:
    """POST a body exactly as written: Python's json reads `Infinity`, `NaN` and `1e400` (as inf)."""
    return client.post(path, content=text.encode(), headers={"content-type": "application/json", **(headers or {})})


# --- 1. numbers are bounded and finite -----------------------------------------------------------


@pytest.mark.parametrize("name", ["kl_factor", "v_weight_decay", "clamp_norm_factor", "v_stop_loss", "mom2_weight"])
def test_an_edit_hyperparameter_past_its_bound_is_refused_before_it_stores_nan_weights(client: TestClient,
                                                                                     name: str) -> None:
    body = {**EDIT, "hyperparameters": {name: 1e300}}
    assert_problem(client.post("/edit", json=body), 422, f"hyperparameters.{name}")


def test_a_trace_noise_scale_past_its_bound_is_refused(client: TestClient) -> None:
    assert_problem(client.post("/trace", json={**TRACE, "noise_scale": 1e300}), 422, "noise_scale")


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/trace", {**TRACE, "noise_multiplier": NUMBER}, "noise_multiplier"),
    ("/trace", {**TRACE, "noise_scale": NUMBER}, "noise_scale"),
    ("/edit", {**EDIT, "hyperparameters": {"kl_factor": NUMBER}}, "hyperparameters.kl_factor"),
    ("/edit", {**EDIT, "hyperparameters": {"v_lr": NUMBER}}, "hyperparameters.v_lr"),
    ("/generate", {"prompt": "Hi", "temperature": NUMBER}, "temperature"),
    ("/attribute", {"prompt": "Hi there", "tolerance": NUMBER}, "tolerance"),
])
def test_a_number_that_is_not_finite_is_refused_wherever_it_is_sent(client: TestClient, path: str,
                                                                    body: dict[str, Any], field: str,
                                                                    number: str) -> None:
    text = json.dumps(body).replace(json.dumps(NUMBER), number)
    assert_problem(post_raw(client, path, text), 422, field)


@pytest.mark.parametrize("wait", ["inf", "nan", "-1"])
def test_a_long_poll_wait_that_is_not_a_finite_number_of_seconds_is_refused(client: TestClient, wait: str) -> None:
    job_id = client.post("/score", json=SCORE).json()["id"]
    assert client.get(f"/jobs/{job_id}", params={"wait": "0"}).status_code == 200
    assert_problem(client.get(f"/jobs/{job_id}", params={"wait": wait}), 422, "wait")


def test_an_inline_steering_value_beyond_float32_is_refused(client: TestClient) -> None:
    hidden = client.get("/models").json()["models"][0]["hidden_size"]
    values = [0.0] * hidden
    values[3] = 1e39
    body = {"prompt": "Hi", "max_new_tokens": 1, "steering": [{"values": values, "layers": [0]}]}
    assert_problem(client.post("/generate", json=body), 422, "steering.0.values.3")
    values[3] = 1e36  # within float32, but not a thousand times over
    body = {"prompt": "Hi", "max_new_tokens": 1, "steering": [{"values": values, "layers": [0], "alpha": 1000}]}
    assert_problem(client.post("/generate", json=body), 422, "steering.0.alpha")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/generate", {"prompt": "Hi", "max_new_tokens": 1, "seed": 2**64}, "seed"),
    ("/trace", {**TRACE, "seed": 2**63}, "seed"),
    ("/attribute", {"prompt": "Hi there", "method": "shap", "seed": 2**32}, "seed"),
    ("/edit", {**EDIT, "hyperparameters": {"mom2_seed": 2**40}}, "hyperparameters.mom2_seed"),
])
def test_a_seed_past_what_the_engines_generators_take_is_refused(client: TestClient, path: str,
                                                                 body: dict[str, Any], field: str) -> None:
    assert_problem(client.post(path, json=body), 422, field)


def request_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema a request body reaches, by name (bodies, and the models they nest)."""
    components = spec()["components"]["schemas"]
    names: list[str] = []
    for _, _, operation in operations():
        for content in operation.get("requestBody", {}).get("content", {}).values():
            names += re.findall(r"#/components/schemas/(\w+)", json.dumps(content))
    seen: set[str] = set()
    while names:
        name = names.pop()
        if name not in seen:
            seen.add(name)
            names += re.findall(r"#/components/schemas/(\w+)", json.dumps(components[name]))
            yield name, components[name]


def numbers(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``type: number`` sub-schema, with where it is."""
    if isinstance(schema, dict):
        if schema.get("type") == "number":
            yield where, schema
        for key, value in schema.items():
            yield from numbers(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from numbers(value, f"{where}.{index}")


def test_every_number_a_request_takes_has_a_lower_and_an_upper_bound_in_the_spec() -> None:
    found = [(where, schema) for name, body in request_schemas() for where, schema in numbers(body, name)]
    assert len(found) > 10
    unbounded = [where for where, schema in found
                 if not ({"minimum", "exclusiveMinimum"} & schema.keys() and {"maximum", "exclusiveMaximum"}
                         & schema.keys())]
    assert not unbounded


def test_every_seed_a_request_takes_has_an_upper_bound_in_the_spec() -> None:
    seeds = [(name, field, schema) for name, body in request_schemas()
             for field, schema in body.get("properties", {}).items() if "seed" in field]
    assert len(seeds) >= 6
    for name, field, schema in seeds:
        options = schema.get("anyOf", [schema])
        assert all(o.get("maximum", 2**64) < 2**53 for o in options if o.get("type") == "integer"), (name, field)


# --- 2. a boolean is not an integer, a string is not a number ------------------------------------


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/edit", {**EDIT, "generation_tokens": False}, "generation_tokens"),
    ("/logit-lens", {"prompt": PROMPT, "positions": [False]}, "positions.list[int].0"),
    ("/generate", {"prompt": "Hi", "max_new_tokens": "5"}, "max_new_tokens"),
    ("/generate", {"prompt": "Hi", "max_new_tokens": 2, "compare": 1}, "compare"),
    ("/generate", {"prompt": "Hi", "max_new_tokens": 2, "temperature": True}, "temperature"),
    ("/score", {"texts": ["Hi"], "batch_size": True}, "batch_size"),
    ("/trace", {**TRACE, "samples": 2.0}, "samples"),
    ("/edit", {**EDIT, "hyperparameters": {"v_steps": True}}, "hyperparameters.v_steps"),
])
def test_a_boolean_or_a_string_is_not_taken_for_a_number(client: TestClient, path: str, body: dict[str, Any],
                                                         field: str) -> None:
    assert_problem(client.post(path, json=body), 422, field)


def request_models() -> set[type[BaseModel]]:
    """Every model a request body is made of: each operation's request and the models nested in it."""
    found: set[type[BaseModel]] = set()
    todo: list[Any] = [op.request for op in JOBS] + [GENERATE.request, LENS.request]
    while todo:
        kind = todo.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if kind not in found:
                found.add(kind)
                todo += [field.annotation for field in kind.model_fields.values()]
        else:
            todo += list(typing.get_args(kind))
    return found


def test_every_model_a_request_is_made_of_validates_strictly() -> None:
    models = request_models()
    assert {"ChatMessage", "SteeringSpec", "EditHyperparameters", "FactEdit", "ContrastPair", "LabelledText",
            "NextTokenTarget"} <= {model.__name__ for model in models}
    assert not [model.__name__ for model in models if model.model_config.get("strict") is not True]


def test_a_whole_number_is_still_a_float(client: TestClient) -> None:
    body = {"prompt": "Hi", "max_new_tokens": 2, "temperature": 1, "top_p": 1, "seed": 3}
    reply = client.post("/generate", json=body)
    assert reply.status_code == 200, reply.text


# --- 3. the spec's patterns are the server's -----------------------------------------------------


def test_the_spec_gives_the_model_name_pattern_wherever_a_model_is_named() -> None:
    named = [(f"{method} {path}", parameter["schema"]) for path, method, operation in operations()
             for parameter in operation.get("parameters", []) if parameter["name"] == "model"]
    named += [(name, body["properties"]["model"]) for name, body in request_schemas()
              if "model" in body.get("properties", {})]
    assert len(named) >= 12
    for where, schema in named:
        patterns = [option.get("pattern") for option in schema.get("anyOf", [schema]) if option.get("type") == "string"]
        assert patterns == [NAME_PATTERN], where


def test_a_model_name_the_spec_refuses_is_the_one_the_server_refuses(client: TestClient) -> None:
    assert re.search(NAME_PATTERN, "__main__") is None
    assert_problem(client.get("/models/__main__/variants"), 422, "model")
    assert_problem(client.get("/steering/vectors", params={"model": "__main__"}), 422, "model")
    assert_problem(client.post("/score", json={**SCORE, "model": "__main__"}), 422, "model")


# --- 4. the key before the body --------------------------------------------------------------


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[TestClient]:
    state = app_state(tiny_settings(tmp_path, api_keys=["s3cret"]), tiny_registry(), *fake_clients())
    beat(state.directory)
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


@pytest.mark.parametrize("body", ['{"texts": [', '{"texts": []}', "not json at all", ""])
def test_with_keys_a_request_without_one_is_a_401_whatever_its_body(keyed_client: TestClient, body: str) -> None:
    expected = keyed_client.post("/score", json=SCORE)
    reply = post_raw(keyed_client, "/score", body)
    problem = assert_problem(reply, 401, "X-API-Key")
    assert problem == expected.json()
    assert reply.headers["www-authenticate"] == expected.headers["www-authenticate"]
    assert reply.headers["x-request-id"]


def test_with_keys_a_request_with_one_still_gets_its_body_checked(keyed_client: TestClient) -> None:
    assert_problem(post_raw(keyed_client, "/score", '{"texts": [', {"X-API-Key": "s3cret"}), 422, "body")


def test_with_keys_the_probes_pages_and_unknown_routes_answer_as_before(keyed_client: TestClient) -> None:
    assert keyed_client.get("/healthz").status_code == 200
    assert keyed_client.get("/readyz").status_code == 200
    assert keyed_client.get("/ui").status_code == 200
    assert keyed_client.get("/openapi.json").status_code == 200
    assert keyed_client.get("/docs").status_code == 200
    assert_problem(keyed_client.get("/nowhere"), 404)
    assert_problem(keyed_client.get("/score"), 405)

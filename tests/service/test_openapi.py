"""The committed OpenAPI contract: in sync with the app, and documenting every error as a problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from schemas.problems import PROBLEM_MEDIA_TYPE
from service.openapi import render_spec

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
HEALTH_PATHS = {"/healthz", "/readyz"}


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render_spec())
    return loaded


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_committed_openapi_json_matches_the_app() -> None:
    assert SPEC_FILE.is_file(), "openapi.json is missing: run `python -m service.openapi`"
    assert SPEC_FILE.read_text() == render_spec(), (
        "openapi.json is stale: regenerate it with `python -m service.openapi`"
    )


def test_rendering_the_spec_is_deterministic() -> None:
    assert render_spec() == render_spec()


def test_every_operation_has_a_unique_operation_id() -> None:
    ids = [str(op.get("operationId") or "") for _, _, op in operations()]
    assert ids and all(ids), [f"{m} {p}" for p, m, op in operations() if not op.get("operationId")]
    assert len(ids) == len(set(ids)), sorted(ids)


def test_the_api_documents_its_routes() -> None:
    routes = {(method, path) for path, method, _ in operations()}
    assert {("post", "/score"), ("post", "/generate"), ("get", "/jobs/{job_id}"),
            ("post", "/jobs/{job_id}/cancel"), ("get", "/models"), ("get", "/healthz"),
            ("get", "/readyz")} <= routes


@pytest.mark.parametrize(("path", "method", "operation"), list(operations()),
                         ids=[f"{m} {p}" for p, m, _ in operations()])
def test_every_4xx_response_is_documented_as_a_problem(path: str, method: str, operation: dict[str, Any]) -> None:
    for status, response in operation["responses"].items():
        if status.startswith("4"):
            content = response.get("content", {})
            assert PROBLEM_MEDIA_TYPE in content, f"{method} {path} {status} lacks {PROBLEM_MEDIA_TYPE}"
            assert content[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_fastapis_own_validation_error_shape_is_not_documented() -> None:
    assert "HTTPValidationError" not in spec()["components"]["schemas"]


def test_health_probes_take_no_api_key_and_every_other_operation_documents_it() -> None:
    scheme = spec()["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    for path, method, operation in operations():
        security = operation.get("security")
        if path in HEALTH_PATHS:
            assert security is None and "401" not in operation["responses"], f"{method} {path}"
        else:
            # Optional ({} is the alternative): whether a key is needed depends on the deployment.
            assert security == [{"ApiKey": []}, {}], f"{method} {path}"
            assert {"401", "429"} <= set(operation["responses"]), f"{method} {path}"


def test_job_submission_documents_its_202_and_conflicts() -> None:
    score = spec()["paths"]["/score"]["post"]
    assert {"202", "404", "409", "413", "422", "503"} <= set(score["responses"])
    assert "idempotency-key" in {p["name"].lower() for p in score["parameters"]}

"""The debugging workflow on the real stack: the logit lens in the API, traces and a diagnosis on the worker,
and a diagnosis's steering fix sent back through `/generate`."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import torch

from tests.integration.conftest import RunningStack
from tests.integration.harness import SHARED_MODEL_CACHE

pytestmark = pytest.mark.integration

EIFFEL = "The Eiffel Tower is located in the city of"


def finished(stack: RunningStack, reply: httpx.Response, timeout: float = 300) -> dict[str, Any]:
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{stack.base_url}/jobs/{job_id}", params={"wait": 20}, timeout=30).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            assert job["status"] == "succeeded", job
            assert job["progress"] == {"fraction": 1.0, "stage": "done"}
            return job
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_the_logit_lens_ends_in_the_models_own_next_token_distribution(stack: RunningStack) -> None:
    reply = httpx.post(f"{stack.base_url}/logit-lens", json={"prompt": EIFFEL, "targets": [" Paris"], "top_k": 3},
                       timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["layers"]) == 30
    (last,) = body["layers"][-1]["cells"]
    assert last["top"][0]["text"] == " Paris" and last["targets"][0]["rank"] == 1

    # An independent reference: the same converted checkpoint, run here with plain transformers.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = SHARED_MODEL_CACHE / "smollm2-135m"
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True).eval()
    with torch.inference_mode():
        probs = torch.softmax(model(**tokenizer(EIFFEL, return_tensors="pt")).logits[0, -1], -1)
    for token in last["top"]:
        assert token["probability"] == pytest.approx(float(probs[token["id"]]), abs=1e-5)


def test_a_causal_trace_on_the_worker_finds_the_subject_mlps(stack: RunningStack) -> None:
    reply = httpx.post(f"{stack.base_url}/trace", json={"prompt": EIFFEL, "subject": "The Eiffel Tower",
                                                        "answer": " Paris", "kinds": ["mlp"], "samples": 3}, timeout=10)
    result = finished(stack, reply)["result"]
    (grid,) = result["grids"]
    effects = torch.tensor(grid["indirect_effects"])
    layer, position = divmod(int(effects.argmax()), effects.shape[1])
    assert result["subject"] == {"text": "The Eiffel Tower", "start": 0, "end": 4}
    assert result["tokens"][position]["text"] == "iffel" and layer < 15
    assert result["p_corrupted"] < 0.1 * result["p_clean"] and result["evaluations"] == 30 * 10 * 3


def test_activation_patching_on_the_worker_restores_the_clean_answer_at_the_last_layer(stack: RunningStack) -> None:
    reply = httpx.post(f"{stack.base_url}/trace", json={
        "method": "activation_patching", "prompt": EIFFEL,
        "corrupted_prompt": "The Colosseum is located in the city of", "answer": " Paris", "kinds": ["residual"]},
        timeout=10)
    result = finished(stack, reply)["result"]
    residual = result["grids"][0]["probabilities"]
    assert result["first_difference"] == 1 and result["p_corrupted"] < 0.05 < 0.5 < result["p_clean"]
    assert residual[-1][-1] == pytest.approx(result["p_clean"], abs=1e-5)
    assert result["grids"][0]["indirect_effects"][5][0] == 0.0  # "The" is the same in both prompts


def test_a_diagnosis_of_a_wrong_capital_proposes_fixes_and_its_steering_works_through_generate(
    stack: RunningStack,
) -> None:
    reply = httpx.post(f"{stack.base_url}/diagnose", json={
        "prompt": "The capital of Australia is", "expected": " Canberra", "subject": "Australia", "samples": 2,
        "kinds": ["mlp"]}, timeout=10)
    report = finished(stack, reply)["result"]
    assert report["prediction"]["token"]["text"] == " Sydney" and report["expected"]["rank"] == 2
    assert not report["decision"]["correct"] and report["subject_mlp"]["text"] == " Australia"
    edit, steering = report["suggestions"]
    assert edit["endpoint"] == "/edit" and edit["body"]["requests"][0]["prompt"] == "The capital of {} is"
    assert edit["body"]["hyperparameters"]["layers"] == [report["subject_mlp"]["last_token_peak_layer"]]
    assert edit["body"]["name"] and edit["body"]["requests"][0]["target_true"] == " Sydney"
    assert steering["endpoint"] == "/generate" and steering["verified"] is True
    generated = httpx.post(f"{stack.base_url}{steering['endpoint']}", json=steering["body"], timeout=60)
    assert generated.status_code == 200, generated.text
    assert generated.json()["tokens"][0]["text"] == " Canberra"
    assert generated.json()["unsteered"]["tokens"][0]["text"] == " Sydney"


def test_the_debugger_page_is_served_by_the_api(stack: RunningStack) -> None:
    page = httpx.get(f"{stack.base_url}/ui", timeout=10)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "render.js", "app.css"):
        assert httpx.get(f"{stack.base_url}/ui/assets/{asset}", timeout=10).status_code == 200

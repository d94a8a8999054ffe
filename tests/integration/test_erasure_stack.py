"""The textbook's concept erasure (section 4) through the real stack, on the default model.

Erase a binary concept (gender) from hidden states built from labelled sentences, probe before and
after, then serve the model with the concept erased: `/generate` and a `/score` job on the
variant, the latter checked against the stored eraser applied here with the concept-erasure package.
"""

from __future__ import annotations

import functools
import itertools

import httpx
import pytest
import torch
from concept_erasure import LeaceEraser
from safetensors.torch import load_file

from engine.loading import LoadedModel
from store.model_cache import ModelCache
from tests.integration.conftest import RunningStack
from tests.integration.harness import SHARED_MODEL_CACHE

pytestmark = pytest.mark.integration

MODEL, LAYER = "smollm2-135m", 8
JOBS = ["doctor", "nurse", "teacher", "engineer", "pilot", "lawyer", "baker", "farmer"]
VERBS = ["works as a", "wants to be a", "is proud to be a"]
PEOPLE = {"male": ["He", "My brother", "The man"], "female": ["She", "My sister", "The woman"]}
EXAMPLES = [{"text": f"{person} {verb} {job}.", "label": label}
            for job, verb, (label, people) in itertools.product(JOBS, VERBS, PEOPLE.items()) for person in people]
SCORED = ["She works as a nurse.", "The capital of France is Paris."]


@functools.cache
def local_model() -> LoadedModel:
    return ModelCache(SHARED_MODEL_CACHE).load_model(MODEL, "builtin:smollm2-135m", device="cpu", dtype="float32")


def wait(stack: RunningStack, location: str, seconds: int = 240) -> dict:
    job: dict = httpx.get(f"{stack.base_url}{location}", params={"wait": 25}, timeout=35).json()
    for _ in range(seconds // 25):
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        job = httpx.get(f"{stack.base_url}{location}", params={"wait": 25}, timeout=35).json()
    return job


def test_the_textbook_erasure_leaves_the_probe_at_chance_and_the_variant_serves(stack: RunningStack) -> None:
    reply = httpx.post(f"{stack.base_url}/erase", timeout=30, json={
        "name": "no-gender", "examples": EXAMPLES, "layers": [LAYER], "reading": "last", "held_out": 0.5})
    assert reply.status_code == 202, reply.text
    job = wait(stack, reply.headers["location"])
    assert job["status"] == "succeeded", job
    (layer,) = job["result"]["layers"]
    # "Gender accuracy before erasure" is high; "after erasure, accuracy should be ~50% (random chance)".
    assert layer["probe_accuracy_before"] >= 0.85, layer
    assert abs(layer["probe_accuracy_after"] - layer["majority_baseline"]) <= 0.03, layer
    assert layer["max_class_mean_gap_after"] < 1e-4 and layer["rank"] == 1
    assert job["result"]["variant"]["ref"] == "no-gender@1"

    shown = httpx.get(f"{stack.base_url}/models/{MODEL}/variants/no-gender", timeout=10).json()
    assert shown["report"]["layers"][0]["probe_accuracy_after"] == layer["probe_accuracy_after"]

    generated = httpx.post(f"{stack.base_url}/generate", timeout=60, json={
        "prompt": "My sister works as a", "max_new_tokens": 5, "variant": "no-gender"})
    assert generated.status_code == 200, generated.text
    assert generated.json()["variant"] == "no-gender@1" and generated.json()["tokens"]

    scored = httpx.post(f"{stack.base_url}/score", timeout=30, json={"texts": SCORED, "variant": "no-gender@1"})
    assert scored.status_code == 202, scored.text
    result = wait(stack, scored.headers["location"], 60)["result"]
    assert result["variant"] == "no-gender@1"

    # The served eraser is the stored one: apply its factors here with the package, on a plain hook.
    assert stack.data_dir is not None
    factors = load_file(stack.data_dir / "variants" / MODEL / "no-gender" / "1" / "components.safetensors")
    package = LeaceEraser(factors["0.proj_left"], factors["0.proj_right"], factors["0.bias"])
    lm = local_model()
    handle = lm.adapter.blocks(lm.model)[LAYER].register_forward_hook(lambda m, a, out: (package(out[0]), *out[1:])
                                                                      if isinstance(out, tuple) else package(out))
    try:
        for text, view in zip(SCORED, result["texts"], strict=True):
            ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
            with torch.no_grad():
                logprobs = torch.log_softmax(lm.model(input_ids=ids).logits[0].double(), -1)
            expected = [float(logprobs[i - 1, ids[0, i]]) for i in range(1, ids.shape[1])]
            assert [t["logprob"] for t in view["tokens"][1:]] == pytest.approx(expected, abs=1e-4)
    finally:
        handle.remove()


def test_unknown_variants_are_404s_naming_the_field(stack: RunningStack) -> None:
    for path, body in (("/generate", {"prompt": "Hi", "variant": "ghost"}), ("/score", {"texts": ["Hi"],
                                                                                       "variant": "ghost@3"})):
        reply = httpx.post(f"{stack.base_url}{path}", json=body, timeout=10)
        assert reply.status_code == 404 and reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["field"] == "variant"
    single = httpx.post(f"{stack.base_url}/erase", timeout=10, json={
        "name": "x", "layers": [1], "examples": [{"text": "He is.", "label": "m"}, {"text": "Hi.", "label": "m"}]})
    assert single.status_code == 422 and "two classes" in single.json()["detail"]

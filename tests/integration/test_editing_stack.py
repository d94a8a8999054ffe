"""Knowledge editing through the real stack on the default model: the textbook check, serving, rollback.

The textbook's ROME example: rewrite "The capital of France is" to a new city, check the edit
prompt now gives it and "The capital of Germany is" still gives Berlin, then serve the edited
variant beside the base model (rolling back is serving the base) and check the diagnosis page's
suggested edit body is accepted as it is.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import RunningStack
from tests.integration.test_erasure_stack import wait

pytestmark = pytest.mark.integration

# Key statistics on fewer texts than the default, so the first edit's statistics take seconds.
QUICK = {"mom2_samples": 20_000}
FACT = {"prompt": "The capital of {} is", "subject": "France", "target_new": " Rome", "target_true": " Paris",
        "paraphrases": ["The French capital is"],
        "neighborhood": [{"prompt": "The capital of Germany is", "answer": " Berlin"},
                         {"prompt": "The capital of Italy is", "answer": " Rome"}]}


def greedy(stack: RunningStack, prompt: str, variant: str | None = None, tokens: int = 3) -> str:
    body = {"prompt": prompt, "max_new_tokens": tokens, **({"variant": variant} if variant else {})}
    reply = httpx.post(f"{stack.base_url}/generate", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    text: str = reply.json()["text"]
    return text


def test_the_textbook_rome_edit_moves_the_capital_and_keeps_berlin(stack: RunningStack) -> None:
    assert greedy(stack, "The capital of France is").startswith(" Paris")
    reply = httpx.post(f"{stack.base_url}/edit", timeout=30, json={
        "name": "capital", "method": "rome", "requests": [FACT], "hyperparameters": QUICK})
    assert reply.status_code == 202, reply.text
    job = wait(stack, reply.headers["location"], seconds=900)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["variant"]["ref"] == "capital@1" and [d["rank"] for d in result["deltas"]] == [1]
    evaluation = result["evaluation"]
    assert evaluation["efficacy"]["edited"] == 1.0 and evaluation["efficacy"]["base"] == 0.0
    assert evaluation["neighborhood"]["edited"] >= 0.5

    assert greedy(stack, "The capital of France is", "capital").startswith(" Rome")
    assert greedy(stack, "The capital of Germany is", "capital").startswith(" Berlin")
    # Rolling back is serving the base model (or the parent): exactly its output again.
    assert greedy(stack, "The capital of France is").startswith(" Paris")

    listed = httpx.get(f"{stack.base_url}/models/smollm2-135m/variants/capital@1", timeout=10).json()
    assert listed["method"] == "rome" and listed["components"][0]["kind"] == "low_rank_delta"
    assert listed["report"]["efficacy"]["edited"] == 1.0


def test_memit_writes_several_facts_in_one_job(stack: RunningStack) -> None:
    facts = [{**FACT, "subject": subject, "target_new": new, "target_true": old, "paraphrases": [],
              "neighborhood": []}
             for subject, old, new in (("France", " Paris", " Rome"), ("Japan", " Tokyo", " Madrid"),
                                       ("Spain", " Madrid", " Berlin"))]
    reply = httpx.post(f"{stack.base_url}/edit", timeout=30, json={
        "name": "capitals", "method": "memit", "requests": facts, "hyperparameters": QUICK})
    assert reply.status_code == 202, reply.text
    job = wait(stack, reply.headers["location"], seconds=900)
    assert job["status"] == "succeeded", job
    assert all(d["rank"] == 3 for d in job["result"]["deltas"]) and len(job["result"]["deltas"]) > 1
    assert job["result"]["evaluation"]["efficacy"]["edited"] >= 2 / 3

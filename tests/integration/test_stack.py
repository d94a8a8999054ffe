"""The whole stack as README command 1 starts it: real Redis, worker process, model and HTTP.

Tests run in file order against one stack; the last two kill the worker and stop the stack.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch

from tests.integration.conftest import RunningStack
from tests.integration.harness import SHARED_MODEL_CACHE, alive, children_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)


def submit_score(stack: RunningStack, texts: list[str], **extra: object) -> dict:
    reply = httpx.post(f"{stack.base_url}/score", json={"texts": texts, **extra}, timeout=10)
    assert reply.status_code == 202, reply.text
    return reply.json()


def wait_for(stack: RunningStack, job_id: str, predicate, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{stack.base_url}/jobs/{job_id}", timeout=10).json()
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never satisfied the condition; last: {job}")


def test_generate_continues_the_capital_of_france_with_paris(stack: RunningStack) -> None:
    # Exactly the README's curl: no content type, so curl sends form encoding.
    reply = httpx.post(f"{stack.base_url}/generate",
                       content=b'{"prompt": "The capital of France is", "max_new_tokens": 5}',
                       headers={"content-type": "application/x-www-form-urlencoded"}, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "Paris" in body["text"]
    assert body["usage"]["completion_tokens"] == len(body["tokens"]) <= 5


def test_models_lists_the_resident_default_model(stack: RunningStack) -> None:
    models = httpx.get(f"{stack.base_url}/models", timeout=10).json()["models"]
    default = next(m for m in models if m["name"] == "smollm2-135m")
    assert (default["architecture"], default["n_layers"], default["hidden_size"]) == ("llama", 30, 576)
    assert default["device"] == "cpu" and default["dtype"] == "float32"
    assert default["workers"] >= 1
    assert default["variants"] == []


def test_readiness_reports_redis_and_a_worker_per_model(stack: RunningStack) -> None:
    reply = httpx.get(f"{stack.base_url}/readyz", timeout=10)
    assert reply.status_code == 200
    assert reply.json()["redis"] is True
    assert reply.json()["workers"]["smollm2-135m"] >= 1
    assert httpx.get(f"{stack.base_url}/healthz", timeout=10).json() == {"status": "ok"}


def test_a_score_job_runs_on_the_worker_and_matches_the_model_computed_here(stack: RunningStack) -> None:
    text = "The capital of France is Paris."
    reply = httpx.post(f"{stack.base_url}/score", json={"texts": [text, "Hello world"]}, timeout=10)
    assert reply.status_code == 202
    assert reply.headers["location"] == f"/jobs/{reply.json()['id']}"
    assert int(reply.headers["retry-after"]) >= 1
    job = httpx.get(f"{stack.base_url}{reply.headers['location']}", params={"wait": 30}, timeout=40).json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"fraction": 1.0, "stage": "done"}
    assert job["started_at"] and job["ended_at"] and job["expires_at"]

    # An independent reference: the same converted checkpoint, run in this process.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = SHARED_MODEL_CACHE / "smollm2-135m"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = torch.log_softmax(model(ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
    served = job["result"]["texts"][0]["tokens"]
    assert [t["id"] for t in served] == ids[0].tolist()
    assert served[0]["logprob"] is None
    assert torch.allclose(torch.tensor([t["logprob"] for t in served[1:]]), expected, atol=1e-4)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"model": "nope", "texts": ["a"]}', 404, "model"),
        (b'{"texts": ["ok", ""]}', 422, "texts.1"),
        (b'{"texts": ["ok"], "batch_size": "many"}', 422, "batch_size"),
        (b'{"texts": ', 422, None),
        (b'{"texts": ["' + b"x" * 2_000_000 + b'"]}', 413, "body"),
    ],
)
def test_bad_input_gets_a_problem_with_the_status_and_the_field(
    stack: RunningStack, body: bytes, status: int, field: str | None
) -> None:
    reply = httpx.post(f"{stack.base_url}/score", content=body, timeout=30)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if field is not None:
        assert problem["field"] == field


def test_the_same_idempotency_key_returns_the_same_job(stack: RunningStack) -> None:
    headers = {"Idempotency-Key": f"it-{time.time_ns()}"}
    first = httpx.post(f"{stack.base_url}/score", json={"texts": ["a b c"]}, headers=headers, timeout=10)
    again = httpx.post(f"{stack.base_url}/score", json={"texts": ["a b c"]}, headers=headers, timeout=10)
    other = httpx.post(f"{stack.base_url}/score", json={"texts": ["x y z"]}, headers=headers, timeout=10)
    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"


HONEST = ["I need to give an honest, truthful answer to this question:",
          "Let me think carefully and give an accurate response:",
          "I want to be straightforward and factual:"]
DISHONEST = ["I should make up a convincing-sounding answer:",
             "Let me say whatever sounds good regardless of truth:",
             "I want to tell them what they want to hear:"]


def test_the_textbook_honesty_vector_steers_generation_at_alpha_one_and_a_half(stack: RunningStack) -> None:
    created = httpx.post(f"{stack.base_url}/steering/vectors", timeout=60, json={
        "name": "honesty", "positive": HONEST, "negative": DISHONEST, "layers": [15], "normalize": True})
    assert created.status_code == 201, created.text
    assert created.json()["layers"] == [15] and created.json()["normalized"] is True
    reply = httpx.post(f"{stack.base_url}/generate", timeout=60, json={
        "prompt": "Is the earth flat? Answer:", "max_new_tokens": 12, "compare": True,
        "steering": [{"vector": "honesty", "layers": [15], "alpha": 1.5}]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["steered"] is True and body["unsteered"]["text"]
    # Far stronger steering visibly changes the text: the vector is really applied.
    strong = httpx.post(f"{stack.base_url}/generate", timeout=60, json={
        "prompt": "Is the earth flat? Answer:", "max_new_tokens": 12,
        "steering": [{"vector": "honesty@1", "alpha": 60.0}]}).json()
    assert strong["text"] != body["unsteered"]["text"]


def test_sixteen_concurrent_steered_requests_on_the_default_model_equal_each_alone(stack: RunningStack) -> None:
    import concurrent.futures

    def body(i: int) -> dict:
        values = torch.randn(576, generator=torch.Generator().manual_seed(i)).tolist()
        steering = [] if i % 4 == 0 else [{"values": values, "layers": [5 + i], "alpha": float(i)}]
        return {"prompt": ["The capital of France is", "My favourite food is", "Once upon a time"][i % 3],
                "max_new_tokens": 6, "steering": steering}

    def tokens(i: int) -> list[int]:
        reply = httpx.post(f"{stack.base_url}/generate", json=body(i), timeout=120)
        assert reply.status_code == 200, reply.text
        return [t["id"] for t in reply.json()["tokens"]]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(tokens, range(16)))
    assert together == [tokens(i) for i in range(16)]


def test_a_large_extraction_runs_as_a_job_on_the_worker_and_its_vector_serves(stack: RunningStack) -> None:
    pairs = [{"positive": f"{h} ({i})", "negative": f"{d} ({i})"} for i in range(8)
             for h, d in zip(HONEST, DISHONEST, strict=True)]
    reply = httpx.post(f"{stack.base_url}/steering/vectors", timeout=30,
                       json={"name": "honesty-big", "pairs": pairs, "layers": [10, 15]})
    assert reply.status_code == 202, reply.text
    job = httpx.get(f"{stack.base_url}{reply.headers['location']}", params={"wait": 60}, timeout=70).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["ref"] == "honesty-big@1" and job["result"]["n_pairs"] == 24
    assert job["result"]["accuracy"]["15"] is not None
    served = httpx.post(f"{stack.base_url}/generate", timeout=60, json={
        "prompt": "Is the earth flat? Answer:", "max_new_tokens": 4, "steering": [{"vector": "honesty-big"}]})
    assert served.status_code == 200 and served.json()["steered"] is True


def test_attribution_explains_paris_within_one_percent_and_renders_a_page(stack: RunningStack) -> None:
    reply = httpx.post(f"{stack.base_url}/attribute", timeout=30, json={
        "prompt": "The capital of France is", "target": {"kind": "next_token", "token": " Paris"}})
    assert reply.status_code == 202, reply.text
    job = httpx.get(f"{stack.base_url}{reply.headers['location']}", params={"wait": 120}, timeout=130).json()
    assert job["status"] == "succeeded", job
    target = job["result"]["targets"][0]
    assert target["token"] == " Paris"
    assert target["relative_error"] <= 0.01, target
    assert all(isinstance(v, float) for v in job["result"]["attributions"][0])  # never NaN (JSON has no NaN)
    page = httpx.get(f"{stack.base_url}/jobs/{job['id']}/view", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Paris" in page.text and "France" in page.text


def test_the_readme_client_example_prints_the_jobs_top_tokens(stack: RunningStack) -> None:
    # Exactly the file the README shows (tests/clients checks they match), run as a user would.
    example = ROOT / "clients" / "examples" / "attribute_job.py"
    done = subprocess.run([sys.executable, str(example)], env={**os.environ, "INTERP_URL": stack.base_url},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    header, *rows = done.stdout.splitlines()
    found = re.fullmatch(r"job ([0-9a-f]{32}): p\(' Paris'\) = (0\.\d{3}), completeness error (\d+\.\d\d)%", header)
    assert found, header
    # The printed tokens are the job's three largest attributions by size, ranked here from the raw JSON.
    result = httpx.get(f"{stack.base_url}/jobs/{found.group(1)}", timeout=10).json()["result"]
    ranked = sorted(zip([t["text"] for t in result["inputs"]], result["attributions"][0], strict=True),
                    key=lambda pair: -abs(pair[1]))
    assert rows == [f"{text!r:>12} {score:+.3f}" for text, score in ranked[:3]]
    assert found.group(2) == f"{result['targets'][0]['probability']:.3f}"
    assert float(found.group(3)) <= 1.0  # the adaptive rule's 1 % completeness target


def resident_memory(pid: int) -> int:
    """Resident set size of a process in bytes, from the kernel's own account."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_the_worker_keeps_no_memory_between_attribution_jobs(stack: RunningStack) -> None:
    prompts = ["The capital of France is", "Water boils at a temperature of", "Roses are red, violets are"]
    bodies = [{"rule": "gauss_legendre", "n_steps": 8}, {"method": "shap", "max_evals": 40},
              {"target": {"kind": "generate", "n_tokens": 2}, "rule": "riemann_trapezoid", "n_steps": 6}]
    (pid,) = stack.worker_pids().values()
    after: dict[int, int] = {}
    for n in range(1, 51):
        body = {"prompt": prompts[n % 3], **bodies[n % 3]}
        reply = httpx.post(f"{stack.base_url}/attribute", json=body, timeout=30)
        assert reply.status_code == 202, reply.text
        job = httpx.get(f"{stack.base_url}{reply.headers['location']}", params={"wait": 60}, timeout=70).json()
        assert job["status"] == "succeeded", job
        if n in (5, 50):
            after[n] = resident_memory(pid)
    assert after[50] <= 1.05 * after[5], f"worker RSS grew from {after[5] / 2**20:.0f} to {after[50] / 2**20:.0f} MiB"


def test_the_zero_baseline_is_refused_on_the_rmsnorm_default_model(stack: RunningStack) -> None:
    reply = httpx.post(f"{stack.base_url}/attribute", timeout=30,
                       json={"prompt": "The capital of France is", "baseline": "zero"})
    assert reply.status_code == 422 and reply.json()["field"] == "baseline"
    assert "NaN" in reply.json()["detail"]


def test_cancelling_a_running_job_stops_it_between_batches(stack: RunningStack) -> None:
    job = submit_score(stack, [LONG_TEXT] * 250, batch_size=1)
    running = wait_for(stack, job["id"], lambda j: j["status"] == "running" and j["progress"]["fraction"] > 0)
    reply = httpx.post(f"{stack.base_url}/jobs/{job['id']}/cancel", timeout=10)
    assert reply.status_code == 202
    assert reply.json()["cancel_requested"] is True
    ended = wait_for(stack, job["id"], lambda j: j["status"] != "running", timeout=30)
    assert ended["status"] == "canceled"
    assert running["progress"]["fraction"] <= ended["progress"]["fraction"] < 1.0
    assert ended["result"] is None


def test_killing_the_worker_mid_job_fails_the_job_and_a_new_worker_takes_the_next(stack: RunningStack) -> None:
    job = submit_score(stack, [LONG_TEXT] * 250, batch_size=1)
    wait_for(stack, job["id"], lambda j: j["status"] == "running" and j["progress"]["fraction"] > 0)
    worker = stack.redis.hget(f"interp:job:{job['id']}", "worker")
    assert isinstance(worker, str)
    pid = stack.worker_pids()[worker]
    os.kill(pid, signal.SIGKILL)

    failed = wait_for(stack, job["id"], lambda j: j["status"] != "running", timeout=30)
    assert failed["status"] == "failed"
    assert "worker" in failed["error"]["detail"]

    # The launcher starts a replacement, which serves the next job.
    later = submit_score_when_ready(stack, ["A new worker scores this."])
    done = httpx.get(f"{stack.base_url}/jobs/{later['id']}", params={"wait": 30}, timeout=40).json()
    assert done["status"] == "succeeded"
    assert pid not in stack.worker_pids().values()


def submit_score_when_ready(stack: RunningStack, texts: list[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = httpx.post(f"{stack.base_url}/score", json={"texts": texts}, timeout=10)
        if reply.status_code == 202:
            return reply.json()
        assert reply.status_code == 503, reply.text  # no worker yet: the documented answer
        assert reply.headers["retry-after"]
        time.sleep(0.5)
    raise AssertionError("no worker came back")


def test_ctrl_c_stops_every_process_the_stack_started(stack: RunningStack) -> None:
    launcher = stack.launcher.proc
    children = children_of(launcher.pid)
    assert len(children) == 3  # redis, worker, api
    launcher.send_signal(signal.SIGINT)
    try:
        code = launcher.wait(timeout=60)
    except subprocess.TimeoutExpired:  # say which process held it up
        raise AssertionError(f"the stack did not stop in 60 s:\n{stack.launcher.output[-4000:]}") from None
    assert code == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in children)

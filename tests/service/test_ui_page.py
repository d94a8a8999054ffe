"""The debugger page (`/ui`) driven in a real headless Chromium over the DevTools protocol.

A real HTTP server (uvicorn, in a thread) serves the app on the tiny model; Chromium loads the
page, types a prompt, clicks the buttons, and the test reads the rendered DOM back. A stand-in
worker thread runs the submitted jobs with the real task code. Like the attribution page's tests,
these fail (never skip) when Chromium is missing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from rq import Queue
from rq.serializers import JSONSerializer
from websockets.sync.client import ClientConnection, connect

from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings
from tests.integration.harness import free_port
from tests.service.test_attribution_page import Element, chromium_binary, parse
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

PROMPT = "The capital of France is Paris and the"
# The flags the issue names, plus the ones that keep a test browser quiet and self-contained.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--remote-debugging-port=0"]


def visible(text: str) -> str:
    """The page's rendering of a token: a leading space as an open box, a newline as a return sign."""
    return (("\u2423" + text[1:]) if text.startswith(" ") else text).replace("\n", "\u23ce")


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.last_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.last_id:
                assert "error" not in message, message
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}; status: {self.evaluate(STATUS)!r}")

    def dom(self) -> Element:
        root, _ = parse(self.evaluate("document.documentElement.outerHTML"))
        return root

    def exceptions(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("method") == "Runtime.exceptionThrown"]


STATUS = "document.getElementById('status').textContent"


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def base_url(state: AppState) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state=state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def worker(state: AppState, tmp_path: Path) -> Iterator[None]:
    """Runs every job the page submits, as a worker would (same task code, same store)."""
    runtime = WorkerRuntime(settings=state.settings, registry=tiny_registry(), store=state.store, worker_name="w")
    queue = Queue(state.settings.queue_name(TINY_MODEL), connection=state.rq_redis, serializer=JSONSerializer)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for rq_job in queue.jobs:
                queue.remove(rq_job)
                run_job(runtime, *rq_job.args)
            time.sleep(0.05)

    def heartbeat() -> None:  # the API fails jobs whose worker stops beating
        while not stop.wait(0.5):
            beat(state.directory, "w")

    beat(state.directory, "w")
    threads = [threading.Thread(target=loop, daemon=True), threading.Thread(target=heartbeat, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


@pytest.fixture
def browser(tmp_path: Path, base_url: str) -> Iterator[DevTools]:
    profile = tmp_path / "profile"
    process = subprocess.Popen([chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json() if t["type"] == "page"]
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as socket:
            tools = DevTools(socket)
            tools.call("Runtime.enable")
            tools.call("Page.enable")
            tools.call("Page.navigate", url=f"{base_url}/ui")
            tools.wait_for("document.body && document.body.getAttribute('data-ready') === '1'")
            yield tools
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def type_and_click(browser: DevTools, button: str, **fields: str) -> None:
    script = "".join(f"document.getElementById({json.dumps(k)}).value = {json.dumps(v)};" for k, v in fields.items())
    browser.evaluate(script + f"document.getElementById({json.dumps(button)}).click(); true")


def test_in_chromium_the_page_runs_a_lens_request_and_renders_the_grid(browser: DevTools, base_url: str) -> None:
    root = browser.dom()
    assert [o.get("value") for o in root.find_all("option") if o.parent and o.parent.get("id") == "model"] \
        == [TINY_MODEL]
    assert any(TINY_MODEL in li.text for li in root.find_all("li", data_model=TINY_MODEL))

    type_and_click(browser, "run-lens", prompt=PROMPT, target="The")
    browser.wait_for("document.querySelector('#lens-grid[data-rendered=\"1\"]') !== null")
    grid = browser.dom().find_all("table", id="lens-grid")[0]
    lm = tiny_lm()
    ids = lm.tokenizer(PROMPT)["input_ids"]
    expected = httpx.post(f"{base_url}/logit-lens", json={"model": TINY_MODEL, "prompt": PROMPT, "positions": "all",
                                                          "top_k": 5, "targets": ["The"]}, timeout=30).json()
    header = [th.text for th in grid.find_all("th") if th.has("data-position")]
    assert header == [visible(t["text"]) for t in expected["tokens"]] and len(header) == len(ids)
    rows = [tr for tr in grid.find_all("tr") if tr.has("data-layer")]
    assert [tr.get("data-layer") for tr in rows] == [str(layer) for layer in range(lm.n_layers)]
    for tr, layer in zip(rows, expected["layers"], strict=True):
        cells = tr.find_all("td")
        assert [td.text for td in cells] == [visible(c["top"][0]["text"]) for c in layer["cells"]]
        assert [float(td.get("data-probability") or "nan") for td in cells] == \
            [c["top"][0]["probability"] for c in layer["cells"]]
        ranks = [c["targets"][0]["rank"] for c in layer["cells"]]
        assert [int(td.get("data-target-rank") or 0) for td in cells] == ranks
        assert all("background-color: rgb(" in (td.get("style") or "") for td in cells)
    # Independently: the last row is the model's own greedy prediction at every position.
    with torch.inference_mode():
        greedy = lm.model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
    assert [int(td.get("data-token-id") or -1) for td in rows[-1].find_all("td")] == greedy
    assert grid.get("data-layers") == str(lm.n_layers) and grid.get("data-positions") == str(len(ids))
    assert browser.evaluate("document.getElementById('status').classList.contains('error')") is False
    assert browser.exceptions() == []


def test_in_chromium_a_lens_error_is_shown_with_its_field(browser: DevTools) -> None:
    type_and_click(browser, "run-lens", prompt=PROMPT, target="two words")
    status = browser.wait_for(f"document.getElementById('status').classList.contains('error') && {STATUS}")
    assert "targets.0" in status and "Invalid request" in status


def test_in_chromium_a_trace_job_shows_its_progress_and_heatmap(browser: DevTools, worker: None) -> None:
    browser.evaluate("document.getElementById('kinds').value = 'mlp'; true")
    type_and_click(browser, "run-trace", prompt=PROMPT, subject="France", target="", samples="1")
    browser.wait_for("document.querySelector('#trace-grids table[data-rendered=\"1\"]') !== null", timeout=120)
    root = browser.dom()
    job_id = browser.evaluate(STATUS)
    assert "causal trace done" in job_id
    assert float(root.find_all("progress", id="job-progress")[0].get("value") or "0") == 1.0
    assert "succeeded" in root.find_all("span", id="job-stage")[0].text
    (table,) = root.find_all("table", data_kind="mlp")
    rows = [tr for tr in table.find_all("tr") if tr.has("data-layer")]
    lm = tiny_lm()
    assert len(rows) == lm.n_layers
    assert all(len(tr.find_all("td")) == len(lm.tokenizer(PROMPT)["input_ids"]) for tr in rows)
    subject = [th.text for th in table.find_all("th") if "subject" in th.classes()]
    assert subject and "France" in "".join(subject).replace("\u2423", " ")
    assert browser.exceptions() == []
    if target := os.environ.get("UI_SCREENSHOT"):  # for a person to look at
        type_and_click(browser, "run-lens", prompt=PROMPT, target="The")
        browser.wait_for("document.querySelector('#lens-grid[data-rendered=\"1\"]') !== null")
        browser.call("Emulation.setDeviceMetricsOverride", width=1400, height=1800, deviceScaleFactor=1, mobile=False)
        shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        Path(target).write_bytes(base64.b64decode(shot["data"]))

"""The attribution view: the page's HTML, its script in a real headless Chromium, and its route.

The browser tests need Debian's ``chromium`` (``apt-get install -y chromium``); they fail, never
skip, when it is missing, so a CI image without it is noticed.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobs.store import JobStore
from schemas.attribution import AttributedToken, AttributionResult, TargetAttribution
from schemas.jobs import JobStatus
from schemas.problems import PROBLEM_MEDIA_TYPE
from service.main import create_app
from service.state import AppState
from service.views.attribution_html import CONTENT_SECURITY_POLICY
from service.views.attribution_page import render_attribution_page
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, queued_job, tiny_registry, tiny_settings

EVIL = "<script>alert(1)</script>"
JOB_ID = "0123456789abcdef0123456789abcdef"


def token(text: str, start: int, *, attributable: bool = True, id: int | None = 7) -> AttributedToken:
    return AttributedToken(text=text, id=id, start=start, end=start + len(text), attributable=attributable)


def ig_target(tok: str, position: int, values: list[float], **overrides: Any) -> TargetAttribution:
    total = sum(values)
    figures: dict[str, Any] = {
        "token": tok, "id": 40 + position, "position": position, "probability": 0.42 - 0.1 * position,
        "f_input": -0.8675 - position, "f_baseline": -4.25 - position, "attribution_sum": total,
        "completeness_error": 0.0125 + position, "relative_error": 0.00371 + position,
        "attribution_change": 0.0021, "base_value": None, "local_accuracy_error": None,
        "evaluations": 96 + position,
    }
    return TargetAttribution(**{**figures, **overrides})


ROWS = [
    [0.0, 1.5, -0.75, 0.25, 0.125, 0.0],
    [0.0, -2.0, 0.5, 1.0, -0.0625, 0.0],
]
INPUTS = [
    token("<|user|>", 0, attributable=False),
    token("The", 8),
    token(" capital", 11),
    token(EVIL, 19),
    token("\n of", 44),
    token(" France", 48, attributable=False),
]


def ig_result() -> AttributionResult:
    return AttributionResult(
        method="integrated_gradients", objective="log_prob", aggregate="token", rule="adaptive", baseline="pad",
        inputs=INPUTS, attributions=ROWS,
        targets=[ig_target(" Paris", 0, ROWS[0]), ig_target("</script><b>x", 1, ROWS[1], attribution_change=None)],
        evaluations=160, elapsed_seconds=1.25,
    )


def shap_result() -> AttributionResult:
    target = TargetAttribution(token=" Paris", id=41, position=0, probability=0.5, f_input=-0.69, f_baseline=None,
                               attribution_sum=1.2, completeness_error=None, relative_error=None,
                               attribution_change=None, base_value=-1.875, local_accuracy_error=0.0009765625,
                               evaluations=500)
    return AttributionResult(method="shap", objective="logit", aggregate="word", inputs=INPUTS[:3],
                             attributions=[[0.0, 0.7, 0.5]], targets=[target], evaluations=500,
                             elapsed_seconds=3.5)


# --- a tiny DOM for assertions ----------------------------------------------------------------


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts) + "".join(c.text for c in self.children)

    def has(self, name: str) -> bool:
        return name in self.attrs

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [e for e in self.iter() if (tag is None or e.tag == tag)
                and all(e.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def classes(self) -> set[str]:
        return set((self.get("class") or "").split())

    def visible(self) -> bool:
        node: Element | None = self
        while node is not None:
            if node.has("hidden"):
                return False
            node = node.parent
        return True


VOID = {"meta", "link", "br", "img", "input", "hr", "area", "base", "col", "embed", "source", "track", "wbr"}


class DomBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.node = self.root
        self.scripts: list[tuple[dict[str, str | None], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.node)
        self.node.children.append(element)
        if tag not in VOID:
            self.node = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.node
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.node = node.parent

    def handle_data(self, data: str) -> None:
        self.node.text_parts.append(data)
        if self.node.tag == "script":
            self.scripts.append((self.node.attrs, data))


def parse(page: str) -> tuple[Element, DomBuilder]:
    builder = DomBuilder()
    builder.feed(page)
    builder.close()
    return builder.root, builder


def figure(panel: Element, key: str) -> str | None:
    cells = panel.find_all("td", data_figure=key)
    return cells[0].get("data-value") if cells else None


# --- the page ---------------------------------------------------------------------------------


def test_a_malicious_token_is_escaped_everywhere_and_injects_no_script() -> None:
    page = render_attribution_page(ig_result(), job_id=JOB_ID, model="m<i>x</i>")
    assert EVIL not in page and "</script><b>" not in page and "<i>x</i>" not in page
    assert html.escape(EVIL) in page  # the token's text, shown
    root, builder = parse(page)
    # Exactly two scripts: the JSON data (inert) and the page's own static script.
    assert [attrs.get("type") for attrs, _ in builder.scripts] == ["application/json", None]
    data_text = builder.scripts[0][1]
    assert "</" not in data_text and "<" not in data_text
    data = json.loads(data_text)
    assert EVIL in data["labels"][3]
    evil = root.find_all("span", data_index="3")[0]
    assert evil.text == EVIL and evil.children == []  # text, not markup
    assert "alert" not in builder.scripts[1][1]
    assert [e.tag for e in root.iter() if e.tag in ("i", "b")] == []
    assert "m<i>x</i>" in root.find_all("title")[0].text


def test_the_page_is_self_contained_under_a_strict_policy() -> None:
    page = render_attribution_page(ig_result(), job_id=JOB_ID, model=TINY_MODEL)
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?://""", page, re.IGNORECASE)
    root, _ = parse(page)
    csp = root.find_all("meta", http_equiv="Content-Security-Policy")[0].get("content")
    assert csp == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_one_panel_and_one_selector_per_target_and_only_the_first_visible() -> None:
    result = ig_result()
    root, _ = parse(render_attribution_page(result, job_id=JOB_ID, model=TINY_MODEL))
    panels = root.find_all("section", role="tabpanel")
    tabs = root.find_all("button", role="tab")
    assert [p.get("data-target-index") for p in panels] == ["0", "1"]
    assert [t.get("data-target-index") for t in tabs] == ["0", "1"]
    assert [p.visible() for p in panels] == [True, False]
    assert [t.get("aria-selected") for t in tabs] == ["true", "false"]
    assert "\u2423Paris" in tabs[0].text and "</script><b>x" in tabs[1].text


def test_the_strip_shows_the_first_targets_values_colours_and_whitespace() -> None:
    root, _ = parse(render_attribution_page(ig_result(), job_id=JOB_ID, model=TINY_MODEL))
    spans = [s for s in root.iter() if s.tag == "span" and s.has("data-index")]
    assert [float(s.get("data-value") or "nan") for s in spans] == ROWS[0]
    assert [s.get("data-attributable") for s in spans] == ["false", "true", "true", "true", "true", "false"]
    assert "na" in spans[0].classes() and "na" in spans[5].classes()
    assert "not attributable" in (spans[0].get("title") or "")
    # The largest |a| is full red, a negative one blue, the title holds the exact value.
    assert "pos" in spans[1].classes() and "rgb(214, 39, 40)" in (spans[1].get("style") or "")
    assert "neg" in spans[2].classes() and "rgb(143, 187, 218)" in (spans[2].get("style") or "")
    assert "-0.75" in (spans[2].get("title") or "") and "50% of max" in (spans[2].get("title") or "")
    assert spans[2].text == " capital"  # the leading space is kept
    assert spans[4].text == "\u23ce\n of"  # a newline is visible, and still breaks the line
    strip = root.find_all("div", id="tokens")[0]
    assert "tokens" in strip.classes() and strip.get("data-target-index") == "0"
    style = root.find_all("style")[0].text
    assert re.search(r"\.tokens \{[^}]*white-space: pre-wrap", style)


def test_the_completeness_figures_of_every_target_are_on_the_page() -> None:
    result = ig_result()
    root, _ = parse(render_attribution_page(result, job_id=JOB_ID, model=TINY_MODEL))
    panels = root.find_all("section", role="tabpanel")
    for panel, target in zip(panels, result.targets, strict=True):
        assert float(figure(panel, "f_input") or "nan") == target.f_input
        assert float(figure(panel, "f_baseline") or "nan") == target.f_baseline
        assert float(figure(panel, "attribution_sum") or "nan") == target.attribution_sum
        assert float(figure(panel, "completeness_error") or "nan") == target.completeness_error
        assert float(figure(panel, "relative_error") or "nan") == target.relative_error
        assert float(figure(panel, "probability") or "nan") == target.probability
        assert figure(panel, "evaluations") == str(target.evaluations)
        assert figure(panel, "base_value") is None and figure(panel, "local_accuracy_error") is None
    assert figure(panels[0], "attribution_change") == "0.0021"
    assert figure(panels[1], "attribution_change") is None  # absent, not shown as a blank
    meta = root.find_all("dl")[0].text
    for text in ("Integrated Gradients", "log-probability", "adaptive", "pad", TINY_MODEL, JOB_ID):
        assert text in meta


def test_a_shap_page_shows_the_base_value_and_local_accuracy() -> None:
    root, _ = parse(render_attribution_page(shap_result(), job_id=JOB_ID, model=TINY_MODEL))
    (panel,) = root.find_all("section", role="tabpanel")
    assert figure(panel, "base_value") == "-1.875"
    assert figure(panel, "local_accuracy_error") == "0.0009765625"
    assert figure(panel, "f_baseline") is None and figure(panel, "completeness_error") is None
    assert "SHAP" in root.find_all("dl")[0].text


def test_non_finite_values_and_a_short_row_render_without_breaking_the_json() -> None:
    result = ig_result().model_copy(update={"attributions": [[0.0, float("nan"), float("inf")], ROWS[1]]})
    page = render_attribution_page(result, job_id=JOB_ID, model=TINY_MODEL)
    root, builder = parse(page)
    data = json.loads(builder.scripts[0][1])
    assert data["rows"][0]["values"][1:] == ["NaN", "Infinity", "NaN", "NaN", "NaN"]
    spans = [s for s in root.iter() if s.tag == "span" and s.has("data-index")]
    assert "nonfinite" in spans[1].classes() and spans[2].get("data-value") == "Infinity"


# --- in a real browser ------------------------------------------------------------------------


def chromium_binary() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    pytest.fail("headless Chromium is needed for the attribution page's browser tests and was not found: "
                "install it with `apt-get update && apt-get install -y chromium` (Debian), or point the "
                "CHROMIUM environment variable at a Chrome/Chromium binary", pytrace=False)


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *extra, url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def dump_dom(tmp_path: Path, url: str) -> Element:
    done = chromium(tmp_path, url, "--dump-dom")
    root, _ = parse(done.stdout)
    assert root.find_all("body"), done.stdout[:500]
    return root


@pytest.fixture
def page_url(tmp_path: Path) -> str:
    path = tmp_path / "view.html"
    path.write_text(render_attribution_page(ig_result(), job_id=JOB_ID, model=TINY_MODEL), encoding="utf-8")
    return path.as_uri()


def test_in_chromium_the_script_runs_and_shows_the_first_target(tmp_path: Path, page_url: str) -> None:
    root = dump_dom(tmp_path, page_url)
    body = root.find_all("body")[0]
    assert body.get("data-rendered") == "1", "the page's script did not run (blocked by the CSP?)"
    assert body.get("data-selected-target") == "0"
    panels = root.find_all("section", role="tabpanel")
    assert [p.visible() for p in panels] == [True, False]
    spans = [s for s in root.iter() if s.tag == "span" and s.has("data-index")]
    assert [float(s.get("data-value") or "nan") for s in spans] == ROWS[0]
    assert spans[3].text == EVIL and spans[3].children == []
    assert root.find_all("span", id="scale-max")[0].text == "+1.5"
    # The script paints exactly what the server painted.
    assert "background-color: rgb(214, 39, 40)" in (spans[1].get("style") or "")
    assert "background-color: rgb(143, 187, 218)" in (spans[2].get("style") or "")


def test_in_chromium_the_url_fragment_selects_a_target(tmp_path: Path, page_url: str) -> None:
    root = dump_dom(tmp_path, page_url + "#target=1")
    body = root.find_all("body")[0]
    assert body.get("data-rendered") == "1" and body.get("data-selected-target") == "1"
    panels = root.find_all("section", role="tabpanel")
    assert [p.visible() for p in panels] == [False, True]
    assert float(figure(panels[1], "f_input") or "nan") == ig_result().targets[1].f_input
    tabs = root.find_all("button", role="tab")
    assert [t.get("aria-selected") for t in tabs] == ["false", "true"]
    assert root.find_all("div", id="tokens")[0].get("data-target-index") == "1"
    spans = [s for s in root.iter() if s.tag == "span" and s.has("data-index")]
    assert [float(s.get("data-value") or "nan") for s in spans] == ROWS[1]
    # Target 1's scale is 2.0: -2.0 is full blue, 1.0 half red, the grey tokens stay grey.
    assert "rgb(31, 119, 180)" in (spans[1].get("style") or "") and "neg" in spans[1].classes()
    assert "rgb(235, 147, 148)" in (spans[3].get("style") or "") and "pos" in spans[3].classes()
    assert "na" in spans[5].classes() and not spans[5].get("style")
    assert root.find_all("span", id="scale-max")[0].text == "+2"


def test_in_chromium_a_screenshot_renders(tmp_path: Path, page_url: str) -> None:
    shot = tmp_path / "view.png"
    chromium(tmp_path, page_url, f"--screenshot={shot}", "--window-size=1200,800", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
    if target := os.environ.get("ATTRIBUTION_SCREENSHOT"):
        shutil.copyfile(shot, target)


# --- the route --------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path), tiny_registry(), *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def succeeded(store: JobStore, kind: str, result: dict[str, Any]) -> str:
    job_id = queued_job(store, kind=kind)
    assert store.claim(job_id, "worker-1")
    assert store.finish(job_id, JobStatus.succeeded, result=result)
    return job_id


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["field"] == "job_id"
    return problem


def test_a_succeeded_attribution_job_is_served_as_a_page(client: TestClient, state: AppState) -> None:
    job_id = succeeded(state.store, "attribute", ig_result().model_dump(mode="json"))
    response = client.get(f"/jobs/{job_id}/view")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith(CONTENT_SECURITY_POLICY)
    assert html.escape(EVIL) in response.text and EVIL not in response.text
    assert ">The<" in response.text and "\u2423Paris" in response.text and job_id in response.text
    assert TINY_MODEL in response.text


def test_an_unknown_job_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get(f"/jobs/{JOB_ID}/view"), 404)


def test_a_malformed_job_id_is_a_422_problem(client: TestClient) -> None:
    assert client.get("/jobs/not-a-job/view").status_code == 422


def test_a_score_job_is_a_409_problem(client: TestClient, state: AppState) -> None:
    job_id = succeeded(state.store, "score", {"results": []})
    problem = assert_problem(client.get(f"/jobs/{job_id}/view"), 409)
    assert "'score'" in problem["detail"]


@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_an_attribution_job_that_has_not_succeeded_is_a_409_problem_saying_its_status(
    client: TestClient, state: AppState, status: str
) -> None:
    job_id = queued_job(state.store, kind="attribute")
    if status != "queued":
        assert state.store.claim(job_id, "worker-1")
    if status == "failed":
        assert state.store.finish(job_id, JobStatus.failed, error={"title": "boom", "status": 500})
    response = client.get(f"/jobs/{job_id}/view")
    problem = assert_problem(response, 409)
    assert status in problem["detail"] and problem["job_status"] == status
    assert ("retry-after" in response.headers) == (status != "failed")


def test_the_route_is_documented_as_html_with_problems(client: TestClient) -> None:
    operation = client.app.openapi()["paths"]["/jobs/{job_id}/view"]["get"]  # type: ignore[attr-defined]
    assert operation["operationId"] == "view_job" and operation["tags"] == ["jobs"]
    assert "text/html" in operation["responses"]["200"]["content"]
    for status in ("401", "404", "409", "422"):
        assert PROBLEM_MEDIA_TYPE in operation["responses"][status]["content"]

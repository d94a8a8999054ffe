"""`GET /jobs/{job_id}/view`: an attribution job's result as one self-contained HTML page.

The page needs nothing but itself: its CSS and JS (``attribution_assets/``) are inlined, no font,
image or script is fetched, and a Content-Security-Policy (meta tag and header) allows only the
page's own script, by hash.

Layout: one shared strip of input tokens, coloured by the selected target's signed attribution
(diverging: red positive, blue negative, intensity ``|a| / max |a|`` of that target's row; tokens
that are not attributable are grey and dashed), and one panel per target with its completeness
figures. The strip and the first panel are rendered on the server, so the first target shows
without interaction; the rows of every target travel as JSON (``#attribution-data``) and a small
script recolours the strip when another target is selected (buttons, arrow keys, or the URL
fragment ``#target=N``). Every piece of user-derived text is HTML-escaped, and the JSON escapes
``<``, ``>`` and ``&`` so no token can close its ``<script>`` block.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ops.errors import ProblemError
from schemas.attribution import AttributedToken, AttributionResult, TargetAttribution
from schemas.jobs import JobStatus
from schemas.names import JOB_ID_PATTERN
from service.deps import CallerDep, StateDep
from service.jobviews import visible
from service.problems import problem_responses

router = APIRouter(tags=["jobs"])

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The job id from the 202 response.")]

POSITIVE = (214, 39, 40)  # red: the token raised the objective
NEGATIVE = (31, 119, 180)  # blue: the token lowered it
WHITE_TEXT_ABOVE = 0.55  # intensity above which the token's text turns white

METHOD_LABELS = {"integrated_gradients": "Integrated Gradients", "shap": "SHAP"}
OBJECTIVE_LABELS = {"logit": "logit", "log_prob": "log-probability", "prob": "probability"}


def _asset(name: str) -> str:
    """One file of ``attribution_assets/``, inlined into every page (read once, at import)."""
    return resources.files("service.views").joinpath("attribution_assets", name).read_text(encoding="utf-8")


# Recolours the token strip and toggles the panels. Static (no data in it), so the CSP can allow it
# by hash and no injected script could run even if escaping ever failed. ASCII only.
_SCRIPT = _asset("page.js")

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

_STYLE = _asset("page.css")


# --- formatting -------------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _shown(text: str) -> str:
    """Token text as it appears in the strip: whitespace kept, newlines and tabs made visible."""
    return text.replace("\r\n", "\u23ce\n").replace("\n", "\u23ce\n").replace("\r", "\u240d").replace("\t", "\u21e5\t")


def _shown_label(text: str) -> str:
    """Token text on one line (buttons, headings): every whitespace character made visible."""
    return (text.replace(" ", "\u2423").replace("\r\n", "\u23ce").replace("\n", "\u23ce").replace("\r", "\u240d")
            .replace("\t", "\u21e5")) or "\u2205"


def _number(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def _exact(value: float) -> str:
    """The exact value as text; non-finite values as JavaScript's `Number()` reads them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _json_value(value: float) -> float | str:
    # JSON has no NaN or infinities; the page's script reads these strings with `Number()`.
    return value if math.isfinite(value) else _exact(value)


def _token_label(token: AttributedToken) -> str:
    kind = f"id {token.id}" if token.id is not None else "word"
    return f"{token.text!r} ({kind}, chars {token.start}\u2013{token.end})"


def _row(result: AttributionResult, index: int) -> list[float]:
    """The target's attributions, one per input (missing entries as NaN: shown, never guessed)."""
    row = result.attributions[index] if index < len(result.attributions) else []
    values = [float(v) for v in row[: len(result.inputs)]]
    return values + [math.nan] * (len(result.inputs) - len(values))


def _scale(result: AttributionResult, values: list[float]) -> float:
    """max |a| over the attributable, finite entries of a row: the intensity 1 of that row."""
    magnitudes = [abs(v) for v, t in zip(values, result.inputs, strict=True) if t.attributable and math.isfinite(v)]
    return max(magnitudes, default=0.0)


def _intensity(value: float, scale: float) -> float:
    return min(abs(value) / scale, 1.0) if scale > 0 and math.isfinite(value) else 0.0


def _rgb(value: float, scale: float) -> str:
    t = _intensity(value, scale)
    colour = POSITIVE if value > 0 else NEGATIVE
    # int(x + 0.5) is JavaScript's Math.round for these non-negative x: both sides paint alike.
    return "rgb({}, {}, {})".format(*(int(255 + (c - 255) * t + 0.5) for c in colour))


# --- page pieces ------------------------------------------------------------------------------


def _token_span(index: int, token: AttributedToken, value: float, scale: float) -> str:
    text = token.text
    classes = ["tok"]
    style = ""
    label = _token_label(token)
    if not token.attributable:
        classes.append("na")
        title = f"{label} \u00b7 not attributable"
    elif not math.isfinite(value):
        classes.append("nonfinite")
        title = f"{label} \u00b7 {_exact(value)}"
    else:
        t = _intensity(value, scale)
        classes.append("pos" if value > 0 else "neg" if value < 0 else "zero")
        style = f"background-color: {_rgb(value, scale)};" + (" color: #fff;" if t > WHITE_TEXT_ABOVE else "")
        title = f"{label} \u00b7 {_exact(value)} ({int(100 * t + 0.5)}% of max |a|)"
    if not text:
        classes.append("empty")
    shown = _shown(text) if text else "\u2205"
    style_attr = f' style="{style}"' if style else ""
    return (f'<span class="{" ".join(classes)}" data-index="{index}" data-value="{_exact(value)}" '
            f'data-attributable="{"true" if token.attributable else "false"}" title="{_esc(title)}"'
            f"{style_attr}>{_esc(shown)}</span>")


Figure = tuple[str, str, Callable[[TargetAttribution], float | None], Callable[[float], str]]


def _percent(value: float) -> str:
    return f"{_number(value, 4)} ({_number(value * 100, 3)}%)" if math.isfinite(value) else str(value)


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _plus(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


_COMMON_HEAD: list[Figure] = [
    ("probability", "Probability", lambda t: t.probability, _percent),
    ("f_input", "F(input)", lambda t: t.f_input, _number),
]
_IG_FIGURES: list[Figure] = [
    *_COMMON_HEAD,
    ("f_baseline", "F(baseline)", lambda t: t.f_baseline, _number),
    ("f_delta", "F(input) \u2212 F(baseline)", lambda t: _difference(t.f_input, t.f_baseline), _number),
    ("attribution_sum", "\u03a3 attributions", lambda t: t.attribution_sum, _number),
    ("completeness_error", "Completeness error |\u03a3 \u2212 \u0394F|", lambda t: t.completeness_error, _number),
    ("relative_error", "Relative error", lambda t: t.relative_error, _percent),
    ("attribution_change", "Attribution change (last refinement)", lambda t: t.attribution_change, _percent),
    ("evaluations", "Evaluations", lambda t: t.evaluations, lambda v: str(int(v))),
]
_SHAP_FIGURES: list[Figure] = [
    *_COMMON_HEAD,
    ("base_value", "Base value (all masked)", lambda t: t.base_value, _number),
    ("base_plus_sum", "Base value + \u03a3", lambda t: _plus(t.base_value, t.attribution_sum), _number),
    ("attribution_sum", "\u03a3 attributions", lambda t: t.attribution_sum, _number),
    ("local_accuracy_error", "Local accuracy error |base + \u03a3 \u2212 F|", lambda t: t.local_accuracy_error,
     _number),
    ("evaluations", "Evaluations", lambda t: t.evaluations, lambda v: str(int(v))),
]


def _figures(result: AttributionResult, target: TargetAttribution) -> str:
    rows = []
    for key, label, get, fmt in _SHAP_FIGURES if result.method == "shap" else _IG_FIGURES:
        value = get(target)
        if value is None:
            continue
        exact = str(value) if isinstance(value, int) else _exact(value)
        rows.append(f'<tr><th scope="row">{_esc(label)}</th><td data-figure="{key}" data-value="{exact}" '
                    f'title="{_esc(exact)}">{_esc(fmt(value))}</td></tr>')
    return "<table><tbody>" + "".join(rows) + "</tbody></table>"


def _panel(result: AttributionResult, index: int, target: TargetAttribution, scale: float) -> str:
    hidden = "" if index == 0 else " hidden"
    return (
        f'<section class="target-panel" id="target-panel-{index}" data-target-index="{index}" role="tabpanel" '
        f'aria-labelledby="target-tab-{index}" data-scale="{_exact(scale)}"{hidden}>'
        f"<h2>Target <code>{_esc(_shown_label(target.token))}</code></h2>"
        f'<p class="note">target {index} of {len(result.targets)} (#target={index}), token id {target.id}, '
        f"position {target.position}; max |a| of this row {_esc(_number(scale, 4))}</p>"
        f"{_figures(result, target)}</section>"
    )


def _tab(index: int, target: TargetAttribution) -> str:
    selected = "true" if index == 0 else "false"
    return (f'<button type="button" role="tab" id="target-tab-{index}" data-target-index="{index}" '
            f'aria-controls="target-panel-{index}" aria-selected="{selected}" tabindex="{0 if index == 0 else -1}" '
            f'title="{_esc(repr(target.token))}, p = {_esc(_number(target.probability, 4))}">'
            f"<code>{_esc(_shown_label(target.token))}</code>"
            f"<small>{_esc(_number(target.probability * 100, 3))}%</small></button>")


def _script_json(payload: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or ``&`` can appear."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_attribution_page(result: AttributionResult, *, job_id: str, model: str) -> str:
    """One self-contained HTML page showing an attribution result.

    Args:
        result: the job's result.
        job_id: the job, named in the title.
        model: the model that was explained.
    """
    rows = [_row(result, i) for i in range(len(result.targets))]
    scales = [_scale(result, values) for values in rows]
    first = rows[0] if rows else [0.0] * len(result.inputs)
    first_scale = scales[0] if scales else 0.0

    meta = [("Model", model), ("Job", job_id), ("Method", METHOD_LABELS.get(result.method, result.method)),
            ("Objective F", OBJECTIVE_LABELS.get(result.objective, result.objective)),
            ("Aggregate", result.aggregate)]
    if result.rule is not None:
        meta.append(("Rule", result.rule))
    if result.baseline is not None:
        meta.append(("Baseline", result.baseline))
    meta += [("Inputs", str(len(result.inputs))), ("Targets", str(len(result.targets))),
             ("Evaluations", str(result.evaluations)), ("Elapsed", f"{result.elapsed_seconds:.3g} s")]
    meta_html = "".join(f"<div><dt>{_esc(k)}</dt><dd>{_esc(v)}</dd></div>" for k, v in meta)

    tokens_html = "".join(_token_span(i, token, first[i], first_scale) for i, token in enumerate(result.inputs))
    tabs_html = "".join(_tab(i, t) for i, t in enumerate(result.targets))
    panels_html = "".join(_panel(result, i, t, scales[i]) for i, t in enumerate(result.targets))
    if not result.targets:
        panels_html = '<p class="note">This result explains no target.</p>'
    payload = {
        "labels": [_token_label(t) for t in result.inputs],
        "rows": [{"values": [_json_value(v) for v in values], "scale": scale, "scale_text": _number(scale, 4)}
                 for values, scale in zip(rows, scales, strict=True)],
    }
    scale_text = _esc(_number(first_scale, 4))
    title = f"Attribution \u00b7 {model} \u00b7 job {job_id}"

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_esc(CONTENT_SECURITY_POLICY)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>{_STYLE}</style>
</head>
<body data-rendered="0" data-selected-target="0" data-method="{_esc(result.method)}">
<header>
<h1>Token attributions <span class="note">&middot; {_esc(model)}</span></h1>
<dl class="meta">{meta_html}</dl>
</header>
<nav id="targets" role="tablist" aria-label="Explained targets"><span class="label">Target</span>{tabs_html}</nav>
<noscript><p class="note" style="padding: 0 24px">JavaScript is off: only the first target is shown.</p></noscript>
<main>
<section class="input" aria-label="Input tokens">
<h2>Input tokens</h2>
<div id="tokens" class="tokens" data-target-index="0">{tokens_html}</div>
<div class="legend" aria-label="Legend">
<span class="scale"><span id="scale-min">&minus;{scale_text}</span><span class="bar" role="img"
 aria-label="blue: lowered F; white: no effect; red: raised F"></span><span id="scale-max">+{scale_text}</span></span>
<span><span class="swatch" style="background: rgb(31, 119, 180)"></span> lowers F</span>
<span><span class="swatch" style="background: rgb(214, 39, 40)"></span> raises F</span>
<span><span class="swatch na"></span> not attributable</span>
<span>intensity = |a| / max |a| of the target's row; hover a token for its exact value; \u23ce is a newline</span>
</div>
</section>
<aside class="figures" aria-label="Completeness figures">{panels_html}</aside>
</main>
<script type="application/json" id="attribution-data">{_script_json(payload)}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""


# --- route ------------------------------------------------------------------------------------


@router.get(
    "/jobs/{job_id}/view",
    response_class=HTMLResponse,
    summary="An attribution job's result as a self-contained HTML page",
    description="Input tokens coloured by signed attribution (red raises the objective, blue lowers it), "
    "one view per explained target with its completeness figures. Needs a succeeded `attribute` job.",
    responses={200: {"description": "The page (inline CSS and JS, no external resources)."},
               **problem_responses(401, 404, 409, 422, 503)},
)
async def view_job(job_id: JobId, state: StateDep, caller: CallerDep) -> HTMLResponse:
    record = visible(await state.reader.get(job_id), caller)
    if record is None:
        raise ProblemError(404, "Unknown job", f"no job {job_id!r} (it never existed or has expired)",
                           field="job_id")
    if record.kind != "attribute":
        raise ProblemError(409, "Not an attribution job",
                           f"job {job_id} is a {record.kind!r} job; only 'attribute' jobs have a view",
                           field="job_id")
    if record.status is not JobStatus.succeeded:
        waiting = not record.status.terminal
        detail = f"job {job_id} is {record.status.value}; the view needs a succeeded job" + (
            f" (poll /jobs/{job_id} until it ends)" if waiting else "")
        headers = {"Retry-After": str(state.settings.retry_after_seconds)} if waiting else None
        raise ProblemError(409, "Job not succeeded", detail, field="job_id", headers=headers,
                           job_status=record.status.value)

    def render() -> str:
        result = AttributionResult.model_validate_json(record.result_json or "null")
        return render_attribution_page(result, job_id=job_id, model=record.model)

    # A page over 1024 inputs and 64 targets takes ~70 ms to render: off the event loop.
    page = await run_in_threadpool(render)
    return HTMLResponse(page, headers={
        "Content-Security-Policy": CONTENT_SECURITY_POLICY + "; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    })

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

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ops import attribute
from ops.errors import ProblemError
from schemas.attribution import AttributionResult
from schemas.jobs import JobStatus
from service.deps import CallerDep, JobId, StateDep
from service.jobviews import unknown_job, visible
from service.problems import problem_responses
from service.views.attribution_html import (
    CONTENT_SECURITY_POLICY,
    METHOD_LABELS,
    OBJECTIVE_LABELS,
    SCRIPT,
    STYLE,
    escape,
    json_value,
    number_text,
    row_scale,
    script_json,
    target_panel,
    target_row,
    target_tab,
    token_label,
    token_span,
)

router = APIRouter(tags=["jobs"])


def render_attribution_page(result: AttributionResult, *, job_id: str, model: str) -> str:
    """One self-contained HTML page showing an attribution result.

    Args:
        result: the job's result.
        job_id: the job, named in the title.
        model: the model that was explained.
    """
    rows = [target_row(result, i) for i in range(len(result.targets))]
    scales = [row_scale(result, values) for values in rows]
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
    meta_html = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in meta)

    tokens_html = "".join(token_span(i, token, first[i], first_scale) for i, token in enumerate(result.inputs))
    tabs_html = "".join(target_tab(i, t) for i, t in enumerate(result.targets))
    panels_html = "".join(target_panel(result, i, t, scales[i]) for i, t in enumerate(result.targets))
    if not result.targets:
        panels_html = '<p class="note">This result explains no target.</p>'
    payload = {
        "labels": [token_label(t) for t in result.inputs],
        "rows": [{"values": [json_value(v) for v in values], "scale": scale, "scale_text": number_text(scale, 4)}
                 for values, scale in zip(rows, scales, strict=True)],
    }
    scale_text = escape(number_text(first_scale, 4))
    title = f"Attribution \u00b7 {model} \u00b7 job {job_id}"

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body data-rendered="0" data-selected-target="0" data-method="{escape(result.method)}">
<header>
<h1>Token attributions <span class="note">&middot; {escape(model)}</span></h1>
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
<script type="application/json" id="attribution-data">{script_json(payload)}</script>
<script>{SCRIPT}</script>
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
        raise unknown_job(job_id)
    if record.kind != attribute.OPERATION.kind:
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

"""The pieces of the attribution page: colours, numbers, token spans, figure panels, the inlined assets.

`attribution_page` assembles them into the page; everything user-derived is HTML-escaped here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Callable
from importlib import resources
from typing import Any

from schemas.attribution import AttributedToken, AttributionResult, TargetAttribution

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
SCRIPT = _asset("page.js")

SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'sha256-{SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

STYLE = _asset("page.css")


# --- formatting -------------------------------------------------------------------------------


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def _shown(text: str) -> str:
    """Token text as it appears in the strip: whitespace kept, newlines and tabs made visible."""
    return text.replace("\r\n", "\u23ce\n").replace("\n", "\u23ce\n").replace("\r", "\u240d").replace("\t", "\u21e5\t")


def _shown_label(text: str) -> str:
    """Token text on one line (buttons, headings): every whitespace character made visible."""
    return (text.replace(" ", "\u2423").replace("\r\n", "\u23ce").replace("\n", "\u23ce").replace("\r", "\u240d")
            .replace("\t", "\u21e5")) or "\u2205"


def number_text(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def _exact(value: float) -> str:
    """The exact value as text; non-finite values as JavaScript's `Number()` reads them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def json_value(value: float) -> float | str:
    # JSON has no NaN or infinities; the page's script reads these strings with `Number()`.
    return value if math.isfinite(value) else _exact(value)


def token_label(token: AttributedToken) -> str:
    kind = f"id {token.id}" if token.id is not None else "word"
    return f"{token.text!r} ({kind}, chars {token.start}\u2013{token.end})"


def target_row(result: AttributionResult, index: int) -> list[float]:
    """The target's attributions, one per input (missing entries as NaN: shown, never guessed)."""
    row = result.attributions[index] if index < len(result.attributions) else []
    values = [float(v) for v in row[: len(result.inputs)]]
    return values + [math.nan] * (len(result.inputs) - len(values))


def row_scale(result: AttributionResult, values: list[float]) -> float:
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


def token_span(index: int, token: AttributedToken, value: float, scale: float) -> str:
    text = token.text
    classes = ["tok"]
    style = ""
    label = token_label(token)
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
            f'data-attributable="{"true" if token.attributable else "false"}" title="{escape(title)}"'
            f"{style_attr}>{escape(shown)}</span>")


Figure = tuple[str, str, Callable[[TargetAttribution], float | None], Callable[[float], str]]


def _percent(value: float) -> str:
    return f"{number_text(value, 4)} ({number_text(value * 100, 3)}%)" if math.isfinite(value) else str(value)


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _plus(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


_COMMON_HEAD: list[Figure] = [
    ("probability", "Probability", lambda t: t.probability, _percent),
    ("f_input", "F(input)", lambda t: t.f_input, number_text),
]
_IG_FIGURES: list[Figure] = [
    *_COMMON_HEAD,
    ("f_baseline", "F(baseline)", lambda t: t.f_baseline, number_text),
    ("f_delta", "F(input) \u2212 F(baseline)", lambda t: _difference(t.f_input, t.f_baseline), number_text),
    ("attribution_sum", "\u03a3 attributions", lambda t: t.attribution_sum, number_text),
    ("completeness_error", "Completeness error |\u03a3 \u2212 \u0394F|", lambda t: t.completeness_error, number_text),
    ("relative_error", "Relative error", lambda t: t.relative_error, _percent),
    ("attribution_change", "Attribution change (last refinement)", lambda t: t.attribution_change, _percent),
    ("evaluations", "Evaluations", lambda t: t.evaluations, lambda v: str(int(v))),
]
_SHAP_FIGURES: list[Figure] = [
    *_COMMON_HEAD,
    ("base_value", "Base value (all masked)", lambda t: t.base_value, number_text),
    ("base_plus_sum", "Base value + \u03a3", lambda t: _plus(t.base_value, t.attribution_sum), number_text),
    ("attribution_sum", "\u03a3 attributions", lambda t: t.attribution_sum, number_text),
    ("local_accuracy_error", "Local accuracy error |base + \u03a3 \u2212 F|", lambda t: t.local_accuracy_error,
     number_text),
    ("evaluations", "Evaluations", lambda t: t.evaluations, lambda v: str(int(v))),
]


def _figures(result: AttributionResult, target: TargetAttribution) -> str:
    rows = []
    for key, label, get, fmt in _SHAP_FIGURES if result.method == "shap" else _IG_FIGURES:
        value = get(target)
        if value is None:
            continue
        exact = str(value) if isinstance(value, int) else _exact(value)
        rows.append(f'<tr><th scope="row">{escape(label)}</th><td data-figure="{key}" data-value="{exact}" '
                    f'title="{escape(exact)}">{escape(fmt(value))}</td></tr>')
    return "<table><tbody>" + "".join(rows) + "</tbody></table>"


def target_panel(result: AttributionResult, index: int, target: TargetAttribution, scale: float) -> str:
    hidden = "" if index == 0 else " hidden"
    return (
        f'<section class="target-panel" id="target-panel-{index}" data-target-index="{index}" role="tabpanel" '
        f'aria-labelledby="target-tab-{index}" data-scale="{_exact(scale)}"{hidden}>'
        f"<h2>Target <code>{escape(_shown_label(target.token))}</code></h2>"
        f'<p class="note">target {index} of {len(result.targets)} (#target={index}), token id {target.id}, '
        f"position {target.position}; max |a| of this row {escape(number_text(scale, 4))}</p>"
        f"{_figures(result, target)}</section>"
    )


def target_tab(index: int, target: TargetAttribution) -> str:
    selected = "true" if index == 0 else "false"
    return (f'<button type="button" role="tab" id="target-tab-{index}" data-target-index="{index}" '
            f'aria-controls="target-panel-{index}" aria-selected="{selected}" tabindex="{0 if index == 0 else -1}" '
            f'title="{escape(repr(target.token))}, p = {escape(number_text(target.probability, 4))}">'
            f"<code>{escape(_shown_label(target.token))}</code>"
            f"<small>{escape(number_text(target.probability * 100, 3))}%</small></button>")


def script_json(payload: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or ``&`` can appear."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

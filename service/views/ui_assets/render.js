// Drawing the debugger's results as tables and token strips: the logit lens (block x position), causal
// traces (block x token), attributions and a diagnosis. Plain ES2017; every text from the API is set
// with textContent, never parsed as HTML; colours go through the CSSOM (allowed by the page's CSP).
var InterpRender = (function () {
  "use strict";
  var POS = [214, 39, 40], NEG = [31, 119, 180], DARK_ABOVE = 0.55;

  function $(id) { return document.getElementById(id); }

  function show(id) { $(id).hidden = false; }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "className") { node.className = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } return node; }

  // Token text made visible: a leading space as an open box, a newline as a return sign.
  function visible(text) { return String(text).replace(/^ /, "\u2423").replace(/\n/g, "\u23ce"); }

  function fmt(value) {
    if (value === null || value === undefined || !isFinite(value)) { return String(value); }
    var a = Math.abs(value);
    return a !== 0 && (a < 0.001 || a >= 1000) ? value.toExponential(2) : value.toFixed(3);
  }

  // Background for |value| / scale in the colour of its sign (white at 0); dark cells get white text.
  function paint(node, value, scale) {
    var t = scale > 0 && isFinite(value) ? Math.min(Math.abs(value) / scale, 1) : 0;
    var c = value < 0 ? NEG : POS;
    node.style.backgroundColor = "rgb(" + c.map(function (k) { return Math.round(255 + (k - 255) * t); })
      .join(", ") + ")";
    node.classList.toggle("dark", t > DARK_ABOVE);
    return t;
  }

  var lastLens = null;

  function renderLens(data) {
    lastLens = data;
    var byTarget = $("lens-colour-target").checked && data.targets.length > 0;
    var table = clear($("lens-grid"));
    var head = el("tr");
    head.appendChild(el("th", {className: "layer"}, "block \\ token"));
    data.positions.forEach(function (p) {
      head.appendChild(el("th", {"data-position": p}, visible(data.tokens[p].text)));
    });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    data.layers.forEach(function (layer) {
      var row = el("tr", {"data-layer": layer.layer});
      row.appendChild(el("th", {className: "layer"}, layer.layer));
      layer.cells.forEach(function (cell, column) {
        var top = cell.top[0];
        var tracked = cell.targets[0];
        var td = el("td", {"data-layer": layer.layer, "data-position": data.positions[column],
                           "data-token-id": top.id, "data-probability": top.probability}, visible(top.text));
        if (tracked) {
          td.setAttribute("data-target-probability", tracked.probability);
          td.setAttribute("data-target-rank", tracked.rank);
        }
        paint(td, byTarget ? tracked.probability : top.probability, 1);
        var lines = cell.top.map(function (t) { return visible(t.text) + "  " + fmt(t.probability); });
        cell.targets.forEach(function (t) {
          lines.push("tracked " + visible(t.text) + ": p " + fmt(t.probability) + ", rank " + t.rank);
        });
        td.title = "block " + layer.layer + ", token " + data.positions[column] + "\n" + lines.join("\n");
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    table.setAttribute("data-rendered", "1");
    table.setAttribute("data-layers", data.layers.length);
    table.setAttribute("data-positions", data.positions.length);
    show("lens-panel");
  }

  function renderAttribution(result) {
    var row = result.attributions[0] || [];
    var scale = Math.max.apply(null, row.map(function (v) { return isFinite(v) ? Math.abs(v) : 0; }).concat([0]));
    var strip = clear($("attribution-tokens"));
    result.inputs.forEach(function (unit, i) {
      var span = el("span", {className: "tok", "data-index": i, "data-value": row[i]}, unit.text);
      if (!unit.attributable) {
        span.classList.add("na");
        span.title = "not attributable";
      } else {
        paint(span, row[i], scale);
        span.title = fmt(row[i]);
      }
      strip.appendChild(span);
    });
    var first = result.targets[0];
    $("attribution-target").textContent = first ? "of " + visible(first.token) + " (p " + fmt(first.probability) +
      "), " + result.method : "";
    show("attribution-panel");
  }

  function renderTrace(result) {
    var holder = clear($("trace-grids"));
    var subject = result.subject || {start: -1, end: -1};
    $("trace-caption").textContent = "answer " + visible(result.answer.text) + ": clean p " + fmt(result.p_clean) +
      ", corrupted p " + fmt(result.p_corrupted) + ", " + result.samples + " sample(s)";
    result.grids.forEach(function (grid) {
      var box = holder.appendChild(el("div", {className: "trace-grid", "data-kind": grid.kind}));
      box.appendChild(el("h3", {}, grid.kind + (grid.window > 1 ? " (window " + grid.window + ")" : "")));
      var table = box.appendChild(el("table", {className: "grid", "data-kind": grid.kind}));
      var head = el("tr");
      head.appendChild(el("th", {className: "layer"}, "block \\ token"));
      result.positions.forEach(function (p) {
        var inSubject = p >= subject.start && p < subject.end;
        head.appendChild(el("th", {className: inSubject ? "subject" : "", "data-position": p},
          visible(result.tokens[p].text)));
      });
      table.appendChild(el("thead")).appendChild(head);
      var body = table.appendChild(el("tbody"));
      var scale = 0;
      grid.indirect_effects.forEach(function (row) {
        row.forEach(function (v) { scale = Math.max(scale, Math.abs(v)); });
      });
      grid.indirect_effects.forEach(function (row, r) {
        var tr = el("tr", {"data-layer": result.layers[r]});
        tr.appendChild(el("th", {className: "layer"}, result.layers[r]));
        row.forEach(function (value, c) {
          var td = el("td", {"data-layer": result.layers[r], "data-position": result.positions[c],
                             "data-effect": value}, fmt(value));
          paint(td, value, scale);
          td.title = "p after restoring " + fmt(grid.probabilities[r][c]) + ", indirect effect " + fmt(value);
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      table.setAttribute("data-rendered", "1");
    });
    show("trace-panel");
  }

  function renderDiagnosis(report, api) {
    var summary = clear($("diagnosis-summary"));
    report.summary.forEach(function (line) { summary.appendChild(el("li", {}, line)); });
    var table = clear($("diagnosis-lens"));
    var head = el("tr");
    ["block", "lens top token", "expected: rank", "p", "predicted: rank", "p"].forEach(function (h) {
      head.appendChild(el("th", {}, h));
    });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    report.lens.forEach(function (layer) {
      var tr = el("tr", {"data-layer": layer.layer});
      tr.appendChild(el("th", {className: "layer"}, layer.layer));
      var top = tr.appendChild(el("td", {}, visible(layer.top.text)));
      paint(top, layer.top.probability, 1);
      tr.appendChild(el("td", {}, layer.expected_rank));
      paint(tr.appendChild(el("td", {}, fmt(layer.expected_probability))), layer.expected_probability, 1);
      tr.appendChild(el("td", {}, layer.predicted_rank));
      paint(tr.appendChild(el("td", {}, fmt(layer.predicted_probability))), -layer.predicted_probability, 1);
      body.appendChild(tr);
    });
    var holder = clear($("diagnosis-suggestions"));
    if (!report.suggestions.length) {
      holder.appendChild(el("p", {}, "None: the model already predicts the expected token."));
    }
    report.suggestions.forEach(function (s) {
      var box = holder.appendChild(el("div", {className: "suggestion", "data-kind": s.kind}));
      box.appendChild(el("strong", {}, s.kind + ": POST " + s.endpoint));
      if (s.verified !== null && s.verified !== undefined) {
        box.appendChild(el("span", {className: s.verified ? "verified" : "unverified"},
          s.verified ? "  \u2713 tried: gives the expected token" : "  tried: did not give the expected token"));
      }
      box.appendChild(el("p", {}, s.rationale));
      box.appendChild(el("pre", {}, JSON.stringify(s.body, null, 2)));
      var copy = box.appendChild(el("button", {type: "button"}, "Copy body"));
      copy.addEventListener("click", function () {
        if (navigator.clipboard) { navigator.clipboard.writeText(JSON.stringify(s.body)); }
      });
      if (s.endpoint === "/generate") {
        var run = box.appendChild(el("button", {type: "button"}, "Run it"));
        var out = box.appendChild(el("p", {className: "output"}));
        run.addEventListener("click", async function () {
          out.textContent = "\u2026";
          try {
            var reply = await api("POST", s.endpoint, s.body);
            out.textContent = "steered: " + JSON.stringify(reply.text) +
              (reply.unsteered ? "   unsteered: " + JSON.stringify(reply.unsteered.text) : "");
          } catch (error) {
            out.textContent = error.message;
          }
        });
      }
    });
    renderAttribution(report.attribution);
    renderTrace(report.trace);
    show("diagnosis-panel");
  }

  return {el: el, clear: clear, visible: visible, fmt: fmt, renderLens: renderLens,
          renderAttribution: renderAttribution, renderTrace: renderTrace, renderDiagnosis: renderDiagnosis,
          lastLens: function () { return lastLens; }};
})();


(function () {
  "use strict";
  var POS = [214, 39, 40], NEG = [31, 119, 180], WHITE_TEXT_ABOVE = 0.55;
  var data = JSON.parse(document.getElementById("attribution-data").textContent);
  var tokens = document.querySelectorAll("#tokens .tok");
  var tabs = document.querySelectorAll("#targets [role=tab]");
  var panels = document.querySelectorAll(".target-panel");
  var strip = document.getElementById("tokens");
  var scaleMin = document.getElementById("scale-min"), scaleMax = document.getElementById("scale-max");
  var current = -1;

  function num(v) { return typeof v === "number" ? v : Number(v); }

  function paint(span, value, scale, label) {
    var cls = "tok", title = label + " \u00b7 " + String(value);
    span.style.backgroundColor = "";
    span.style.color = "";
    if (span.getAttribute("data-attributable") === "false") {
      cls += " na";
      title = label + " \u00b7 not attributable";
    } else if (!isFinite(value)) {
      cls += " nonfinite";
    } else {
      var t = scale > 0 ? Math.min(Math.abs(value) / scale, 1) : 0;
      var c = value > 0 ? POS : NEG;
      cls += value > 0 ? " pos" : (value < 0 ? " neg" : " zero");
      span.style.backgroundColor = "rgb(" + c.map(function (k) { return Math.round(255 + (k - 255) * t); })
        .join(", ") + ")";
      if (t > WHITE_TEXT_ABOVE) { span.style.color = "#fff"; }
      title += " (" + Math.round(100 * t) + "% of max |a|)";
    }
    if (span.classList.contains("empty")) { cls += " empty"; }
    span.className = cls;
    span.title = title;
    span.setAttribute("data-value", String(value));
  }

  function select(index, fromUser) {
    if (!(index >= 0 && index < panels.length)) { index = 0; }
    var row = data.rows[index];
    if (index !== current && row) {
      for (var i = 0; i < tokens.length; i++) {
        paint(tokens[i], num(row.values[i]), row.scale, data.labels[i]);
      }
      strip.setAttribute("data-target-index", String(index));
      scaleMin.textContent = "\u2212" + row.scale_text;
      scaleMax.textContent = "+" + row.scale_text;
    }
    for (var j = 0; j < panels.length; j++) { panels[j].hidden = j !== index; }
    for (var k = 0; k < tabs.length; k++) {
      var on = k === index;
      tabs[k].setAttribute("aria-selected", on ? "true" : "false");
      tabs[k].tabIndex = on ? 0 : -1;
    }
    current = index;
    document.body.setAttribute("data-selected-target", String(index));
    if (fromUser) {
      try { history.replaceState(null, "", "#target=" + index); } catch (e) { /* file: URLs may refuse */ }
    }
  }

  function fromHash() {
    var m = /^#target=(\d+)$/.exec(location.hash);
    return m ? parseInt(m[1], 10) : 0;
  }

  for (var i = 0; i < tabs.length; i++) {
    tabs[i].addEventListener("click", function (ev) {
      select(parseInt(ev.currentTarget.getAttribute("data-target-index"), 10), true);
    });
  }
  document.getElementById("targets").addEventListener("keydown", function (ev) {
    var next = {ArrowRight: current + 1, ArrowDown: current + 1, ArrowLeft: current - 1, ArrowUp: current - 1,
                Home: 0, End: tabs.length - 1}[ev.key];
    if (next === undefined || !tabs.length) { return; }
    ev.preventDefault();
    next = (next + tabs.length) % tabs.length;
    select(next, true);
    tabs[next].focus();
  });
  window.addEventListener("hashchange", function () { select(fromHash(), false); });
  select(fromHash(), false);
  document.body.setAttribute("data-rendered", "1");
})();

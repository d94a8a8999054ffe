// The debugger page: run attribution, the logit lens, causal tracing and a diagnosis against this API,
// follow jobs, browse models, variants and vectors; render.js draws the results. Plain ES2017, no
// dependencies, no network beyond this origin (the page's CSP allows only 'self').
(function () {
  "use strict";
  var R = window.InterpRender;
  var el = R.el, clear = R.clear;
  var models = [];
  var currentJob = null;

  function $(id) { return document.getElementById(id); }

  function setStatus(text, isError) {
    var status = $("status");
    status.textContent = text || "";
    status.classList.toggle("error", Boolean(isError));
  }

  function problemText(problem, status) {
    if (problem && problem.title) {
      return problem.title + (problem.field ? " (" + problem.field + ")" : "") + ": " + (problem.detail || "");
    }
    return "HTTP " + status;
  }

  async function api(method, path, body) {
    var headers = {"Accept": "application/json"};
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    var key = $("api-key").value;
    if (key) { headers["X-API-Key"] = key; }
    var response = await fetch(path, {method: method, headers: headers,
                                      body: body === undefined ? undefined : JSON.stringify(body)});
    var text = await response.text();
    var data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      var error = new Error(problemText(data, response.status));
      error.problem = data;
      throw error;
    }
    return data;
  }

  function busy(on) {
    ["run-attribution", "run-lens", "run-trace", "run-diagnose"].forEach(function (id) { $(id).disabled = on; });
  }

  function model() { return $("model").value || undefined; }
  function prompt() { return $("prompt").value; }
  function target() { return $("target").value; }
  function show(id) { $(id).hidden = false; }

  // --- models, variants, vectors ----------------------------------------------------------------

  async function loadModels() {
    try {
      models = (await api("GET", "/models")).models;
    } catch (error) {
      setStatus("Could not list models: " + error.message, true);
      models = [];
    }
    var select = clear($("model")), list = clear($("models-list"));
    models.forEach(function (m) {
      select.appendChild(el("option", {value: m.name}, m.name));
      list.appendChild(el("li", {"data-model": m.name}, m.name + " \u00b7 " + m.architecture + ", " + m.n_layers +
        " blocks, hidden " + m.hidden_size + ", " + m.dtype + " on " + m.device + ", workers " + m.workers));
    });
    await modelChanged();
  }

  async function modelChanged() {
    var chosen = models.filter(function (m) { return m.name === model(); })[0];
    var variants = chosen ? chosen.variants : [];
    var select = clear($("variant")), list = clear($("variants-list"));
    select.appendChild(el("option", {value: ""}, "(base model)"));
    variants.forEach(function (v) {
      var ref = v.name + "@" + v.version;
      select.appendChild(el("option", {value: ref}, ref));
      list.appendChild(el("li", {}, ref + (v.method ? " \u00b7 " + v.method : "")));
    });
    if (!variants.length) { list.appendChild(el("li", {className: "empty"}, "none")); }
    var vectors = clear($("vectors-list"));
    if (!chosen) { return; }
    try {
      var stored = (await api("GET", "/steering/vectors?model=" + encodeURIComponent(chosen.name))).vectors;
      stored.forEach(function (v) {
        vectors.appendChild(el("li", {}, v.ref + " \u00b7 " + v.method + ", blocks " + v.layers.join(", ")));
      });
      if (!stored.length) { vectors.appendChild(el("li", {className: "empty"}, "none")); }
    } catch (error) {
      vectors.appendChild(el("li", {className: "error"}, error.message));
    }
  }

  // --- logit lens (synchronous) -----------------------------------------------------------------

  async function runLens() {
    var body = {model: model(), prompt: prompt(), positions: "all", top_k: 5, targets: target() ? [target()] : []};
    if ($("variant").value) { body.variant = $("variant").value; }
    busy(true);
    setStatus("Reading the logit lens\u2026");
    try {
      R.renderLens(await api("POST", "/logit-lens", body));
      setStatus("Logit lens done.");
    } catch (error) {
      setStatus(error.message, true);
    } finally {
      busy(false);
    }
  }

  // --- jobs ---------------------------------------------------------------------------------------

  function showProgress(job) {
    var fraction = job.progress ? job.progress.fraction : 0;
    $("job-progress").value = fraction;
    $("job-fraction").textContent = Math.round(100 * fraction) + "%";
    $("job-stage").textContent = job.status + (job.progress ? " \u00b7 " + job.progress.stage : "");
  }

  async function runJob(label, path, body, render) {
    busy(true);
    show("job");
    $("job-kind").textContent = label;
    $("job-cancel").disabled = false;
    setStatus("Submitting " + label + "\u2026");
    try {
      var job = await api("POST", path, body);
      currentJob = job.id;
      setStatus(label + ": job " + job.id);
      while (["succeeded", "failed", "canceled"].indexOf(job.status) < 0) {
        showProgress(job);
        job = await api("GET", "/jobs/" + job.id + "?wait=2");
      }
      showProgress(job);
      if (job.status === "succeeded") {
        render(job.result);
        setStatus(label + " done.");
      } else {
        setStatus(label + " " + job.status + ": " + problemText(job.error, ""), true);
      }
    } catch (error) {
      setStatus(error.message, true);
    } finally {
      currentJob = null;
      $("job-cancel").disabled = true;
      busy(false);
    }
  }

  async function cancelJob() {
    if (!currentJob) { return; }
    try {
      await api("POST", "/jobs/" + currentJob + "/cancel");
      setStatus("Cancel requested.");
    } catch (error) {
      setStatus(error.message, true);
    }
  }

  // --- attribution ------------------------------------------------------------------------------

  function runAttribution() {
    var body = {model: model(), prompt: prompt(), target: {kind: "next_token"}};
    if ($("variant").value) { body.variant = $("variant").value; }
    runJob("attribution", "/attribute", body, R.renderAttribution);
  }

  // --- causal trace -------------------------------------------------------------------------------

  function runTrace() {
    var samples = parseInt($("samples").value, 10) || 3;
    var body = {model: model(), prompt: prompt(), subject: $("subject").value, samples: samples,
                kinds: $("kinds").value.split(",")};
    if (target()) { body.answer = target(); }
    runJob("causal trace", "/trace", body, R.renderTrace);
  }

  // --- diagnosis ----------------------------------------------------------------------------------

  function runDiagnose() {
    var samples = parseInt($("samples").value, 10) || 3;
    var body = {model: model(), prompt: prompt(), expected: target(), samples: samples,
                kinds: $("kinds").value.split(",")};
    if ($("subject").value) { body.subject = $("subject").value; }
    runJob("diagnosis", "/diagnose", body, function (report) { R.renderDiagnosis(report, api); });
  }

  // --- start --------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", async function () {
    $("run-lens").addEventListener("click", runLens);
    $("run-attribution").addEventListener("click", runAttribution);
    $("run-trace").addEventListener("click", runTrace);
    $("run-diagnose").addEventListener("click", runDiagnose);
    $("job-cancel").addEventListener("click", cancelJob);
    $("model").addEventListener("change", modelChanged);
    $("lens-colour-target").addEventListener("change", function () {
      if (R.lastLens()) { R.renderLens(R.lastLens()); }
    });
    await loadModels();
    document.body.setAttribute("data-ready", "1");
  });
})();

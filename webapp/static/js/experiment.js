// Experiment page: live training charts (polling status.json and metrics.json with a cursor)
// and, once results exist, confusion matrices and the teacher-vs-student size chart.
(function () {
  "use strict";
  const D = window.Distillery;
  const root = document.getElementById("experiment");
  if (!root || !D || !window.Plotly) return;

  const POLL_MS = 2000;
  const NAMES = {
    "train/loss": "total loss", "train/kd_loss": "KD loss", "train/hard_loss": "hard-label loss",
    "train/lr": "learning rate", "dev/accuracy": "dev accuracy", "dev/macro_f1": "dev macro-F1",
    "train/temperature": "temperature", "train/kd_weight": "KD weight", "train/hard_weight": "hard-label weight",
    "train/intermediate_loss": "intermediate loss",
  };
  const statusUrl = root.dataset.statusUrl;
  const metricsUrl = root.dataset.metricsUrl;
  const renderedActive = root.dataset.active === "1";
  let cursor = -1;

  // --- live charts -------------------------------------------------------------------
  // Each chart keeps its raw points; what is drawn is derived from them and the chart's controls
  // (smoothing, log scale, step or relative-time axis), so a control change never re-fetches.
  const charts = D.readJSON("live-charts") || [];
  const raw = {}; // chart id -> {key: {steps, values}}
  const view = {}; // chart id -> {smooth, log, time}
  let clockSamples = { steps: [], values: [] }; // system/step: seconds since start -> training step
  let sysCursor = -1;
  charts.forEach(function (chart) {
    raw[chart.id] = {};
    chart.keys.forEach(function (key) { raw[chart.id][key] = { steps: [], values: [] }; });
    view[chart.id] = { smooth: 0, log: false, time: false };
    const isDev = chart.keys[0].indexOf("dev/") === 0;
    const traces = chart.keys.map(function (key) {
      return { type: "scatter", mode: isDev ? "lines+markers" : "lines",
        name: NAMES[key] || key.replace(/^(train|system)\//, ""),
        x: [], y: [], line: { width: 2 }, marker: { size: 6 } };
    });
    const yaxis = { title: { text: chart.yaxis } };
    if (isDev) { yaxis.tickformat = ".0%"; }
    if (chart.id === "chart-lr") { yaxis.exponentformat = "e"; yaxis.rangemode = "tozero"; }
    // Axes stay hidden until the first points arrive: an empty plot's default ranges mislead.
    yaxis.visible = false;
    const xTitle = chart.system ? "seconds since start" : "step";
    Plotly.newPlot(chart.id, traces, D.layout({ xaxis: { title: { text: xTitle }, visible: false }, yaxis: yaxis,
      showlegend: chart.keys.length > 1 }), D.CONFIG);
  });
  const chartById = {};
  charts.forEach(function (chart) { chartById[chart.id] = chart; });

  function stepClock() {
    return D.clock(clockSamples.steps, clockSamples.values);
  }

  function render(chart) {
    const v = view[chart.id];
    const toTime = v.time && !chart.system ? stepClock() : null;
    const x = [], y = [], indices = [];
    let any = false;
    chart.keys.forEach(function (key, i) {
      const s = raw[chart.id][key];
      any = any || s.steps.length > 0;
      x.push(toTime ? s.steps.map(toTime) : s.steps.slice());
      y.push(D.smooth(s.values, v.smooth));
      indices.push(i);
    });
    Plotly.restyle(chart.id, { x: x, y: y }, indices);
    const empty = document.querySelector('.chart-empty[data-for="' + chart.id + '"]');
    if (any && empty && !empty.hidden) {
      empty.hidden = true;
      Plotly.relayout(chart.id, { "xaxis.visible": true, "yaxis.visible": true });
    }
  }

  function store(series, replace) {
    const touched = {};
    Object.keys(series).forEach(function (key) {
      if (key === "system/step") {
        Array.prototype.push.apply(clockSamples.steps, series[key].steps);
        Array.prototype.push.apply(clockSamples.values, series[key].values);
        return;
      }
      charts.forEach(function (chart) {
        const target = raw[chart.id][key];
        if (!target || (!series[key].steps.length && !replace)) return;
        if (replace) { target.steps = []; target.values = []; }
        Array.prototype.push.apply(target.steps, series[key].steps);
        Array.prototype.push.apply(target.values, series[key].values);
        touched[chart.id] = true;
      });
    });
    Object.keys(touched).forEach(function (id) { render(chartById[id]); });
  }
  function append(series) { store(series, false); }

  // --- chart controls: smoothing slider, log scale, relative time, CSV of each series -----
  document.querySelectorAll(".chart-controls[data-for]").forEach(function (box) {
    const chart = chartById[box.dataset.for];
    if (!chart) return;
    const slider = box.querySelector("[data-control=smooth]");
    const shown = box.querySelector("[data-smooth-value]");
    if (slider) slider.addEventListener("input", function () {
      view[chart.id].smooth = Math.min(0.99, Math.max(0, parseFloat(slider.value) || 0));
      if (shown) shown.textContent = view[chart.id].smooth.toFixed(2);
      render(chart);
    });
    const log = box.querySelector("[data-control=log]");
    if (log) log.addEventListener("change", function () {
      view[chart.id].log = log.checked;
      Plotly.relayout(chart.id, { "yaxis.type": log.checked ? "log" : "linear", "yaxis.autorange": true });
    });
    const time = box.querySelector("[data-control=time]");
    if (time) time.addEventListener("change", function () {
      view[chart.id].time = time.checked && stepClock() !== null;
      time.checked = view[chart.id].time;
      render(chart);
      Plotly.relayout(chart.id, { "xaxis.title.text": view[chart.id].time ? "seconds since start" : "step",
        "xaxis.autorange": true });
    });
  });

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      const type = r.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {
        const error = new Error("Unexpected answer (signed out?)");
        error.fatal = true;
        throw error;
      }
      return r.json().then(function (body) {
        if (!r.ok) {
          const error = new Error(body.error || ("HTTP " + r.status));
          error.fatal = r.status === 404 || r.status === 403;
          throw error;
        }
        return body;
      });
    });
  }

  // System samples are keyed by seconds since start, not by step: they have their own cursor.
  const systemKeys = ["system/step"];
  charts.forEach(function (chart) { if (chart.system) Array.prototype.push.apply(systemKeys, chart.keys); });
  const systemQuery = systemKeys.map(function (k) { return "key=" + encodeURIComponent(k); }).join("&");

  function loadSystem() {
    return getJSON(metricsUrl + "?" + systemQuery + "&after=" + encodeURIComponent(sysCursor)).then(function (body) {
      append(body.series);
      sysCursor = body.cursor;
      return body.more ? loadSystem() : null;
    });
  }

  function loadMetrics() {
    // Keep asking while the server says more points are waiting (long finished runs).
    return getJSON(metricsUrl + "?after=" + encodeURIComponent(cursor)).then(function (body) {
      append(body.series);
      cursor = body.cursor;
      return body.more ? loadMetrics() : loadSystem();
    });
  }

  // --- zoom: re-query the visible step range; the server downsamples to ~1,000 points ----
  const zoomRequest = {}; // chart id -> number of the latest request, so a stale answer is dropped
  function reloadRange(chart, range) {
    if (cursor < 0 || chart.system || view[chart.id].time) return; // time axes zoom on the points they have
    const lo = range ? Math.max(0, Math.floor(range[0])) : 0;
    // Up to the cursor only: the live poll appends what comes after it.
    const hi = range ? Math.max(lo, Math.min(cursor, Math.ceil(range[1]))) : cursor;
    const query = chart.keys.map(function (k) { return "key=" + encodeURIComponent(k); });
    query.push("from=" + lo, "to=" + hi);
    const n = (zoomRequest[chart.id] || 0) + 1;
    zoomRequest[chart.id] = n;
    getJSON(metricsUrl + "?" + query.join("&")).then(function (body) {
      if (zoomRequest[chart.id] !== n) return;
      // A poll appended points while this request was out: take the overview again, up to the new cursor.
      if (!range && cursor > hi) { reloadRange(chart, null); return; }
      const series = {};
      chart.keys.forEach(function (key) { series[key] = body.series[key] || { steps: [], values: [] }; });
      chart.keys.forEach(function (key) { raw[chart.id][key] = { steps: series[key].steps, values: series[key].values }; });
      render(chart);
    }).catch(function (error) {
      if (window.console) console.warn("Distillery: could not load the zoomed range:", error.message);
    });
  }
  charts.forEach(function (chart) {
    const el = document.getElementById(chart.id);
    if (!el || !el.on) return;
    el.on("plotly_relayout", function (event) {
      if (event["xaxis.autorange"]) { reloadRange(chart, null); return; } // double-click: full range
      let range = null;
      if (event["xaxis.range[0]"] !== undefined) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      else if (Array.isArray(event["xaxis.range"])) range = event["xaxis.range"];
      if (range) reloadRange(chart, range);
    });
  });

  // --- status header -------------------------------------------------------------------
  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  let etaSeconds = null;
  let etaAt = Date.now();

  function showStatus(st) {
    const badge = document.querySelector("#status-badge .badge");
    if (badge) {
      badge.className = "badge badge-" + st.status.toLowerCase();
      badge.textContent = st.cancel_requested && !st.finished ? "Cancelling" : st.status_label;
    }
    const progress = typeof st.progress === "number" ? Math.max(0, Math.min(1, st.progress)) : 0;
    const bar = document.querySelector(".progress-card .progress");
    if (bar) {
      bar.className = "progress progress-lg progress-" + st.status.toLowerCase();
      bar.setAttribute("aria-valuenow", (progress * 100).toFixed(1));
      bar.querySelector(".progress-fill").style.width = (progress * 100).toFixed(1) + "%";
    }
    const place = document.getElementById("queue-place");
    if (place && st.queue && st.queue.position) {
      place.textContent = "#" + st.queue.position + " in pool “" + root.dataset.pool + "” · " + st.queue.note;
    } else if (place && st.status !== "QUEUED") {
      place.hidden = true;
    }
    const logTail = document.getElementById("log-tail");
    if (logTail && st.log_tail && logTail.textContent !== st.log_tail) {
      const atBottom = logTail.scrollTop + logTail.clientHeight >= logTail.scrollHeight - 4;
      logTail.textContent = st.log_tail;  // textContent: log lines are never parsed as HTML
      if (atBottom) logTail.scrollTop = logTail.scrollHeight;
    }
    showPhase(st.status === "RUNNING" ? st.phase : null);
    setText("progress-percent", D.pct(progress, 0));
    setText("progress-step", String(st.current_step));
    setText("progress-total", st.total_steps === null ? "—" : String(st.total_steps));
    etaSeconds = st.eta_seconds;
    etaAt = Date.now();
    showEta();
    const latest = st.latest || {}, best = st.best || {};
    setText("kpi-loss", D.num(latest["train/loss"]));
    setText("kpi-lr", D.sci(latest["train/lr"]));
    setText("kpi-dev-acc", D.pct(latest["dev/accuracy"]));
    setText("kpi-best-acc", D.pct(best["dev/accuracy"]));
    setText("kpi-best-f1", D.pct(best["dev/macro_f1"]));
  }

  // The run's current phase (reading, teacher labelling, training, ...) with its own bar and ETA.
  let phaseEta = null;
  let phaseAt = Date.now();

  function phaseSummary(ph) {
    if (typeof ph.done !== "number" || typeof ph.total !== "number") return ph.label;
    const text = ph.label + " " + ph.done.toLocaleString("en") + " / " + ph.total.toLocaleString("en");
    return ph.unit ? text + " " + ph.unit + (ph.total === 1 ? "" : "s") : text;
  }

  function showPhase(ph) {
    const box = document.getElementById("phase");
    if (!box) return;
    box.hidden = !ph || !ph.label;
    if (box.hidden) { phaseEta = null; return; }
    setText("phase-label", phaseSummary(ph));
    setText("phase-rate", typeof ph.rate === "number" && !ph.finished ? D.sci(ph.rate) + " " + ph.unit + "s/s" : "");
    let fraction = ph.finished ? 1 : 0;
    if (typeof ph.done === "number" && typeof ph.total === "number" && ph.total > 0) {
      fraction = Math.max(0, Math.min(1, ph.done / ph.total));
    }
    document.getElementById("phase-fill").style.width = (fraction * 100).toFixed(1) + "%";
    box.querySelector(".progress").setAttribute("aria-valuenow", (fraction * 100).toFixed(1));
    phaseEta = typeof ph.eta_seconds === "number" ? ph.eta_seconds : null;
    phaseAt = Date.now();
  }

  function showEta() {
    const phaseWrap = document.getElementById("phase-eta-wrap");
    if (phaseWrap) {
      phaseWrap.hidden = phaseEta === null;
      if (!phaseWrap.hidden) setText("phase-eta", D.duration(phaseEta - (Date.now() - phaseAt) / 1000));
    }
    const wrap = document.getElementById("progress-eta-wrap");
    if (!wrap) return;
    wrap.hidden = etaSeconds === null || etaSeconds === undefined;
    if (!wrap.hidden) setText("progress-eta", D.duration(etaSeconds - (Date.now() - etaAt) / 1000));
  }

  function poll() {
    getJSON(statusUrl).then(function (st) {
      showStatus(st);
      return loadMetrics().then(function () {
        if (st.finished) {
          // Render the results section (and the final state) once, server-side.
          if (renderedActive) window.location.reload();
          return;
        }
        window.setTimeout(poll, POLL_MS);
      });
    }).catch(function (error) {
      if (window.console) console.warn("Distillery: polling failed:", error.message);
      if (!error.fatal) window.setTimeout(poll, POLL_MS * 2);
    });
  }

  const initialEta = document.getElementById("progress-eta");
  if (initialEta && initialEta.dataset.seconds) {
    etaSeconds = parseFloat(initialEta.dataset.seconds);
    showEta();
  }
  if (renderedActive) {
    poll();
    window.setInterval(showEta, 1000);
  } else {
    loadMetrics().catch(function (error) {
      if (window.console) console.warn("Distillery: could not load metrics:", error.message);
    });
  }

  // --- results ---------------------------------------------------------------------------
  const results = D.readJSON("results-charts");
  if (!results) return;
  const labels = (results.labels || []).map(D.plain);

  function normalised(matrix) {
    return matrix.map(function (row) {
      const total = row.reduce(function (a, b) { return a + b; }, 0);
      return row.map(function (v) { return total ? v / total : 0; });
    });
  }

  function heatmap(id, matrix, mode) {
    const el = document.getElementById(id);
    if (!el || !matrix) return;
    const z = mode === "normalised" ? normalised(matrix) : matrix;
    const many = labels.length > 12;
    Plotly.react(el, [{
      type: "heatmap", z: z, x: labels, y: labels, colorscale: [[0, "#f7f8ff"], [0.5, "#a5b4fc"], [1, "#3730a3"]], showscale: false,
      zmin: 0, zmax: mode === "normalised" ? 1 : undefined,
      texttemplate: many ? "" : (mode === "normalised" ? "%{z:.0%}" : "%{z}"),
      hovertemplate: "true: %{y}<br>predicted: %{x}<br>" + (mode === "normalised" ? "%{z:.1%}" : "%{z} examples") +
        "<extra></extra>",
      xgap: 1, ygap: 1,
    }], D.layout({
      hovermode: "closest", margin: { l: 90, r: 8, t: 8, b: 90 },
      xaxis: { title: { text: "predicted" }, type: "category", tickangle: -40, automargin: true, gridcolor: "rgba(0,0,0,0)" },
      yaxis: { title: { text: "true" }, type: "category", autorange: "reversed", automargin: true, gridcolor: "rgba(0,0,0,0)" },
    }), D.CONFIG);
  }

  function drawMatrices(mode) {
    heatmap("cm-student", results.confusion.student, mode);
    heatmap("cm-teacher", results.confusion.teacher, mode);
  }
  drawMatrices("counts");
  document.querySelectorAll("[data-cm-mode]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.querySelectorAll("[data-cm-mode]").forEach(function (b) {
        b.classList.toggle("active", b === button);
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
      drawMatrices(button.dataset.cmMode);
    });
  });

  // Student as a share of the teacher, per metric (teacher = 100%).
  const size = results.size;
  const sizeEl = document.getElementById("size-chart");
  if (size && sizeEl) {
    const names = [], shares = [], text = [];
    size.metrics.forEach(function (metric, i) {
      const t = size.teacher[i], s = size.student[i];
      if (typeof t !== "number" || typeof s !== "number" || t <= 0) return;
      names.push(metric);
      shares.push(s / t);
      text.push(formatValue(s, size.kinds[i]) + " vs " + formatValue(t, size.kinds[i]));
    });
    if (names.length) {
      Plotly.newPlot(sizeEl, [{
        type: "bar", orientation: "h", name: "student", y: names, x: shares, customdata: text,
        marker: { color: "#4f46e5" }, texttemplate: "%{x:.1%}", textposition: "outside", cliponaxis: false,
        hovertemplate: "%{y}: student = %{x:.1%} of the teacher<br>%{customdata}<extra></extra>",
      }], D.layout({
        hovermode: "closest", showlegend: false, margin: { l: 120, r: 48, t: 8, b: 40 },
        // A log axis: a 115x speed-up and a 0.9x size share one chart without flattening each other.
        xaxis: { type: "log", tickformat: ".0%", title: { text: "student as % of teacher (log scale)" } },
        yaxis: { autorange: "reversed", type: "category" },
        shapes: [{ type: "line", xref: "x", yref: "paper", x0: 1, x1: 1, y0: 0, y1: 1,
          line: { color: "#94a3b8", dash: "dot", width: 1 } }],
      }), D.CONFIG);
    }
  }

  function formatValue(value, kind) {
    if (kind === "count") return value >= 1e6 ? (value / 1e6).toFixed(1) + "M" : Math.round(value).toLocaleString();
    if (kind === "bytes") return (value / 1e6).toFixed(1) + " MB";
    if (kind === "ms") return value.toFixed(2) + " ms";
    if (kind === "pct") return D.pct(value);
    return String(value);
  }
})();

// Compare page: overlaid curves (each experiment's metrics.json) and accuracy-vs-cost scatter plots
// with the Pareto front computed on the server.
(function () {
  "use strict";
  const D = window.Distillery;
  const data = D && window.Plotly ? D.readJSON("compare-data") : null;
  if (!data) return;

  const series = data.series;
  const color = function (i) { return D.COLORS[i % D.COLORS.length]; };

  // --- curves -------------------------------------------------------------------------
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  function loadAll(url) {
    // Follow the cursor until the server says there is nothing more.
    const merged = {};
    function next(after) {
      return getJSON(url + "?after=" + encodeURIComponent(after)).then(function (body) {
        Object.keys(body.series).forEach(function (key) {
          const m = merged[key] || (merged[key] = { steps: [], values: [] });
          Array.prototype.push.apply(m.steps, body.series[key].steps);
          Array.prototype.push.apply(m.values, body.series[key].values);
        });
        return body.more ? next(body.cursor) : merged;
      });
    }
    return next(-1);
  }

  function line(i, s, metric, key, dash, mode) {
    return { type: "scatter", mode: mode, name: D.plain(s.name) + (dash ? " · " + metric : ""),
      legendgroup: "e" + s.id, x: key.steps, y: key.values, line: { color: color(i), width: 2, dash: dash || "solid" },
      marker: { size: 5 }, hovertemplate: D.plain(s.name) + " · " + metric + "<br>step %{x}: %{y:.4g}<extra></extra>" };
  }

  // Smoothing and log scale per chart (the same controls as the experiment page); redrawn from the loaded points.
  const view = { "compare-loss": { smooth: 0 }, "compare-dev": { smooth: 0 } };
  let loaded = null;

  function smoothed(id, key) {
    return { steps: key.steps, values: D.smooth(key.values, view[id].smooth) };
  }

  document.querySelectorAll(".chart-controls[data-for]").forEach(function (box) {
    const id = box.dataset.for;
    const slider = box.querySelector("[data-control=smooth]");
    const log = box.querySelector("[data-control=log]");
    slider.addEventListener("input", function () {
      view[id].smooth = Math.min(0.99, Math.max(0, parseFloat(slider.value) || 0));
      box.querySelector("[data-smooth-value]").textContent = view[id].smooth.toFixed(2);
      if (loaded) drawCurves(loaded);
    });
    log.addEventListener("change", function () {
      view[id].log = log.checked;
      if (document.getElementById(id).data) Plotly.relayout(id, { "yaxis.type": log.checked ? "log" : "linear" });
    });
  });

  function drawCurves(all) {
    loaded = all;
    const loss = [], dev = [];
    all.forEach(function (metrics, i) {
      const s = series[i];
      if (metrics["train/loss"]) {
        loss.push(line(i, s, "loss", smoothed("compare-loss", metrics["train/loss"]), null, "lines"));
      }
      if (metrics["dev/accuracy"]) {
        dev.push(line(i, s, "accuracy", smoothed("compare-dev", metrics["dev/accuracy"]), null, "lines+markers"));
      }
      if (metrics["dev/macro_f1"]) {
        const f1 = line(i, s, "macro-F1", smoothed("compare-dev", metrics["dev/macro_f1"]), "dot", "lines+markers");
        f1.showlegend = false;
        dev.push(f1);
      }
    });
    plotCurves("compare-loss", loss, { yaxis: { title: { text: "loss" } } });
    plotCurves("compare-dev", dev, { yaxis: { title: { text: "score" }, tickformat: ".0%" } });
  }

  function plotCurves(id, traces, extra) {
    const empty = document.querySelector('.chart-empty[data-for="' + id + '"]');
    if (!traces.length) {
      if (empty) empty.textContent = "No points recorded.";
      return;
    }
    if (empty) empty.hidden = true;
    extra.yaxis.type = view[id].log ? "log" : "linear";
    Plotly.react(id, traces, D.layout(Object.assign({ hovermode: "closest", xaxis: { title: { text: "step" } } },
      extra)), D.CONFIG);
  }

  Promise.all(series.map(function (s) { return loadAll(s.metrics_url); })).then(drawCurves).catch(function (exc) {
    document.querySelectorAll(".chart-empty[data-for^='compare-']").forEach(function (el) {
      el.textContent = "Could not load the metrics (" + exc.message + ").";
    });
  });

  // --- Pareto scatter plots --------------------------------------------------------------
  function scatterPlot(id, points, xTitle, unit) {
    const el = document.getElementById(id);
    if (!el) return;
    const traces = [];
    const front = [];
    points.ids.forEach(function (pk, i) {
      if (points.x[i] === null || points.y[i] === null) return;
      if (points.front[i]) front.push({ x: points.x[i], y: points.y[i] });
      traces.push({
        type: "scatter", mode: "markers+text", name: D.plain(points.names[i]), x: [points.x[i]], y: [points.y[i]],
        text: [D.plain(points.names[i])], textposition: "top center", cliponaxis: false,
        customdata: [pk], legendgroup: "e" + pk,
        marker: { color: color(i), size: points.front[i] ? 14 : 10, symbol: points.front[i] ? "star" : "circle",
          line: { color: "#ffffff", width: 1 } },
        hovertemplate: D.plain(points.names[i]) + "<br>" + xTitle + ": %{x:.3g} " + unit +
          "<br>accuracy: %{y:.1%}" + (points.front[i] ? "<br><b>on the Pareto front</b>" : "") + "<extra></extra>",
      });
    });
    if (!traces.length) return;
    front.sort(function (a, b) { return a.x - b.x; });
    traces.unshift({
      type: "scatter", mode: "lines", name: "Pareto front", x: front.map(function (p) { return p.x; }),
      y: front.map(function (p) { return p.y; }), line: { color: "#94a3b8", dash: "dash", width: 1.5, shape: "hv" },
      hoverinfo: "skip",
    });
    // Room on the right and at the top for the labels of the largest and most accurate runs.
    const xs = points.x.filter(function (v) { return v !== null; });
    const ys = points.y.filter(function (v) { return v !== null; });
    const yMin = Math.min.apply(null, ys), yMax = Math.max.apply(null, ys), pad = Math.max(0.01, (yMax - yMin) * 0.15);
    Plotly.newPlot(el, traces, D.layout({
      hovermode: "closest", showlegend: false, margin: { t: 24, r: 24 },
      xaxis: { title: { text: xTitle + " (" + unit + ")" }, range: [0, Math.max.apply(null, xs) * 1.3] },
      yaxis: { title: { text: points.quality || "test accuracy" },
               tickformat: points.quality === "test perplexity" ? "" : ".0%", range: [yMin - pad, yMax + pad] },
    }), D.CONFIG);
  }

  scatterPlot("scatter-size", data.size, "size on disk", "MB");
  scatterPlot("scatter-latency", data.latency, "latency, batch 1", "ms");
})();

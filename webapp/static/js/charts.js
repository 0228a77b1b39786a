// Plotly helpers shared by the chart pages: one look, one config, safe JSON reading.
(function () {
  "use strict";

  const COLORS = ["#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b"];
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans CJK SC", sans-serif';

  function readJSON(id) {
    // Data comes from {{ value|json_script:id }}: parsed, never evaluated.
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function layout(extra) {
    const base = {
      font: { family: FONT, size: 12, color: "#1d2433" },
      margin: { l: 56, r: 16, t: 8, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      colorway: COLORS,
      hovermode: "x unified",
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      xaxis: { gridcolor: "#eef0f4", zerolinecolor: "#e1e5eb", linecolor: "#cbd2dc" },
      yaxis: { gridcolor: "#eef0f4", zerolinecolor: "#e1e5eb", linecolor: "#cbd2dc", automargin: true },
    };
    return deepMerge(base, extra || {});
  }

  function deepMerge(target, source) {
    Object.keys(source).forEach(function (key) {
      const value = source[key];
      if (value && typeof value === "object" && !Array.isArray(value) && target[key] && typeof target[key] === "object") {
        target[key] = deepMerge(Object.assign({}, target[key]), value);
      } else {
        target[key] = value;
      }
    });
    return target;
  }

  function plain(text) {
    // Plotly renders a few HTML-like tags in labels; show user text literally instead.
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    seconds = Math.max(0, Math.round(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return h + " h " + m + " min";
    if (m) return m + " min " + s + " s";
    return s + " s";
  }

  function pct(value, digits) {
    if (typeof value !== "number" || !isFinite(value)) return "—";
    return (value * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  function num(value, digits) {
    if (typeof value !== "number" || !isFinite(value)) return "—";
    return value.toFixed(digits === undefined ? 3 : digits);
  }

  function sci(value) {
    if (typeof value !== "number" || !isFinite(value)) return "—";
    return Number(value.toPrecision(3)).toString();
  }

  // Exponential moving average as TensorBoard draws it (debiased, so the first points are not pulled to 0);
  // null points stay null and do not move the average. weight 0 returns the values unchanged.
  function smooth(values, weight) {
    if (!(weight > 0)) return values.slice();
    let last = 0, n = 0;
    return values.map(function (v) {
      if (typeof v !== "number" || !isFinite(v)) return null;
      last = last * weight + (1 - weight) * v;
      n += 1;
      return last / (1 - Math.pow(weight, n));
    });
  }

  // step -> seconds since the run started, from the `system/step` samples (seconds[i] the run was at steps[i]):
  // linear between samples, the first/last rate beyond them. null when there are no samples.
  function clock(seconds, steps) {
    if (!seconds || !seconds.length) return null;
    return function (step) {
      let lo = 0, hi = steps.length - 1;
      if (step <= steps[0]) return steps[0] > 0 ? seconds[0] * step / steps[0] : seconds[0];
      if (step >= steps[hi]) {
        if (hi === 0 || steps[hi] === steps[hi - 1]) return seconds[hi];
        return seconds[hi] + (step - steps[hi]) * (seconds[hi] - seconds[hi - 1]) / (steps[hi] - steps[hi - 1]);
      }
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (steps[mid] <= step) lo = mid; else hi = mid;
      }
      const span = steps[hi] - steps[lo];
      return span ? seconds[lo] + (step - steps[lo]) * (seconds[hi] - seconds[lo]) / span : seconds[lo];
    };
  }

  window.Distillery = { smooth: smooth, clock: clock, COLORS: COLORS, CONFIG: CONFIG, readJSON: readJSON, plain: plain, layout: layout, duration: duration,
    pct: pct, num: num, sci: sci };
})();

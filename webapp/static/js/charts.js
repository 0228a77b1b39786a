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

  window.Distillery = { COLORS: COLORS, CONFIG: CONFIG, readJSON: readJSON, plain: plain, layout: layout, duration: duration,
    pct: pct, num: num, sci: sci };
})();

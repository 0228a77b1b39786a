// LM dataset page: prompt and response length histograms (bins computed on the server).
(function () {
  "use strict";
  const D = window.Distillery;
  const data = D.readJSON("lm-lengths-data");
  if (!data) return;
  [["prompt", "lm-prompt-lengths", "Prompt"], ["response", "lm-response-lengths", "Response"]].forEach(function (spec) {
    const hist = data[spec[0]], el = document.getElementById(spec[1]);
    if (!el || !hist || !hist.counts.length) return;
    const x = hist.counts.map(function (_, i) { return (hist.edges[i] + hist.edges[i + 1] - 1) / 2; });
    const width = hist.edges[1] - hist.edges[0];
    Plotly.newPlot(el, [{ type: "bar", x: x, y: hist.counts, width: Array(x.length).fill(width * 0.95),
      customdata: hist.counts.map(function (_, i) { return [hist.edges[i], hist.edges[i + 1] - 1]; }),
      hovertemplate: "%{customdata[0]}–%{customdata[1]} " + data.unit + ": %{y:,} rows<extra></extra>" }],
    D.layout({ title: { text: spec[2] + " length" }, hovermode: "closest", showlegend: false,
      xaxis: { title: { text: data.unit } }, yaxis: { title: { text: "rows" } } }), D.CONFIG);
  });
})();

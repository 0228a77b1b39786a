// Dataset page: class counts per split as grouped bars.
(function () {
  "use strict";
  const D = window.Distillery;
  const data = D.readJSON("class-counts");
  const el = document.getElementById("class-chart");
  if (!data || !el || !data.splits.length) return;
  const labels = data.labels.map(D.plain);
  const traces = data.splits.map(function (split) {
    return { type: "bar", name: split.name, x: labels, y: split.counts,
      hovertemplate: "%{x}: %{y:,} rows<extra>" + split.name + "</extra>" };
  });
  Plotly.newPlot(el, traces, D.layout({
    barmode: "group", hovermode: "closest", bargap: 0.25,
    xaxis: { type: "category", tickangle: data.labels.length > 8 ? -35 : 0, automargin: true },
    yaxis: { title: { text: "rows" } },
  }), D.CONFIG);
})();

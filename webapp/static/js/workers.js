// Workers & GPUs page: the job processes' CPU, memory and GPU load, re-read every few seconds.
(function () {
  "use strict";
  const table = document.getElementById("worker-table");
  if (!table || !window.fetch) return;
  const POLL_MS = 5000;

  function poll() {
    fetch(table.dataset.usageUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (answer) {
        table.querySelectorAll("[data-usage-for]").forEach(function (cell) {
          const w = answer.workers[cell.dataset.usageFor];
          cell.textContent = w && w.text ? w.text : "—";  // textContent: never parsed as HTML
        });
        table.dataset.liveAt = String(Date.now());
      }).catch(function (error) {
        if (window.console) console.warn("Distillery: utilisation update failed:", error.message);
      }).then(function () { window.setTimeout(poll, POLL_MS); });
  }
  window.setTimeout(poll, POLL_MS);
})();

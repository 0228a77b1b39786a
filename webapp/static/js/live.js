// Experiments list and queue board: keep rows current without a reload. Every few seconds it asks
// live.json about the rows on the page; a changed status or progress is patched in place, and when a run
// starts, ends or is added, the rows are re-read from the page itself (unless the user is busy with them).
(function () {
  "use strict";
  const body = document.querySelector("tbody[data-live-region]");
  if (!body || !window.fetch) return;
  const table = body.closest("table");
  const url = table.dataset.liveUrl;
  const POLL_MS = 5000;

  function ids() {
    return Array.prototype.map.call(body.querySelectorAll("tr[data-experiment]"), function (row) {
      return row.dataset.experiment;
    });
  }
  let newest = null;

  function busy() {
    const active = document.activeElement;
    return (active && body.contains(active) && active.tagName !== "BODY") ||
      body.querySelector("input[type=checkbox]:checked") !== null || body.querySelector("[data-editing]") !== null;
  }

  function patch(row, st) {
    const badge = row.querySelector(".badge");
    if (badge) {
      badge.className = "badge badge-" + st.status.toLowerCase();
      badge.textContent = st.cancel_requested && st.active ? "Cancelling" : st.status_label;
    }
    const bar = row.querySelector(".progress");
    if (bar && typeof st.progress === "number") {
      const pct = Math.max(0, Math.min(1, st.progress)) * 100;
      bar.setAttribute("aria-valuenow", pct.toFixed(1));
      bar.querySelector(".progress-fill").style.width = pct.toFixed(1) + "%";
      const text = row.querySelector(".progress-text");
      if (text) text.textContent = pct.toFixed(0) + "%";
    }
    row.dataset.status = st.status;
  }

  function refreshRows() {
    return fetch(window.location.href, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.querySelector("tbody[data-live-region]");
      if (fresh && !busy()) body.innerHTML = fresh.innerHTML;
    });
  }

  function poll() {
    const query = "?ids=" + encodeURIComponent(ids().join(","));
    fetch(url + query, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
        throw new Error("HTTP " + r.status);
      }
      return r.json();
    }).then(function (answer) {
      let reread = newest !== null && answer.newest !== newest;
      newest = answer.newest;
      body.querySelectorAll("tr[data-experiment]").forEach(function (row) {
        const st = answer.experiments[row.dataset.experiment];
        if (!st) return; // another team's row (the queue board shows them to staff): left as it is
        const before = row.querySelector(".badge");
        if (before && before.classList.contains("badge-" + st.status.toLowerCase()) === false) reread = true;
        patch(row, st);
      });
      body.dataset.liveAt = String(Date.now());
      return reread ? refreshRows() : null;
    }).catch(function (error) {
      if (window.console) console.warn("Distillery: live update failed:", error.message);
    }).then(function () { window.setTimeout(poll, POLL_MS); });
  }
  window.setTimeout(poll, 0);
})();

// An uploaded checkpoint's page: poll its status.json while the archive is unpacked, then reload
// to show its details (or the reason it failed).
(function () {
  "use strict";
  const card = document.getElementById("unpacking");
  if (!card) return;
  const fill = document.getElementById("unpack-fill");
  const percent = document.getElementById("unpack-percent");
  const phase = document.getElementById("unpack-phase");
  const bar = card.querySelector("[role=progressbar]");

  async function poll() {
    let state;
    try {
      const response = await fetch(card.dataset.statusUrl, {headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error(String(response.status));
      state = await response.json();
    } catch (err) {
      setTimeout(poll, 5000);  // the server restarting is no reason to give up
      return;
    }
    if (state.status !== "UNPACKING") {
      window.location.reload();
      return;
    }
    fill.style.width = state.percent + "%";
    bar.setAttribute("aria-valuenow", state.percent);
    percent.textContent = state.percent + " %";
    phase.textContent = state.percent >= 100 ? "checking the checkpoint…" : "unpacking…";
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();

// Experiments list: pick rows to compare, edit tags and notes inline (POST JSON with the CSRF token).
(function () {
  "use strict";
  const table = document.getElementById("experiment-table");
  if (!table) return;

  // --- compare selection -------------------------------------------------------------
  const form = document.getElementById("compare-form");
  const button = document.getElementById("compare-button");
  const count = document.getElementById("compare-count");
  const MAX_COMPARE = parseInt(form.dataset.max, 10) || 12;

  function selected() {
    return Array.prototype.map.call(table.querySelectorAll("input[name=ids]:checked"), function (box) {
      return box.value;
    });
  }

  function showSelection() {
    const ids = selected();
    button.disabled = ids.length < 2 || ids.length > MAX_COMPARE;
    count.textContent = ids.length === 0 ? "Select experiments to compare"
      : ids.length === 1 ? "1 selected · pick one more"
      : ids.length > MAX_COMPARE ? ids.length + " selected · compare at most " + MAX_COMPARE : ids.length + " selected";
    table.querySelectorAll("tbody tr[data-experiment]").forEach(function (row) {
      row.classList.toggle("selected", row.querySelector("input[name=ids]").checked);
    });
  }

  table.addEventListener("change", function (event) {
    if (event.target.name === "ids") showSelection();
  });
  form.addEventListener("submit", function (event) {
    // One readable parameter: /compare/?ids=3,7,9 (the form's ids=3&ids=7 also works without JS).
    event.preventDefault();
    const ids = selected();
    if (ids.length >= 2) window.location.href = form.action + "?ids=" + ids.join(",");
  });
  showSelection();

  // --- inline tags and notes ----------------------------------------------------------
  const editor = document.getElementById("annotate-editor");
  const tagsInput = document.getElementById("annotate-tags");
  const notesInput = document.getElementById("annotate-notes");
  const error = document.getElementById("annotate-error");
  const csrf = editor.querySelector("input[name=csrfmiddlewaretoken]").value;
  let row = null;

  function currentTags(tr) {
    return Array.prototype.map.call(tr.querySelectorAll("[data-tags] .tag"), function (a) { return a.textContent; });
  }

  function open(tr) {
    close();
    row = tr;
    tagsInput.value = currentTags(tr).join(", ");
    notesInput.value = tr.querySelector("[data-full-notes]").content.textContent;
    error.hidden = true;
    // The editor sits in its own table row under the experiment, spanning every column.
    const holder = document.createElement("tr");
    holder.className = "annotate-row";
    const cell = document.createElement("td");
    cell.colSpan = tr.children.length;
    holder.appendChild(cell);
    cell.appendChild(editor);
    tr.after(holder);
    editor.hidden = false;
    tagsInput.focus();
  }

  function close() {
    if (!row) return;
    const holder = editor.closest("tr.annotate-row");
    editor.hidden = true;
    document.querySelector("main").appendChild(editor);
    if (holder) holder.remove();
    row = null;
  }

  function render(tr, body) {
    const tags = tr.querySelector("[data-tags]");
    tags.replaceChildren();
    body.tags.forEach(function (name) {
      const a = document.createElement("a");
      a.className = "tag";
      a.href = "?tag=" + encodeURIComponent(name);
      a.textContent = name; // text, never HTML
      tags.appendChild(a);
    });
    const notes = tr.querySelector("[data-notes]");
    notes.textContent = body.notes.length > 160 ? body.notes.slice(0, 159) + "…" : body.notes;
    notes.hidden = !body.notes;
    tr.querySelector("[data-full-notes]").content.textContent = body.notes;
  }

  function save() {
    const tr = row;
    const payload = { tags: tagsInput.value.split(",").map(function (t) { return t.trim(); }).filter(Boolean),
      notes: notesInput.value };
    document.getElementById("annotate-save").disabled = true;
    fetch(tr.dataset.annotateUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify(payload),
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (!result.ok) throw new Error(result.body.error || "Could not save.");
      render(tr, result.body);
      close();
    }).catch(function (exc) {
      error.textContent = exc.message || "Could not save.";
      error.hidden = false;
    }).finally(function () {
      document.getElementById("annotate-save").disabled = false;
    });
  }

  table.addEventListener("click", function (event) {
    const edit = event.target.closest("[data-edit]");
    if (edit) open(edit.closest("tr"));
  });
  document.getElementById("annotate-save").addEventListener("click", save);
  document.getElementById("annotate-cancel").addEventListener("click", close);
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
    if (event.key === "Enter" && event.target === tagsInput) { event.preventDefault(); save(); }
  });
})();

// New-experiment form: show the chosen student's options and matches panel; edit match rows in a table.
// Progressive: without this script every option is visible and the rows are edited as JSON.
(function () {
  "use strict";
  const form = document.getElementById("experiment-form");
  if (!form) return;

  // -- student options: only the chosen student's block --
  // A student sweep ("textcnn, bilstm") shows the swept students' options too.
  const studentSelect = form.querySelector("select[name=student_type]");
  const studentSweep = form.querySelector("input[name=sweep_student_type]");
  function showStudent() {
    const chosen = [studentSelect.value].concat(
      studentSweep ? studentSweep.value.toLowerCase().split(",").map(function (s) { return s.trim(); }) : []);
    form.querySelectorAll(".student-options").forEach(function (block) {
      block.hidden = !block.dataset.student.split(" ").some(function (s) { return chosen.indexOf(s) >= 0; });
    });
  }
  if (studentSelect) {
    studentSelect.addEventListener("change", showStudent);
    if (studentSweep) studentSweep.addEventListener("input", showStudent);
    showStudent();
  }

  // -- matches mode: one panel at a time --
  const modeInputs = form.querySelectorAll("input[name=matches_mode]");
  function currentMode() {
    const checked = form.querySelector("input[name=matches_mode]:checked");
    return checked ? checked.value : "none";
  }
  function showMode() {
    const mode = currentMode();
    form.querySelectorAll(".matches-panel").forEach(function (panel) { panel.hidden = panel.dataset.mode !== mode; });
    form.querySelectorAll(".segment").forEach(function (label) {
      label.classList.toggle("active", label.querySelector("input").checked);
    });
  }
  modeInputs.forEach(function (input) { input.addEventListener("change", showMode); });
  showMode();

  // -- match rows: a table that writes JSON into the matches textarea --
  const editor = document.getElementById("match-editor");
  const textarea = form.querySelector("textarea[name=match_rows]");
  const choicesEl = document.getElementById("match-choices");
  if (!editor || !textarea || !choicesEl) return;
  const choices = JSON.parse(choicesEl.textContent);
  const body = editor.querySelector("tbody");
  let rows;
  try {
    rows = textarea.value.trim() ? JSON.parse(textarea.value) : [];
    if (!Array.isArray(rows)) throw new Error("not a list");
  } catch (e) {
    return; // unreadable JSON: keep the textarea so the person sees and fixes it
  }
  editor.hidden = false;
  textarea.closest(".field").hidden = true; // its errors are shown at the top of the section

  function select(options, value) {
    const el = document.createElement("select");
    options.forEach(function (name) {
      const opt = document.createElement("option");
      opt.value = name; opt.textContent = name; opt.selected = name === value;
      el.appendChild(opt);
    });
    return el;
  }
  function numberInput(value, step) {
    const el = document.createElement("input");
    el.type = "number"; el.step = step; el.min = "0";
    el.value = value === undefined || value === null ? "" : String(value);
    return el;
  }
  function cell(child) {
    const td = document.createElement("td");
    if (child) td.appendChild(child);
    return td;
  }
  function toNumber(text, integer) {
    if (text.trim() === "") return null;
    const value = Number(text);
    return integer && Number.isInteger(value) ? value : (isFinite(value) ? value : text);
  }
  function save() {
    const out = Array.prototype.map.call(body.rows, function (tr) {
      const get = function (key) { return tr.querySelector("[data-key=" + key + "]"); };
      const projS = get("projS").value, projT = get("projT").value;
      return {
        layer_T: toNumber(get("layer_T").value, true), layer_S: toNumber(get("layer_S").value, true),
        feature: get("feature").value, loss: get("loss").value,
        weight: toNumber(get("weight").value, false) === null ? 1 : toNumber(get("weight").value, false),
        proj: projS.trim() || projT.trim() ? ["linear", toNumber(projS, true), toNumber(projT, true)] : null,
      };
    });
    textarea.value = out.length ? JSON.stringify(out) : "";
  }
  function addRow(row) {
    const tr = document.createElement("tr");
    const fields = [
      ["layer_T", numberInput(row.layer_T, "1")], ["layer_S", numberInput(row.layer_S, "1")],
      ["feature", select(choices.features, row.feature || "hidden")],
      ["loss", select(choices.losses, row.loss || "hidden_mse")],
      ["weight", numberInput(row.weight === undefined ? 1 : row.weight, "any")],
    ];
    const index = document.createElement("td");
    index.className = "muted row-index";
    tr.appendChild(index);
    fields.forEach(function (pair) {
      pair[1].dataset.key = pair[0];
      pair[1].setAttribute("aria-label", pair[0]);
      tr.appendChild(cell(pair[1]));
    });
    const proj = Array.isArray(row.proj) ? row.proj : [];
    const projS = numberInput(proj[1], "1"), projT = numberInput(proj[2], "1");
    projS.dataset.key = "projS"; projT.dataset.key = "projT";
    projS.placeholder = "dim_S"; projT.placeholder = "dim_T";
    projS.setAttribute("aria-label", "proj dim_S"); projT.setAttribute("aria-label", "proj dim_T");
    const projCell = cell(projS);
    projCell.className = "proj-cell";
    projCell.appendChild(document.createTextNode(" → "));
    projCell.appendChild(projT);
    tr.appendChild(projCell);
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "icon-btn"; remove.textContent = "✕";
    remove.setAttribute("aria-label", "Remove row");
    remove.addEventListener("click", function () { tr.remove(); renumber(); save(); });
    tr.appendChild(cell(remove));
    body.appendChild(tr);
    renumber();
  }
  function renumber() {
    Array.prototype.forEach.call(body.rows, function (tr, i) { tr.cells[0].textContent = String(i); });
  }
  rows.forEach(addRow);
  // The server names the row (and key) it refused: mark them.
  const errorRow = body.rows[parseInt(editor.dataset.errorRow, 10)];
  if (errorRow) {
    errorRow.classList.add("row-error");
    const key = { proj: "projS" }[editor.dataset.errorKey] || editor.dataset.errorKey;
    const input = key && errorRow.querySelector("[data-key=" + key + "]");
    if (input) input.classList.add("input-error");
  }
  body.addEventListener("input", save);
  body.addEventListener("change", save);
  document.getElementById("match-add").addEventListener("click", function () {
    addRow({ layer_T: 0, layer_S: 0, feature: "hidden", loss: "hidden_mse", weight: 1 });
    save();
  });
  form.addEventListener("submit", save);
})();

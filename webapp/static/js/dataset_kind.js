// New-experiment form: offer only the datasets of the chosen run kind (the server checks it again on submit).
(function () {
  "use strict";
  const kind = document.querySelector('select[name="kind"]');
  const dataset = document.querySelector('select[name="dataset"]');
  if (!kind || !dataset) return;

  function wanted() { return kind.value === "lm_distill" ? "lm" : "classification"; }

  function update() {
    const want = wanted();
    Array.prototype.forEach.call(dataset.options, function (option) {
      const other = option.dataset.kind && option.dataset.kind !== want;
      option.hidden = other;
      option.disabled = other;
    });
    const chosen = dataset.options[dataset.selectedIndex];
    const fitting = Array.prototype.filter.call(dataset.options, function (o) { return o.dataset.kind === want; });
    // A dataset of the other kind is never left chosen; the only one of this kind is preselected, as the server does.
    if (chosen && chosen.disabled) dataset.value = fitting.length === 1 ? fitting[0].value : "";
    else if (!dataset.value && fitting.length === 1) dataset.value = fitting[0].value;
  }

  // "Distil on it" from a language-model dataset's page preselects that dataset: take the run kind from it.
  const preselected = dataset.options[dataset.selectedIndex];
  if (preselected && preselected.dataset.kind === "lm" && kind.value !== "lm_distill") {
    kind.value = "lm_distill";
    kind.dispatchEvent(new Event("change", { bubbles: true }));
  }
  kind.addEventListener("change", update);
  update();
})();

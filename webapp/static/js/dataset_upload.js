// Dataset upload: show the inputs of the chosen kind (language-model column keys, or the classification columns).
(function () {
  "use strict";
  const kind = document.querySelector('select[name="kind"]');
  if (!kind) return;
  const LM = ["lm_format", "prompt_key", "response_key", "messages_key", "text_key"];
  const CLASSIFICATION = ["has_header", "text_column", "text_pair_column", "label_column", "label_names"];

  function show(names, visible) {
    names.forEach(function (name) {
      const field = document.getElementById("field-" + name);
      if (field) field.hidden = !visible;
    });
  }

  function update() {
    const lm = kind.value === "lm";
    show(LM, lm);
    show(CLASSIFICATION, !lm);
  }

  kind.addEventListener("change", update);
  update();
})();

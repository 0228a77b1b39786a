// "Try it": send a few texts to predict.json and show teacher and student predictions with probabilities.
(function () {
  "use strict";
  const form = document.getElementById("try-it-form");
  if (!form) return;
  const table = document.getElementById("try-it-results");
  const error = document.getElementById("try-it-error");
  const status = document.getElementById("try-it-status");
  const submit = document.getElementById("try-it-submit");
  const TOP = 3;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // user text is always text, never HTML
    return node;
  }

  function prediction(labels, result, agree) {
    const cell = el("td", "prediction");
    const top = labels.map(function (label, i) { return { label: label, p: result.probabilities[i] }; })
      .sort(function (a, b) { return b.p - a.p; }).slice(0, TOP);
    top.forEach(function (item, rank) {
      const line = el("div", "prob-line" + (rank === 0 ? " prob-top" : ""));
      line.appendChild(el("span", "prob-label", item.label));
      const bar = el("span", "prob-bar");
      const fill = el("span", "prob-fill" + (rank === 0 && !agree ? " prob-disagree" : ""));
      fill.style.width = (item.p * 100).toFixed(1) + "%";
      bar.appendChild(fill);
      line.appendChild(bar);
      line.appendChild(el("span", "prob-value", (item.p * 100).toFixed(1) + "%"));
      cell.appendChild(line);
    });
    return cell;
  }

  function show(body) {
    const tbody = table.querySelector("tbody");
    tbody.replaceChildren();
    body.predictions.forEach(function (p) {
      const tr = el("tr");
      tr.appendChild(el("td", "text-cell", p.text));
      tr.appendChild(prediction(body.labels, p.teacher, true));
      tr.appendChild(prediction(body.labels, p.student, p.agree));
      tr.appendChild(el("td", "num " + (p.agree ? "agree" : "disagree"), p.agree ? "✓" : "✗"));
      tbody.appendChild(tr);
    });
    table.hidden = false;
    const agreed = body.predictions.filter(function (p) { return p.agree; }).length;
    status.textContent = "The student agrees with the teacher on " + agreed + " of " + body.predictions.length + ".";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const texts = form.elements.texts.value.split("\n").map(function (t) { return t.trim(); }).filter(Boolean);
    error.hidden = true;
    submit.disabled = true;
    status.textContent = "Predicting…";
    fetch(form.action, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json",
        "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
      body: JSON.stringify({ texts: texts }),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
        return body;
      });
    }).then(show).catch(function (exc) {
      status.textContent = "";
      error.textContent = exc.message;
      error.hidden = false;
    }).finally(function () { submit.disabled = false; });
  });
})();

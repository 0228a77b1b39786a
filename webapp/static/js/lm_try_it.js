// Language-model "Try it": POST a prompt to generate/ and show the teacher's and student's texts as they stream
// (server-sent events read from the response body: EventSource cannot POST).
(function () {
  "use strict";
  const form = document.getElementById("lm-try-it-form");
  if (!form) return;
  const out = { teacher: document.getElementById("lm-try-it-teacher"),
    student: document.getElementById("lm-try-it-student") };
  const error = document.getElementById("lm-try-it-error");
  const status = document.getElementById("lm-try-it-status");
  const submit = document.getElementById("lm-try-it-submit");

  function fail(message) {
    status.textContent = "";
    error.textContent = message;
    error.hidden = false;
  }

  function handle(name, data) {
    if (name === "teacher" || name === "student") out[name].textContent = data.text; // text, never HTML
    else if (name === "done") status.textContent = "Done.";
    else if (name === "error") fail(data.error);
  }

  // One "event: x\ndata: {...}" block; returns nothing for comments or partial blocks.
  function parse(block) {
    let name = "message", data = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event: ") === 0) name = line.slice(7);
      else if (line.indexOf("data: ") === 0) data += line.slice(6);
    });
    if (data) handle(name, JSON.parse(data));
  }

  async function read(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    error.hidden = true;
    out.teacher.textContent = "";
    out.student.textContent = "";
    submit.disabled = true;
    status.textContent = "Generating…";
    try {
      const response = await fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream",
          "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
        body: JSON.stringify({ prompt: form.elements.prompt.value,
          max_new_tokens: Number(form.elements.max_new_tokens.value) }),
      });
      if (!response.ok) {
        const body = await response.json().catch(function () { return {}; });
        throw new Error(body.error || ("HTTP " + response.status));
      }
      await read(response);
    } catch (exc) {
      fail(exc.message);
    } finally {
      submit.disabled = false;
    }
  });
})();

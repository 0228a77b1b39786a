// Small behaviours shared by every page.
(function () {
  "use strict";
  // <form data-confirm="Question?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();

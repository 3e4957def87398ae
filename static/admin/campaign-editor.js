/* Campaign editor niceties; the page works without them (docs/DESIGN.md, "Marketer web app").
   Ctrl+S (Cmd+S) saves the draft; leaving with unsaved changes asks first; the preview
   controls refresh the preview as they change. No build step, no inline script (CSP). */
(function () {
  "use strict";
  var form = document.querySelector("form[data-editor]");
  if (form) {
    var dirty = false;
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("change", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
    window.addEventListener("beforeunload", function (event) {
      if (dirty) { event.preventDefault(); event.returnValue = ""; }
    });
    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "s" || event.key === "S")) {
        event.preventDefault();
        var save = form.querySelector("button[data-save]");
        if (save && !save.closest("fieldset[disabled]")) { form.requestSubmit(save); }
      }
    });
  }
  var preview = document.querySelector("form[data-preview]");
  if (preview) {
    preview.addEventListener("change", function (event) {
      if (event.target.name === "format") { preview.requestSubmit(); }
    });
  }
})();

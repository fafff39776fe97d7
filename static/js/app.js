// Plain JavaScript only where htmx cannot: dialogs, menus, kiosk staleness.
(function () {
  "use strict";
  // Close an open <details> menu on Escape or a click outside it.
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (d) { d.removeAttribute("open"); d.querySelector("summary").focus(); });
    }
  });
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.menu[open]").forEach(function (d) { if (!d.contains(e.target)) d.removeAttribute("open"); });
  });
  // A fragment swapped into #dialog opens it as a modal; a [data-close-dialog] button closes it.
  document.addEventListener("htmx:afterSwap", function (e) {
    var dlg = document.getElementById("dialog");
    if (e.detail.target === dlg && dlg.innerHTML.trim() && !dlg.open) dlg.showModal();
  });
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-close-dialog]");
    if (btn) { var dlg = btn.closest("dialog"); if (dlg) { dlg.close(); dlg.innerHTML = ""; } }
  });
  // Errors from htmx requests: show them instead of failing silently.
  document.addEventListener("htmx:responseError", function (e) {
    var target = e.detail.target;
    var msg = document.documentElement.lang === "de" ? "Das hat nicht geklappt. Bitte erneut versuchen." : "That did not work. Please try again.";
    if (e.detail.xhr && e.detail.xhr.status === 403) msg = document.documentElement.lang === "de" ? "Dafür fehlt Ihnen die Berechtigung." : "You do not have permission to do this.";
    var el = document.createElement("p");
    el.className = "flash flash-error";
    el.setAttribute("role", "alert");
    el.textContent = msg;
    var main = document.getElementById("main");
    if (main) main.prepend(el);
    if (target && target.hasAttribute && target.hasAttribute("data-error-slot")) target.textContent = msg;
  });
})();

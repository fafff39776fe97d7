// Plain JavaScript only where htmx cannot: dialogs, menus, kiosk staleness.
(function () {
  "use strict";
  // The strings this file shows come from the catalogs: base.html renders them, in the
  // operator's language, as JSON in <script id="js-strings">. Read at use, since a boosted
  // navigation (a language switch included) replaces the body and the block with it.
  function text(key) {
    var el = document.getElementById("js-strings");
    var strings = el ? JSON.parse(el.textContent) : {};
    return strings[key] || key;
  }
  // The stylesheet folds the tablet menu only when this script runs (else the links stay shown).
  document.documentElement.classList.add("js");
  document.addEventListener("click", function (e) {
    var toggle = e.target.closest(".nav-toggle");
    if (!toggle) return;
    var nav = toggle.closest(".sidebar");
    var open = nav.classList.toggle("is-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
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
    // Dashboard cards and the banner slot report their own failures (below).
    if (e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("[data-card], #banner-slot")) return;
    var target = e.detail.target;
    var xhr = e.detail.xhr;
    // A refused input (400/422) says why in the server's words (X-Error-Message); else a generic line.
    var said = xhr && xhr.getResponseHeader("X-Error-Message");
    var msg = said ? decodeURIComponent(said) : text(xhr && xhr.status === 403 ? "forbidden" : "request_failed");
    // One message at a time: a newer failure replaces the previous one.
    document.querySelectorAll("#main > p.flash-error[data-request-error]").forEach(function (old) { old.remove(); });
    var el = document.createElement("p");
    el.className = "flash flash-error";
    el.setAttribute("role", "alert");
    el.setAttribute("data-request-error", "");
    el.textContent = msg;
    var main = document.getElementById("main");
    if (main) main.prepend(el);
    if (target && target.hasAttribute && target.hasAttribute("data-error-slot")) target.textContent = msg;
    // What the target shows no longer answers the request: say so until a request succeeds.
    if (target && target.classList && target !== main && target.id !== "dialog") target.classList.add("is-outdated");
  });
  // A refusal the server explains (X-Error-Message, also on a 422) is no page to swap in: it is
  // shown as a message (htmx:responseError, above) over the rows it did not replace.
  // The same target answered again: its rows are current, the message is past.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr && e.detail.xhr.getResponseHeader("X-Error-Message")) {
      e.detail.shouldSwap = false;
      e.detail.isError = true;
      return;
    }
    var target = e.detail.target;
    if (!e.detail.shouldSwap || e.detail.isError || !target || !target.classList || !target.classList.contains("is-outdated")) return;
    target.classList.remove("is-outdated");
    document.querySelectorAll("#main > p.flash-error[data-request-error]").forEach(function (old) { old.remove(); });
  });

  // --- Dashboard: charts, per-card errors, kiosk staleness, banners. ---
  // Plotly (4.8 MB) is loaded once, on the first page that has a chart.
  var plotlyLoading = null;
  function withPlotly(src, fn) {
    if (window.Plotly) return fn();
    if (!plotlyLoading) {
      plotlyLoading = [];
      var s = document.createElement("script");
      s.src = src;
      s.onload = function () { var q = plotlyLoading; plotlyLoading = null; q.forEach(function (f) { f(); }); };
      document.head.appendChild(s);
    }
    plotlyLoading.push(fn);
  }
  // Kiosk: a [data-plotly-fit] chart fills its card, which the page's grid sizes to the screen,
  // in type as large as the card's own; the card's title names the chart, so the figure's title
  // and axis titles go, and dates are ticked without their year (a second line that does not fit).
  // Plotly's `responsive` follows the window; the observer follows the card (it changes size when
  // a neighbour loads or a banner appears) and draws the chart again when its type size changed.
  function draw(el) {
    var fig = JSON.parse(el.querySelector("script[type='application/json']").textContent);
    if (el.hasAttribute("data-plotly-fit")) fitToCard(el, fig);
    var config = {displayModeBar: false, responsive: true};
    if (fig.locale) {  // the operator's month names and number symbols (figures.plotly_locale)
      window.Plotly.register({moduleType: "locale", name: fig.locale.name, dictionary: {}, format: fig.locale.format});
      config.locale = fig.locale.name;
    }
    return window.Plotly.react(el, fig.data, fig.layout, config);
  }
  function fitToCard(el, fig) {
    var px = parseFloat(window.getComputedStyle(el).fontSize);
    var scale = px / 15;
    var layout = fig.layout;
    el.setAttribute("data-plotly-px", px);
    delete layout.height;
    layout.autosize = true;
    layout.title = {text: ""};
    layout.font = Object.assign({}, layout.font, {size: Math.round(px * 0.8)});
    // Bars per category (MRR movements, plans) lie down: their names, tilted under a short cell,
    // would not fit it; beside the bars, every one of them in slightly smaller type, they do.
    var first = fig.data.length && fig.data[0].x && fig.data[0].x[0];
    var category = typeof first === "string" && !/^\d{4}-\d{2}-\d{2}/.test(first);
    if (category) {
      fig.data.forEach(function (trace) { var x = trace.x; trace.x = trace.y; trace.y = x; trace.orientation = "h"; });
      var values = layout.yaxis;
      layout.yaxis = Object.assign({}, layout.xaxis, {autorange: "reversed", dtick: 1, tickfont: {size: Math.round(px * 0.7)}});
      layout.xaxis = values;
    }
    layout.xaxis = Object.assign({}, layout.xaxis, {title: {text: ""}, automargin: true});
    if (!category) layout.xaxis.tickformat = "%b %-d";
    layout.yaxis = Object.assign({}, layout.yaxis, {title: {text: ""}, automargin: true});
    layout.margin = {l: px * 0.4, r: px * 0.4, t: layout.showlegend === false ? px * 0.6 : px * 1.6, b: px * 0.4};
    fig.data.forEach(function (trace) {
      if (trace.line && trace.line.width) trace.line.width *= scale;
      if (trace.marker && trace.marker.size) trace.marker.size *= scale;
    });
  }
  var fitted = window.ResizeObserver ? new ResizeObserver(function (entries) {
    entries.forEach(function (e) {
      var el = e.target;
      if (!el.isConnected || !window.Plotly) return;
      if (parseFloat(window.getComputedStyle(el).fontSize) !== parseFloat(el.getAttribute("data-plotly-px"))) draw(el);
      else window.Plotly.Plots.resize(el);
    });
  }) : null;
  function renderCharts(root) {
    if (!root || !root.querySelectorAll) return;
    var charts = Array.prototype.slice.call(root.querySelectorAll("[data-plotly]:not([data-rendered])"));
    if (root.matches && root.matches("[data-plotly]:not([data-rendered])")) charts.push(root);
    charts.forEach(function (el) {
      el.setAttribute("data-rendered", "");
      withPlotly(el.getAttribute("data-plotly-src"), function () {
        if (!el.isConnected) return;
        draw(el).then(function () {
          if (fitted && el.isConnected && el.hasAttribute("data-plotly-fit")) fitted.observe(el);
        });
      });
    });
  }
  document.addEventListener("htmx:load", function (e) { renderCharts(e.detail.elt); });
  // Polling pauses while the tab is hidden (an htmx trigger filter would need eval, which the
  // Content-Security-Policy forbids).
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt.hasAttribute && elt.hasAttribute("data-poll-when-visible") && document.visibilityState !== "visible") {
      e.preventDefault();
    }
  });
  // History snapshots keep only each chart's JSON; the restored page draws them again.
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("[data-plotly][data-rendered]").forEach(function (el) {
      if (fitted) fitted.unobserve(el);
      if (window.Plotly) window.Plotly.purge(el);
      Array.prototype.slice.call(el.children).forEach(function (c) { if (c.tagName !== "SCRIPT") c.remove(); });
      el.removeAttribute("data-rendered");
    });
  });
  document.addEventListener("htmx:historyRestore", function () { renderCharts(document.body); });
  document.addEventListener("DOMContentLoaded", function () { renderCharts(document.body); });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    // A polled banner slot whose answer did not change is left alone (no repeated announcements).
    if (target && target.id === "banner-slot" && e.detail.xhr.status === 200 &&
        e.detail.serverResponse.trim() === target.innerHTML.trim()) { e.detail.shouldSwap = false; return; }
    // Free the old charts of a card about to be replaced (kiosk cards refresh for hours).
    if (window.Plotly && target && target.querySelectorAll && e.detail.shouldSwap) {
      target.querySelectorAll("[data-plotly][data-rendered]").forEach(function (el) {
        if (fitted) fitted.unobserve(el);
        window.Plotly.purge(el);
      });
    }
  });
  function cardFailed(e) {
    var card = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("[data-card]");
    if (!card) return;
    var polling = (card.getAttribute("hx-trigger") || "").indexOf("every") >= 0;
    if (polling) {
      // Kiosk: keep the last figures, say they are stale, keep polling until the server is back.
      card.classList.add("is-stale");
      var marker = card.querySelector(".dash-stale");
      if (marker) { marker.textContent = card.getAttribute("data-stale-text") || card.getAttribute("data-error-text"); marker.hidden = false; }
      return;
    }
    // Otherwise: an inline error with a retry button; the other cards carry on.
    card.classList.remove("is-loading");
    card.setAttribute("aria-busy", "false");
    card.classList.add("is-failed");
    var box = card.querySelector(".dash-error");
    if (!box) {
      box = document.createElement("div");
      box.className = "dash-error";
      box.setAttribute("role", "alert");
      var p = document.createElement("p");
      p.textContent = card.getAttribute("data-error-text");
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "button button-small";
      btn.textContent = card.getAttribute("data-retry-text");
      btn.setAttribute("hx-get", card.getAttribute("hx-get") || card.getAttribute("data-url"));
      btn.setAttribute("hx-target", "closest [data-card]");
      btn.setAttribute("hx-swap", "outerHTML");
      box.appendChild(p);
      box.appendChild(btn);
      var loading = card.querySelector(".dash-loading");
      if (loading) loading.remove();
      card.appendChild(box);
      if (window.htmx) window.htmx.process(box);
    }
  }
  document.addEventListener("htmx:responseError", cardFailed);
  document.addEventListener("htmx:sendError", cardFailed);
  // --- The header search: the groups htmx swaps in below the box, walked with the keyboard. ---
  // ArrowDown from the box enters the results, ArrowUp/ArrowDown move between them (links, so
  // Enter follows one), Escape closes the popup and returns to the box.
  function searchInput() { return document.querySelector("[data-search-input]"); }
  function searchOptions() {
    return Array.prototype.slice.call(document.querySelectorAll("#search-results [data-search-option]"));
  }
  function showPopup(open) {
    var popup = document.querySelector("[data-search-popup]");
    var input = searchInput();
    if (!popup || !input) return;
    popup.hidden = !open;
    input.setAttribute("aria-expanded", open ? "true" : "false");
  }
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.hasAttribute("data-search-popup")) {
      var input = searchInput();
      showPopup(!!(input && input.value.trim() && e.detail.target.innerHTML.trim()));
    }
  });
  document.addEventListener("keydown", function (e) {
    var input = searchInput();
    if (!input) return;
    var options = searchOptions();
    var at = options.indexOf(e.target);
    if (e.target === input) {
      if (e.key === "ArrowDown" && options.length) { e.preventDefault(); showPopup(true); options[0].focus(); }
      else if (e.key === "Escape") showPopup(false);
      return;
    }
    if (at < 0) return;
    if (e.key === "ArrowDown") { e.preventDefault(); options[Math.min(at + 1, options.length - 1)].focus(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); (at === 0 ? input : options[at - 1]).focus(); }
    else if (e.key === "Escape") { e.preventDefault(); showPopup(false); input.focus(); }
  });
  document.addEventListener("input", function (e) {
    if (e.target === searchInput() && !e.target.value.trim()) showPopup(false);
  });
  document.addEventListener("click", function (e) {
    var form = e.target.closest && e.target.closest(".header-search");
    if (!form) showPopup(false);
  });
})();

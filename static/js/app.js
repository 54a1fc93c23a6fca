/* Page behaviour that htmx attributes cannot express under the content security policy (no hx-on). */
(function () {
  "use strict";
  if (typeof htmx === "undefined") { return; }

  // A stale form answers 409 and a refused step 422, each with a fresh panel to show: swap those too.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "409", swap: true, error: false },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false }
  ];

  // Charts inside swapped content (the account page's panels) are drawn again by charts.js.
  document.addEventListener("htmx:afterSettle", function () {
    document.dispatchEvent(new CustomEvent("app:redraw"));
  });
}());

/* "Select all" checkboxes: <input type="checkbox" data-select-all="accounts" form="reassign"> ticks every
   checkbox named "accounts" of the same form. Delegated, so it keeps working after htmx swaps the table. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var toggle = event.target;
    if (!toggle.matches || !toggle.matches("input[data-select-all]")) { return; }
    var selector = 'input[type="checkbox"][name="' + toggle.getAttribute("data-select-all") + '"]';
    var form = toggle.getAttribute("form");
    if (form) { selector += '[form="' + form + '"]'; }
    document.querySelectorAll(selector).forEach(function (box) { box.checked = toggle.checked; });
  });
}());

/* Following a notification's link marks it read: <a href="/accounts/7/" data-read-url="/notifications/3/read/">.
   The POST goes out with keepalive, so it survives the navigation it accompanies; without JavaScript the
   link still leads there and the "Mark read" button does the rest. */
(function () {
  "use strict";
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || ""; }
    catch (error) { return ""; }
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-read-url]") : null;
    if (!link || !window.fetch) { return; }
    fetch(link.getAttribute("data-read-url"), {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
      keepalive: true
    }).catch(function () {});
  });
}());

/* A box that scrolls (a wide table on a narrow screen, a long audited value, the play editor's sticky aside)
   can be reached from the keyboard, to scroll it with the arrow keys, while and only while it does scroll:
   tabindex="0". Its content names it (the table's caption, the section's heading), so it takes no role of
   its own, which would name the same landmark twice. Checked again when a box changes size and after htmx
   swaps content in. */
(function () {
  "use strict";
  var SCROLLERS = ".table-scroll, .audit-value, .play-aside";
  var MARK = "data-scroll-focus";

  function update(box) {
    var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.setAttribute(MARK, "");
    } else if (!scrolls && box.hasAttribute(MARK)) {
      box.removeAttribute("tabindex");
      box.removeAttribute(MARK);
    }
  }

  var observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { update(entry.target); });
  });

  function scan(root) {
    root.querySelectorAll(SCROLLERS).forEach(function (box) {
      update(box);
      if (observer) { observer.observe(box); }
    });
  }

  function start() { scan(document); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
  document.addEventListener("htmx:afterSettle", function (event) { scan(event.target.parentElement || document); });
}());

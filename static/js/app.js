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

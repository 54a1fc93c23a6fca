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

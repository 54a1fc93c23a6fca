/* What the managers' dashboards (pipeline, metrics, insights) share to draw their charts with plotly: the
   theme's colours in light and dark, plotly's layout defaults, and `boot`, which draws a page's charts from the
   JSON the page embeds with json_script: on load, after every htmx swap (app.js turns each settle into
   "app:redraw"), when back or forward restores a snapshot, and when the system switches between light and
   dark. partials/dashboard_assets.html loads it after plotly and before the page's own script, which calls
   window.DashboardCharts.boot. Kept in a static file because the content security policy allows no inline
   script. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // The theme's colours as they are now: read again at every drawing, so a switch to dark is picked up.
  function colors() {
    return {
      text: cssVar("--app-text", "#1d2330"),
      muted: cssVar("--app-muted", "#667085"),
      grid: cssVar("--app-chart-grid", "#e5e7eb"),
      accent: cssVar("--app-accent", "#4f46e5"),
      ok: cssVar("--app-ok", "#3f7f5f"),
      teal: cssVar("--app-teal-text", "#0f5f63"),
      warning: cssVar("--app-warning", "#d98a06"),
      danger: cssVar("--app-danger", "#d63b3b"),
      violet: cssVar("--app-violet-text", "#6b21a8"),
      neutral: cssVar("--app-neutral-text", "#454d5c"),
      soft: cssVar("--app-neutral-soft", "#eef0f4"),
      track: cssVar("--app-bar-track", "#e8eaf0"),
      surface: cssVar("--app-surface", "#ffffff"),
      font: cssVar("--pico-font-family-sans-serif", "system-ui, sans-serif")
    };
  }

  // A dashboard chart's layout: transparent background, the theme's font and grid, axes that do not zoom,
  // the legend below and hover labels on the surface colour. `options` changes the height, and the margin,
  // the legend, both axes (`axis`) or one (`xaxis`, `yaxis`) key by key; `extra` adds or replaces top-level keys.
  function layout(c, options, extra) {
    var o = options || {};
    function axis(own) {
      return Object.assign({ gridcolor: c.grid, linecolor: c.grid, zeroline: false, fixedrange: true }, o.axis, own);
    }
    var base = {
      height: o.height || 260,
      margin: Object.assign({ l: 56, r: 16, t: 8, b: 40 }, o.margin),
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: c.font, size: 11, color: c.muted },
      xaxis: axis(o.xaxis),
      yaxis: axis(o.yaxis),
      legend: Object.assign({ orientation: "h", y: -0.2, font: { color: c.text } }, o.legend),
      hoverlabel: { bgcolor: c.surface, bordercolor: c.grid, font: { color: c.text } }
    };
    return Object.assign(base, extra || {});
  }

  function draw(element, traces, l) {
    // A restored history snapshot holds the old drawing without plotly's state: start from an empty box.
    if (!element._fullLayout) { element.replaceChildren(); }
    Plotly.react(element, traces, l, { displayModeBar: false, responsive: true });
  }

  // Draws every element carrying `attribute` from the JSON of the element `dataId`, whenever the page asks.
  // `charts` maps the attribute's value to a function(element, data, colours), or is one such function that
  // also gets the value.
  function boot(dataId, attribute, charts) {
    function chartFor(name) {
      if (typeof charts === "function") { return charts; }
      return Object.prototype.hasOwnProperty.call(charts, name) ? charts[name] : null;
    }

    function drawAll() {
      var holder = document.getElementById(dataId);
      if (!holder || typeof Plotly === "undefined") { return; }
      var data = JSON.parse(holder.textContent);
      var c = colors();
      document.querySelectorAll("[" + attribute + "]").forEach(function (element) {
        var name = element.getAttribute(attribute);
        var chart = chartFor(name);
        if (chart) { chart(element, data, c, name); }
      });
    }

    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", drawAll);
    } else {
      drawAll();
    }
    document.addEventListener("app:redraw", drawAll);
    document.addEventListener("htmx:historyRestore", drawAll);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawAll);
  }

  window.DashboardCharts = { colors: colors, layout: layout, draw: draw, boot: boot };
}());

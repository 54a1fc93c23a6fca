/* Draws the rules editor's backtest chart from the JSON the backtest panel embeds with json_script.
   A static file because the content security policy allows no inline script; drawn again whenever htmx
   swaps in a new backtest (app.js turns every settle into an "app:redraw" event). plotly.js (3.5 MB) is
   loaded only once a backtest is shown, so the form and its live preview are ready at once. */
(function () {
  "use strict";

  var nonce = document.currentScript ? document.currentScript.nonce : "";

  function withPlotly(element, callback) {
    if (typeof Plotly !== "undefined") { callback(); return; }
    var script = document.getElementById("plotly-script");
    if (!script) {
      script = document.createElement("script");
      script.id = "plotly-script";
      script.src = element.dataset.plotlySrc;
      if (nonce) { script.nonce = nonce; }
      document.head.appendChild(script);
    }
    script.addEventListener("load", callback, { once: true });
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function draw() {
    var element = document.querySelector("[data-backtest-chart]");
    if (!element || element.dataset.drawn === "1") { return; }
    withPlotly(element, function () { plot(element); });
  }

  function plot(element) {
    var source = document.getElementById("backtest-data");
    if (!source || !document.body.contains(element) || element.dataset.drawn === "1") { return; }
    var data = JSON.parse(source.textContent);
    var colors = {
      text: cssVar("--app-muted", "#626b7d"),
      grid: cssVar("--app-chart-grid", "#e8eaf0"),
      accent: cssVar("--app-chart-line", "#4f46e5"),
      base: cssVar("--app-warning", "#d98a06"),
      font: cssVar("--pico-font-family-sans-serif", "system-ui, sans-serif")
    };
    // Months whose 90-day window is not over yet are drawn paler: more upgrades may still come.
    var opacity = data.complete.map(function (complete) { return complete ? 0.9 : 0.45; });
    var traces = [
      {
        x: data.labels,
        y: data.flagged_share,
        customdata: data.flagged,
        type: "bar",
        name: "Flagged accounts that upgraded",
        marker: { color: colors.accent, opacity: opacity },
        hovertemplate: "%{y:.1f}% of %{customdata} flagged<extra></extra>"
      },
      {
        x: data.labels,
        y: data.base_rate,
        type: "scatter",
        mode: "lines+markers",
        name: "All paying accounts (base rate)",
        line: { color: colors.base, width: 2 },
        marker: { color: colors.base, size: 7 },
        hovertemplate: "%{y:.1f}% of all paying accounts<extra></extra>"
      }
    ];
    var layout = {
      height: 260,
      margin: { l: 48, r: 12, t: 30, b: 30 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: colors.font, size: 11, color: colors.text },
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.18 },
      hovermode: "x unified",
      xaxis: { type: "category", gridcolor: colors.grid, linecolor: colors.grid, fixedrange: true },
      yaxis: {
        title: { text: "Upgraded within 90 days" },
        ticksuffix: "%",
        rangemode: "tozero",
        gridcolor: colors.grid,
        linecolor: colors.grid,
        zeroline: false,
        fixedrange: true
      }
    };
    Plotly.react(element, traces, layout, { displayModeBar: false, responsive: true });
    element.dataset.drawn = "1";
  }

  function redraw() {
    var element = document.querySelector("[data-backtest-chart]");
    if (element) { element.dataset.drawn = ""; }
    draw();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
  document.addEventListener("app:redraw", draw);
  // Redraw in the other palette when the system switches between light and dark.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
}());

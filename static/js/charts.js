/* Draws the account page's charts from the JSON that the page embeds with json_script.
   Kept in a static file because the content security policy allows no inline script. */
(function () {
  "use strict";

  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function theme() {
    return {
      text: cssVar("--app-muted", "#667085"),
      grid: cssVar("--app-chart-grid", "#e5e7eb"),
      line: cssVar("--app-chart-line", "#4f46e5"),
      fill: cssVar("--app-chart-fill", "rgba(79, 70, 229, 0.12)"),
      limit: cssVar("--app-danger", "#dc2626"),
      surface: cssVar("--app-surface", "#ffffff"),
      font: cssVar("--pico-font-family-sans-serif", "system-ui, sans-serif")
    };
  }

  function baseLayout(colors, height) {
    return {
      height: height,
      margin: { l: 48, r: 12, t: 10, b: 26 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: colors.font, size: 11, color: colors.text },
      showlegend: false,
      hovermode: "x unified",
      xaxis: { type: "date", tickformat: "%b %-d", gridcolor: colors.grid, linecolor: colors.grid, zeroline: false, fixedrange: true },
      yaxis: { gridcolor: colors.grid, linecolor: colors.grid, zeroline: false, fixedrange: true, rangemode: "tozero" }
    };
  }

  var config = { displayModeBar: false, responsive: true };

  function drawUsage(colors) {
    var series = readJson("usage-data");
    if (!series) { return; }
    series.forEach(function (metric) {
      var element = document.querySelector('[data-usage-chart="' + metric.key + '"]');
      if (!element || metric.values.length === 0) { return; }
      var unit = metric.unit ? " " + metric.unit : "";
      var layout = baseLayout(colors, 130);
      var traces = [{
        x: metric.dates,
        y: metric.values,
        type: "scatter",
        mode: metric.values.length > 1 ? "lines" : "markers",
        line: { color: colors.line, width: 2 },
        marker: { color: colors.line, size: 6 },
        fill: "tozeroy",
        fillcolor: colors.fill,
        name: metric.label,
        hovertemplate: "%{y:,.4~g}" + unit + "<extra></extra>"
      }];
      if (metric.projection) {
        // Where the 30-day trend meets the limit: a dashed line from today's value to the crossing day.
        traces.push({
          x: metric.projection.dates,
          y: metric.projection.values,
          type: "scatter",
          mode: "lines+markers",
          line: { color: colors.limit, width: 1.5, dash: "dot" },
          marker: { color: colors.limit, size: [0, metric.projection.crosses ? 7 : 0], symbol: "x" },
          name: "Projection",
          hovertemplate: "projected %{y:,.4~g}" + unit + " on %{x|%b %-d}<extra></extra>"
        });
      }
      if (metric.limit !== null) {
        var highest = Math.max.apply(null, metric.values.concat([metric.limit]));
        layout.yaxis.range = [0, highest * 1.12];
        layout.shapes = [{
          type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: metric.limit, y1: metric.limit,
          line: { color: colors.limit, width: 1.5, dash: "dash" }
        }];
        layout.annotations = [{
          xref: "paper", x: 0, xanchor: "left", yref: "y", y: metric.limit, yanchor: "bottom",
          text: "limit " + metric.limit.toLocaleString() + unit, showarrow: false,
          bgcolor: colors.surface, borderpad: 1,
          font: { color: colors.limit, size: 10 }
        }];
      }
      Plotly.react(element, traces, layout, config);
    });
  }

  function drawMrr(colors) {
    var data = readJson("mrr-data");
    var element = document.querySelector("[data-mrr-chart]");
    if (!data || !element || data.dates.length === 0) { return; }
    var layout = baseLayout(colors, 170);
    layout.xaxis.tickformat = "%b %Y";
    layout.yaxis.tickprefix = data.currency === "USD" ? "$" : "";
    layout.yaxis.ticksuffix = data.currency === "USD" ? "" : " " + data.currency;
    var traces = [{
      x: data.dates,
      y: data.mrr,
      type: "scatter",
      mode: "lines+markers",
      line: { color: colors.line, width: 2, shape: "hv" },
      marker: { color: colors.line, size: 6 },
      hovertemplate: "%{y:,.2f} " + data.currency + "<extra></extra>"
    }];
    Plotly.react(element, traces, layout, config);
  }

  function drawAll() {
    if (typeof Plotly === "undefined") { return; }
    var colors = theme();
    drawUsage(colors);
    drawMrr(colors);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  // Redraw in the other palette when the system switches between light and dark.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawAll);
}());

/* Draws the metrics page's trend and cohort charts from the JSON embedded with json_script
   (the content security policy allows no inline script). Redrawn after htmx swaps a new period in. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function colors() {
    return {
      text: cssVar("--app-muted", "#667085"),
      grid: cssVar("--app-chart-grid", "#e5e7eb"),
      accent: cssVar("--app-accent", "#4f46e5"),
      ok: cssVar("--app-ok", "#3f7f5f"),
      teal: cssVar("--app-teal-text", "#0f5f63"),
      warning: cssVar("--app-warning", "#d98a06"),
      danger: cssVar("--app-danger", "#d63b3b"),
      font: cssVar("--pico-font-family-sans-serif", "system-ui, sans-serif")
    };
  }

  var config = { displayModeBar: false, responsive: true };

  function layout(c, extra) {
    var base = {
      height: 260,
      margin: { l: 56, r: 12, t: 8, b: 40 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: c.font, size: 11, color: c.text },
      xaxis: { gridcolor: c.grid, linecolor: c.grid, zeroline: false, fixedrange: true },
      yaxis: { gridcolor: c.grid, linecolor: c.grid, zerolinecolor: c.text, fixedrange: true },
      legend: { orientation: "h", y: -0.2 }
    };
    return Object.assign(base, extra || {});
  }

  function drawTrends(element, data, c) {
    var t = data.trends;
    function bar(name, values, color) {
      return { x: t.months, y: values, name: name, type: "bar", marker: { color: color },
               hovertemplate: name + " %{y:$,.2f}<extra></extra>" };
    }
    var traces = [
      bar("New", t["new"], c.teal),
      bar("Expansion", t.expansion, c.ok),
      bar("Reactivation", t.reactivation, c.accent),
      bar("Contraction", t.contraction, c.warning),
      bar("Churn", t.churn, c.danger),
      { x: t.months, y: t.net, name: "Net", type: "scatter", mode: "lines+markers",
        line: { color: c.text, width: 2 }, hovertemplate: "Net %{y:$,.2f}<extra></extra>" }
    ];
    var l = layout(c, { barmode: "relative", hovermode: "x unified" });
    l.xaxis.type = "date";
    l.xaxis.tickformat = "%b %Y";
    l.yaxis.tickprefix = "$";
    Plotly.react(element, traces, l, config);
  }

  function drawNdr(element, data, c) {
    var n = data.ndr;
    var l = layout(c, { showlegend: false, hovermode: "x unified" });
    l.xaxis.type = "date";
    l.xaxis.tickformat = "%b %Y";
    l.yaxis.ticksuffix = "%";
    l.shapes = [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100,
                  line: { color: c.text, width: 1, dash: "dot" } }];
    Plotly.react(element, [{
      x: n.months, y: n.values, type: "scatter", mode: "lines+markers", connectgaps: false,
      line: { color: c.accent, width: 2 }, marker: { color: c.accent, size: 6 },
      hovertemplate: "NDR %{y:.1f}%<extra></extra>"
    }], l, config);
  }

  function drawHeatmap(element, rows, labels, c, scale, zmid) {
    var width = rows.reduce(function (most, row) { return Math.max(most, row.length); }, 0);
    var months = [];
    for (var k = 0; k < width; k += 1) { months.push(k); }
    var l = layout(c, { height: Math.max(240, 36 + labels.length * 26), showlegend: false });
    l.margin.l = 110;
    l.xaxis.title = { text: "Months since first purchase" };
    l.xaxis.dtick = 1;
    l.yaxis.autorange = "reversed";
    l.yaxis.type = "category";
    Plotly.react(element, [{
      z: rows, x: months, y: labels, type: "heatmap", colorscale: scale, hoverongaps: false,
      xgap: 2, ygap: 2, colorbar: { thickness: 10, ticksuffix: "%" }, zmid: zmid,
      hovertemplate: "%{y}, month %{x}: %{z:.1f}%<extra></extra>"
    }], l, config);
  }

  function drawAll() {
    var holder = document.getElementById("metrics-charts");
    if (!holder || typeof Plotly === "undefined") { return; }
    var data = JSON.parse(holder.textContent);
    var c = colors();
    var charts = {
      trends: function (el) { drawTrends(el, data, c); },
      ndr: function (el) { drawNdr(el, data, c); },
      "cohort-upgraded": function (el) {
        drawHeatmap(el, data.cohorts.upgraded, data.cohorts.labels, c, [[0, "rgba(79,70,229,0.05)"], [1, c.accent]], undefined);
      },
      "cohort-mrr": function (el) {
        // Diverging around 100%: below the first month in red, above it in green.
        drawHeatmap(el, data.cohorts.mrr, data.cohorts.labels, c, [[0, c.danger], [0.5, "rgba(200,200,200,0.15)"], [1, c.ok]], 100);
      }
    };
    document.querySelectorAll("[data-metrics-chart]").forEach(function (element) {
      var draw = charts[element.getAttribute("data-metrics-chart")];
      if (draw) { draw(element); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  document.addEventListener("app:redraw", drawAll);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawAll);
}());

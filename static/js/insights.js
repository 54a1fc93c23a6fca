/* Draws the insights pages' charts (adoption trend and segments, the predictors' forest plot, the cohort
   heatmap and comparison) from the JSON each page embeds with json_script as "insights-charts", with the
   dashboards' shared colours, layout and redrawing (dashboard_charts.js). */
(function () {
  "use strict";

  var dashboard = window.DashboardCharts;
  var draw = dashboard.draw;

  function layout(c, extra) {
    return dashboard.layout(c, { height: 300, legend: { y: -0.18 } }, extra);
  }

  function palette(c) {
    return [c.accent, c.ok, c.warning, c.danger, c.teal, c.violet, "#2f8fd8", "#c2410c", "#0d9488", "#a16207", "#be185d", "#64748b"];
  }

  function heatScale(c) {
    // Solid colours at both ends, so that plotly picks a readable text colour for each cell in either scheme.
    return [[0, c.soft], [1, c.accent]];
  }

  function adoptionTrend(element, data, c) {
    if (!data.trend || data.trend.series.length === 0) { return; }
    var t = data.trend;
    var colorsList = palette(c);
    var traces = t.series.map(function (s, i) {
      return {
        x: t.months, y: s.values, name: s.name, type: "scatter", mode: "lines+markers", connectgaps: false,
        line: { color: colorsList[i % colorsList.length], width: 2 }, marker: { size: 5 },
        hovertemplate: s.name + " %{y:.1f}%<extra></extra>"
      };
    });
    var l = layout(c, { hovermode: "x unified" });
    l.xaxis.type = "date";
    l.xaxis.tickformat = "%b %Y";
    l.yaxis.ticksuffix = "%";
    l.yaxis.rangemode = "tozero";
    draw(element, traces, l);
  }

  function adoptionSegments(element, data, c) {
    var s = data.segments;
    var l = layout(c, { height: Math.max(240, 60 + s.features.length * 26), showlegend: false });
    l.margin.l = 140;
    l.yaxis.autorange = "reversed";
    l.yaxis.type = "category";
    l.xaxis.type = "category";
    l.xaxis.side = "top";
    l.margin.t = 30;
    l.margin.b = 10;
    draw(element, [{
      z: s.z, x: s.values, y: s.features, type: "heatmap", colorscale: heatScale(c), zmin: 0, zmax: 100,
      xgap: 2, ygap: 2, hoverongaps: false, colorbar: { thickness: 10, ticksuffix: "%" },
      texttemplate: "%{z:.0f}%", textfont: { size: 10 },
      hovertemplate: "%{y} in %{x}: %{z:.1f}%<extra></extra>"
    }], l);
  }

  function predictors(element, data, c) {
    if (!data.labels || data.labels.length === 0) { return; }
    var l = layout(c, { height: Math.max(200, 50 + data.labels.length * 28), showlegend: false });
    l.margin.l = 12;
    l.yaxis.automargin = true;
    l.yaxis.autorange = "reversed";
    l.yaxis.type = "category";
    l.yaxis.tickfont = { color: c.text };
    l.xaxis.type = "log";
    l.xaxis.title = { text: "Lift (log scale)" };
    // Round lifts as ticks, within the drawn range: "0.5×", "1×", "2×"...
    var lowest = Math.min.apply(null, data.low), highest = Math.max.apply(null, data.high);
    var ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50].filter(function (t) { return t >= lowest / 1.5 && t <= highest * 1.5; });
    l.xaxis.tickvals = ticks;
    l.xaxis.ticktext = ticks.map(function (t) { return t + "×"; });
    l.shapes = [{ type: "line", xref: "x", x0: 1, x1: 1, yref: "paper", y0: 0, y1: 1,
                  line: { color: c.muted, width: 1, dash: "dot" } }];
    var plus = data.lift.map(function (v, i) { return data.high[i] - v; });
    var minus = data.lift.map(function (v, i) { return v - data.low[i]; });
    draw(element, [{
      x: data.lift, y: data.labels, type: "scatter", mode: "markers",
      marker: { color: data.low.map(function (low) { return low > 1 ? c.ok : c.muted; }), size: 9, symbol: "diamond" },
      error_x: { type: "data", symmetric: false, array: plus, arrayminus: minus, color: c.muted, thickness: 1.5, width: 4 },
      customdata: data.labels.map(function (_, i) { return [data.low[i], data.high[i], data.exposed[i], data.unexposed[i]]; }),
      hovertemplate: "%{y}<br>lift %{x:.2f} (95% CI %{customdata[0]:.2f}–%{customdata[1]:.2f})" +
                     "<br>%{customdata[2]:.1f}% vs %{customdata[3]:.1f}% upgraded<extra></extra>"
    }], l);
  }

  function cohorts(element, data, c) {
    var l = layout(c, { height: Math.max(240, 70 + data.labels.length * 26), showlegend: false });
    l.margin.l = 130;
    l.xaxis.title = { text: "Months since signup" };
    l.xaxis.dtick = 1;
    l.yaxis.autorange = "reversed";
    l.yaxis.type = "category";
    draw(element, [{
      z: data.z, x: data.months, y: data.labels, type: "heatmap", colorscale: heatScale(c), zmin: 0,
      zmax: data.kind === "feature" ? 100 : undefined, xgap: 2, ygap: 2, hoverongaps: false,
      colorbar: { thickness: 10, ticksuffix: "%" },
      hovertemplate: "%{y}, month %{x}: %{z:.1f}%<extra></extra>"
    }], l);
  }

  function comparison(element, data, c) {
    var cmp = data.comparison;
    if (!cmp) { return; }
    var l = layout(c, { height: 260, hovermode: "x unified" });
    l.legend = { orientation: "h", x: 0, y: 1.12, font: { color: c.text } };
    l.margin.t = 28;
    l.xaxis.title = { text: "Months since signup" };
    l.xaxis.dtick = 1;
    l.yaxis.ticksuffix = "%";
    l.yaxis.rangemode = "tozero";
    function line(name, values, color) {
      return { x: cmp.months, y: values, name: name, type: "scatter", mode: "lines+markers", connectgaps: false,
               line: { color: color, width: 2 }, hovertemplate: name + " %{y:.1f}%<extra></extra>" };
    }
    draw(element, [line(cmp.a, cmp.values_a, c.muted), line(cmp.b, cmp.values_b, c.accent)], l);
  }

  dashboard.boot("insights-charts", "data-insights-chart", {
    "adoption-trend": adoptionTrend,
    "adoption-segments": adoptionSegments,
    predictors: predictors,
    cohorts: cohorts,
    comparison: comparison
  });
}());

/* Draws the insights pages' voice-of-the-customer charts (survey choices, feedback reasons by plan, won
   and lost by month) from the JSON each page embeds with json_script as "voice-charts", with the dashboards'
   shared colours, layout and redrawing (dashboard_charts.js). */
(function () {
  "use strict";

  var dashboard = window.DashboardCharts;
  var draw = dashboard.draw;

  function palette(c) {
    return [c.accent, c.warning, c.danger, c.ok, c.teal, c.violet, "#2f8fd8", "#c2410c", "#64748b"];
  }

  function layout(c, extra) {
    return dashboard.layout(c, { margin: { l: 48 }, axis: { automargin: true } }, extra);
  }

  // Counts on an axis: whole ticks only (plotly would put 0.5 steps on small counts, shown rounded).
  function countAxis(axis, max) {
    axis.tick0 = 0;
    axis.dtick = Math.max(1, Math.ceil(max / 6));
    axis.tickformat = ",d";
    axis.rangemode = "tozero";
  }

  function sum(values) {
    return values.reduce(function (a, b) { return a + (b || 0); }, 0);
  }

  function surveyChoices(element, chart, c) {
    var l = layout(c, { height: Math.max(120, 40 + chart.labels.length * 30), showlegend: false });
    l.margin = { l: 8, r: 16, t: 4, b: 24 };
    l.yaxis.autorange = "reversed";
    l.yaxis.type = "category";
    l.yaxis.tickfont = { color: c.text };
    countAxis(l.xaxis, Math.max.apply(null, chart.counts.concat([1])));
    draw(element, [{
      type: "bar", orientation: "h", x: chart.counts, y: chart.labels, marker: { color: c.accent },
      customdata: chart.shares,
      hovertemplate: "%{y}: %{x:,} (%{customdata:.1f}%)<extra></extra>"
    }], l);
  }

  function feedbackByPlan(element, data, c) {
    var d = data.by_plan;
    if (!d || d.plans.length === 0) { return; }
    var colorsList = palette(c);
    var l = layout(c, { barmode: "stack", height: Math.max(180, 100 + d.plans.length * 34) });
    l.legend.traceorder = "normal";
    l.yaxis.autorange = "reversed";
    l.yaxis.type = "category";
    l.yaxis.tickfont = { color: c.text };
    var totals = d.plans.map(function (_, row) { return sum(d.series.map(function (s) { return s.counts[row]; })); });
    countAxis(l.xaxis, Math.max.apply(null, totals.concat([1])));
    l.xaxis.title = { text: "Answers" };
    draw(element, d.series.map(function (s, i) {
      return {
        type: "bar", orientation: "h", name: s.name, x: s.counts, y: d.plans,
        marker: { color: colorsList[i % colorsList.length] },
        hovertemplate: s.name + " · %{y}: %{x:,}<extra></extra>"
      };
    }), l);
  }

  function winlossMonths(element, data, c) {
    if (!data.months || data.months.length === 0) { return; }
    var l = layout(c, { barmode: "stack", hovermode: "x unified", height: 280 });
    l.legend.traceorder = "normal";
    l.xaxis.type = "category";
    countAxis(l.yaxis, Math.max.apply(null, data.won.map(function (won, i) { return won + data.lost[i]; }).concat([1])));
    l.yaxis.title = { text: "Decided" };
    l.yaxis2 = { overlaying: "y", side: "right", range: [0, 105], tick0: 0, dtick: 25, ticksuffix: "%",
                 showgrid: false, zeroline: false, fixedrange: true, linecolor: c.grid, automargin: true };
    l.margin.r = 48;
    draw(element, [
      { type: "bar", name: "Won", x: data.months, y: data.won, marker: { color: c.ok }, hovertemplate: "won %{y:,}<extra></extra>" },
      { type: "bar", name: "Lost", x: data.months, y: data.lost, marker: { color: c.danger }, hovertemplate: "lost %{y:,}<extra></extra>" },
      { type: "scatter", mode: "lines+markers", name: "Win rate", x: data.months, y: data.rate, yaxis: "y2",
        connectgaps: false, line: { color: c.accent, width: 2 }, marker: { size: 6 },
        hovertemplate: "win rate %{y:.1f}%<extra></extra>" }
    ], l);
  }

  dashboard.boot("voice-charts", "data-voice-chart", function (element, data, c, name) {
    if (name === "feedback-by-plan") {
      feedbackByPlan(element, data, c);
    } else if (name === "winloss-months") {
      winlossMonths(element, data, c);
    } else if (Array.isArray(data)) {
      var chart = data.find(function (item) { return item.id === name; });
      if (chart) { surveyChoices(element, chart, c); }
    }
  });
}());

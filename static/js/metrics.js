/* Draws the metrics page's trend and cohort charts from the JSON it embeds with json_script as
   "metrics-charts", with the dashboards' shared colours, layout and redrawing (dashboard_charts.js). */
(function () {
  "use strict";

  var dashboard = window.DashboardCharts;
  var draw = dashboard.draw;

  // The money charts keep a zero line across their bars, plotly's own hover labels and the legend in the
  // muted text colour.
  function layout(c, extra) {
    var l = dashboard.layout(c, { margin: { r: 12 }, yaxis: { zeroline: true, zerolinecolor: c.muted } }, extra);
    delete l.hoverlabel;
    delete l.legend.font;
    return l;
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
        line: { color: c.muted, width: 2 }, hovertemplate: "Net %{y:$,.2f}<extra></extra>" }
    ];
    var l = layout(c, { barmode: "relative", hovermode: "x unified" });
    l.xaxis.type = "date";
    l.xaxis.tickformat = "%b %Y";
    l.yaxis.tickprefix = "$";
    draw(element, traces, l);
  }

  function drawNdr(element, data, c) {
    var n = data.ndr;
    var l = layout(c, { showlegend: false, hovermode: "x unified" });
    l.xaxis.type = "date";
    l.xaxis.tickformat = "%b %Y";
    l.yaxis.ticksuffix = "%";
    l.shapes = [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100,
                  line: { color: c.muted, width: 1, dash: "dot" } }];
    draw(element, [{
      x: n.months, y: n.values, type: "scatter", mode: "lines+markers", connectgaps: false,
      line: { color: c.accent, width: 2 }, marker: { color: c.accent, size: 6 },
      hovertemplate: "NDR %{y:.1f}%<extra></extra>"
    }], l);
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
    draw(element, [{
      z: rows, x: months, y: labels, type: "heatmap", colorscale: scale, hoverongaps: false,
      xgap: 2, ygap: 2, colorbar: { thickness: 10, ticksuffix: "%" }, zmid: zmid,
      hovertemplate: "%{y}, month %{x}: %{z:.1f}%<extra></extra>"
    }], l);
  }

  dashboard.boot("metrics-charts", "data-metrics-chart", {
    trends: drawTrends,
    ndr: drawNdr,
    "cohort-upgraded": function (element, data, c) {
      drawHeatmap(element, data.cohorts.upgraded, data.cohorts.labels, c, [[0, "rgba(79,70,229,0.05)"], [1, c.accent]], undefined);
    },
    "cohort-mrr": function (element, data, c) {
      // Diverging around 100%: below the first month in red, above it in green.
      drawHeatmap(element, data.cohorts.mrr, data.cohorts.labels, c, [[0, c.danger], [0.5, "rgba(200,200,200,0.15)"], [1, c.ok]], 100);
    }
  });
}());

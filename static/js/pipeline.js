/* Draws the pipeline dashboard's funnel from the JSON the page embeds with json_script as
   "pipeline-funnel-data", with the dashboards' shared colours and redrawing (dashboard_charts.js). */
(function () {
  "use strict";

  var dashboard = window.DashboardCharts;

  function money(value) {
    return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 0 });
  }

  function drawFunnel(element, data, c) {
    var trace = {
      type: "funnel",
      y: data.stages,
      x: data.counts,
      customdata: data.expected_mrr.map(money),
      text: data.counts.map(function (count, index) {
        return count.toLocaleString("en-US") + " · " + money(data.expected_mrr[index]);
      }),
      textinfo: "text",
      // Inside a bar wide enough to read it, beside a narrow one (plotly would shrink it to a smudge).
      textposition: "auto",
      insidetextfont: { color: "#ffffff" },
      outsidetextfont: { color: c.text },
      hovertemplate: "%{y}: %{x:,} open, %{customdata} expected MRR<extra></extra>",
      marker: { color: [c.neutral, c.teal, c.accent, c.violet] },
      connector: { fillcolor: c.track, line: { width: 0 } }
    };
    var layout = {
      height: 220,
      margin: { l: 72, r: 12, t: 6, b: 6 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: c.font, size: 12, color: c.muted },
      yaxis: { fixedrange: true, tickfont: { color: c.text } },
      xaxis: { fixedrange: true, visible: false },
      showlegend: false
    };
    dashboard.draw(element, [trace], layout);
  }

  dashboard.boot("pipeline-funnel-data", "data-pipeline-funnel", drawFunnel);
}());

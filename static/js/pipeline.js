/* Draws the pipeline dashboard's funnel from the JSON the page embeds with json_script, on load and every
   time htmx swaps in new results (filters, period, sorting, back and forward).
   Kept in a static file because the content security policy allows no inline script. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function money(value) {
    return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 0 });
  }

  function drawFunnel() {
    var source = document.getElementById("pipeline-funnel-data");
    var element = document.querySelector("[data-pipeline-funnel]");
    if (!source || !element || typeof Plotly === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var text = cssVar("--app-text", "#1d2330");
    var muted = cssVar("--app-muted", "#626b7d");
    var colors = [
      cssVar("--app-neutral-text", "#454d5c"),
      cssVar("--app-teal-text", "#0f5f63"),
      cssVar("--app-accent", "#4f46e5"),
      cssVar("--app-violet-text", "#6b21a8")
    ];
    var trace = {
      type: "funnel",
      y: data.stages,
      x: data.counts,
      customdata: data.expected_mrr.map(money),
      text: data.counts.map(function (count, index) {
        return count.toLocaleString("en-US") + " · " + money(data.expected_mrr[index]);
      }),
      textinfo: "text",
      textposition: "inside",
      insidetextfont: { color: "#ffffff" },
      hovertemplate: "%{y}: %{x:,} open, %{customdata} expected MRR<extra></extra>",
      marker: { color: colors },
      connector: { fillcolor: cssVar("--app-bar-track", "#e8eaf0"), line: { width: 0 } }
    };
    var layout = {
      height: 220,
      margin: { l: 72, r: 12, t: 6, b: 6 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: cssVar("--pico-font-family-sans-serif", "system-ui, sans-serif"), size: 12, color: muted },
      yaxis: { fixedrange: true, tickfont: { color: text } },
      xaxis: { fixedrange: true, visible: false },
      showlegend: false
    };
    // A restored history snapshot holds the old drawing without plotly's state: start from an empty box.
    if (!element._fullLayout) { element.replaceChildren(); }
    Plotly.react(element, [trace], layout, { displayModeBar: false, responsive: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawFunnel);
  } else {
    drawFunnel();
  }
  document.addEventListener("htmx:afterSettle", drawFunnel);
  document.addEventListener("htmx:historyRestore", drawFunnel);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawFunnel);
}());

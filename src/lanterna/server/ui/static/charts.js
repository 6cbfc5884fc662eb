// Draws each chart from its JSON island (<script type="application/json" data-chart>)
// with plotly.js, which the server serves from the plotly Python package.
(function () {
  "use strict";
  function draw() {
    if (!window.Plotly) return;
    document.querySelectorAll("script[type='application/json'][data-chart]").forEach(function (island) {
      var spec = JSON.parse(island.textContent);
      var target = document.getElementById(island.getAttribute("data-chart"));
      if (!target) return;
      var layout = Object.assign({
        margin: { l: 56, r: 16, t: 36, b: 40 },
        font: { family: "system-ui, sans-serif", size: 12 },
        paper_bgcolor: "#fff", plot_bgcolor: "#fff",
        legend: { orientation: "h", y: -0.2 },
        title: { text: spec.title || "", font: { size: 14 }, x: 0.02 }
      }, spec.layout || {});
      window.Plotly.newPlot(target, spec.data, layout, { displaylogo: false, responsive: true });
      target.setAttribute("data-rendered", "true");
    });
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();

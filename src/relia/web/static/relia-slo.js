// SLO page enhancement: each burn-down chart's SVG (drawn by the server, and all a reader without
// JavaScript sees) is replaced by an interactive uPlot chart of the same points, read from the JSON beside
// it. If uPlot is missing or fails, the SVG simply stays.
(function () {
  "use strict";

  var HEIGHT = 240;

  function percentText(value) {
    return value == null ? "no data" : value.toFixed(1) + " %";
  }

  function utcText(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  // A dashed line at the at-risk level and a solid one at 0 %, drawn over the plot like the SVG's guides.
  function guides(atRisk, colour) {
    return function (plot) {
      var context = plot.ctx;
      var left = plot.bbox.left;
      var right = left + plot.bbox.width;
      context.save();
      context.lineWidth = 1 * devicePixelRatio;
      [[atRisk, [4 * devicePixelRatio, 4 * devicePixelRatio]], [0, []]].forEach(function (guide) {
        var y = Math.round(plot.valToPos(guide[0], "y", true));
        context.strokeStyle = colour;
        context.setLineDash(guide[1]);
        context.beginPath();
        context.moveTo(left, y);
        context.lineTo(right, y);
        context.stroke();
      });
      context.restore();
    };
  }

  // uPlot's axis labels default to US dates and a 12-hour clock; the rest of Relia writes 24-hour times and
  // day-month dates, so its date templates are rewritten before formatting.
  function fmtDate(template) {
    return uPlot.fmtDate(
      template
        .replace(/\{h\}(:\{mm\})?(:\{ss\})?\{aa\}/g, function (whole, minutes, seconds) {
          return "{HH}" + (minutes || ":{mm}") + (seconds || "");
        })
        .replace(/\{M\}\/\{D\}\/\{YY\}/g, "{D} {MMM} {YYYY}")
        .replace(/\{M\}\/\{D\}/g, "{D} {MMM}")
    );
  }

  function enhance(container) {
    if (container.dataset.enhanced || typeof uPlot === "undefined") return;
    var source = document.getElementById(container.dataset.chart);
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var style = getComputedStyle(container);
    var text = style.color;
    var line = style.getPropertyValue("--relia-chart-line").trim() || "#0b66c3";
    var grid = style.getPropertyValue("--relia-chart-guide").trim() || "rgba(128, 128, 128, .4)";
    var readout = container.parentElement.querySelector(".chart-readout");
    var options = {
      width: Math.max(280, container.clientWidth),
      height: HEIGHT,
      tzDate: function (seconds) { return uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"); },
      fmtDate: fmtDate,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: {
          range: function (plot, low, high) {
            return [Math.min(0, low == null ? 0 : low), Math.max(100, high == null ? 100 : high)];
          },
        },
      },
      axes: [
        { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid } },
        {
          stroke: text, grid: { stroke: grid }, ticks: { stroke: grid }, size: 60,
          values: function (plot, ticks) { return ticks.map(function (tick) { return tick + " %"; }); },
        },
      ],
      series: [
        {},
        { label: "Budget remaining", stroke: line, width: 2, spanGaps: false, points: { show: false } },
      ],
      hooks: {
        draw: [guides(data.atRisk, text)],
        setCursor: [
          function (plot) {
            if (!readout) return;
            var index = plot.cursor.idx;
            readout.textContent = index == null ? "" :
              utcText(data.x[index]) + ": " + percentText(data.y[index]) + " of the budget left";
          },
        ],
      },
    };
    var plot;
    try {
      plot = new uPlot(options, [data.x, data.y], container);
    } catch (error) {
      return; // the SVG stays
    }
    // The canvas has no text of its own: name the chart with the same summary the SVG carries.
    plot.root.setAttribute("role", "img");
    plot.root.setAttribute("aria-label", container.dataset.summary || "Error budget burn-down");
    var svg = container.querySelector("svg");
    if (svg) svg.remove();
    container.dataset.enhanced = "true";
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () {
        var width = Math.max(280, container.clientWidth);
        if (width !== plot.width) plot.setSize({ width: width, height: HEIGHT });
      }).observe(container);
    }
  }

  function enhanceAll() {
    document.querySelectorAll(".burn-chart[data-chart]").forEach(enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhanceAll);
  } else {
    enhanceAll();
  }
})();

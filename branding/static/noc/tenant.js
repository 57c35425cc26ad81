// A tenant's charts, drawn with the vendored uPlot from the series endpoint.
(function () {
  "use strict";
  var holder = document.getElementById("charts");
  if (!holder || !window.uPlot) return;

  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#1f6feb";
  }
  function draw(figure, t, values) {
    var width = Math.max(300, figure.clientWidth - 20);
    var known = values.filter(function (v) { return v !== null; }).length;
    // Sparse series (percentages exist only where something happened) need their points.
    var sparse = known < values.length / 3;
    var opts = {
      width: width,
      height: 200,
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      series: [
        {},
        {
          label: figure.getAttribute("data-label"),
          stroke: colour(figure.getAttribute("data-color")),
          width: 2,
          spanGaps: false,
          points: { show: sparse, size: 6, fill: colour(figure.getAttribute("data-color")) },
        },
      ],
      axes: [{}, { size: 56 }],
    };
    new uPlot(opts, [t, values], figure);
    if (!known) {
      var empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "nothing to show in this range";
      figure.appendChild(empty);
    }
    figure.setAttribute("data-drawn", "true");
  }

  fetch(holder.getAttribute("data-series"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error("series request failed: " + r.status);
      return r.json();
    })
    .then(function (data) {
      var figures = holder.querySelectorAll("[data-chart]");
      for (var i = 0; i < figures.length; i++) {
        var key = figures[i].getAttribute("data-chart");
        draw(figures[i], data.series.t, data.series[key]);
      }
      holder.setAttribute("data-ready", "true");
    })
    .catch(function (err) {
      holder.setAttribute("data-error", String(err));
      holder.insertAdjacentHTML("beforeend", '<p class="error"></p>');
      holder.lastElementChild.textContent = String(err);
    });
})();

// curflow report: draws the four charts from the JSON blocks `curflow-data` and `curflow-view`.
// Numbers are converted from the exact decimal strings only here, for drawing.
//
// The whole file is one immediately-invoked function so nothing leaks into the page's global
// scope; it is long only because it holds the named functions below (each short), then calls them.
//
// After drawing it sets on <body>: `data-charts-ready` (charts drawn) and `data-legend-overflow`
// (ids of charts whose legend does not fit inside the chart; empty when all fit), which the
// headless-browser test reads.
(function () {
  "use strict";
  var drawn = 0;
  var charts = {};
  function done() {
    document.body.dataset.legendOverflow = legendOverflow().join(" ");
    document.body.dataset.chartsReady = String(drawn);
  }
  function fail(id, message) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    var box = canvas.parentNode;
    var note = document.createElement("div");
    note.className = "no-data";
    note.textContent = message;
    box.parentNode.replaceChild(note, box);
  }
  var ids = ["chart-tenants", "chart-daily", "chart-budgets", "chart-coverage"];
  if (typeof Chart === "undefined") {
    ids.forEach(function (id) { fail(id, "The chart library did not load."); });
    done();
    return;
  }
  var d, view;
  try {
    d = JSON.parse(document.getElementById("curflow-data").textContent);
    view = JSON.parse(document.getElementById("curflow-view").textContent);
  } catch (e) {
    ids.forEach(function (id) { fail(id, "Report data unreadable: " + e.message); });
    done();
    return;
  }
  function num(s) { var n = Number(s); return isFinite(n) ? n : 0; }
  var cur = d.currency || "";
  function money(n) {
    return n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function moneyCur(n) { return money(n) + (cur ? " " + cur : ""); }
  function axisMoney(v) {
    var a = Math.abs(v);
    if (a >= 1e6) { return (v / 1e6).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "M"; }
    if (a >= 1e4) { return (v / 1e3).toLocaleString("en-US", { maximumFractionDigits: 0 }) + "k"; }
    return v.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }
  function pctText(s) { return s === null || s === undefined ? "n/a" : num(s).toFixed(1) + " %"; }

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = "#374151";
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif';
  Chart.defaults.font.size = 12;
  Chart.defaults.plugins.legend.labels.boxWidth = 14;

  var C = {
    estimate: "#94a3b8", actual: "#2563eb", flagged: "#dc2626",
    daily: "#0d9488", cumulative: "#7c3aed", tenants: "#db2777",
    band: "rgba(219, 39, 119, 0.12)", bandEdge: "rgba(219, 39, 119, 0.4)",
    ok: "#16a34a", warn: "#f59e0b", over: "#b91c1c",
    tagged: "#0891b2", driver: "#4f46e5", fallback: "#eab308", unattributed: "#cbd5e1",
    grid: "#eef0f3"
  };

  function draw(id, build) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    try {
      charts[id] = new Chart(canvas, build());
      drawn += 1;
    } catch (e) {
      fail(id, "Chart could not be drawn: " + e.message);
    }
  }

  // Legend labels longer than `max` characters end in an ellipsis; hovering one shows the full
  // text as the canvas's tooltip. Legends are laid out by Chart.js, which does not wrap a single
  // item: a long one would run past the chart's edge.
  var LEGEND_MAX = 34;
  function shortLabel(text, max) {
    var s = String(text);
    return s.length > max ? s.slice(0, max - 1) + "\u2026" : s;
  }
  function legend(options) {
    var generate = Chart.defaults.plugins.legend.labels.generateLabels;
    var base = {
      labels: {
        generateLabels: function (chart) {
          return generate(chart).map(function (item) {
            item.fullText = item.text;
            item.text = shortLabel(item.text, LEGEND_MAX);
            return item;
          });
        }
      },
      onHover: function (e, item, l) { l.chart.canvas.title = item.fullText || item.text; },
      onLeave: function (e, item, l) { l.chart.canvas.title = ""; }
    };
    Object.keys(options || {}).forEach(function (k) {
      if (k === "labels") {
        Object.keys(options.labels).forEach(function (j) { base.labels[j] = options.labels[j]; });
      } else {
        base[k] = options[k];
      }
    });
    return base;
  }

  // Ids of drawn charts whose legend items are not all inside the canvas.
  function legendOverflow() {
    return Object.keys(charts).filter(function (id) {
      var c = charts[id], boxes = (c.legend && c.legend.legendHitBoxes) || [];
      return boxes.some(function (b) {
        return b.left < 0 || b.top < 0 || b.left + b.width > c.width + 0.5 || b.top + b.height > c.height + 0.5;
      });
    });
  }

  // 1. Estimate vs actual per tenant (flagged tenants in red, their labels too).
  draw("chart-tenants", function () {
    var t = d.tenants;
    return {
      type: "bar",
      data: {
        labels: t.map(function (x) { return x.tenant; }),
        datasets: [
          { label: "Estimated", data: t.map(function (x) { return num(x.estimated); }),
            backgroundColor: C.estimate, borderRadius: 2 },
          { label: "Actual", data: t.map(function (x) { return num(x.actual); }),
            backgroundColor: t.map(function (x) { return x.flagged ? C.flagged : C.actual; }), borderRadius: 2 }
        ]
      },
      options: {
        scales: {
          x: { grid: { display: false },
               ticks: { color: function (ctx) { var x = t[ctx.index]; return x && x.flagged ? C.flagged : "#374151"; },
                        callback: function (v, i) { var s = String(this.getLabelForValue(v));
                          return s.length > 18 ? s.slice(0, 17) + "\u2026" : s; } } },
          y: { beginAtZero: true, grid: { color: C.grid }, ticks: { callback: axisMoney },
               title: { display: true, text: cur } }
        },
        plugins: {
          legend: legend({ position: "top" }),
          tooltip: { callbacks: {
            label: function (ctx) { return ctx.dataset.label + ": " + moneyCur(ctx.parsed.y); },
            afterBody: function (items) {
              var x = t[items[0].dataIndex];
              return ["Variance: " + moneyCur(num(x.variance)) + " (" + pctText(x.variance_pct) + ")",
                      "Direct " + money(num(x.direct)) + " / attributed " + money(num(x.attributed)),
                      x.flagged ? "FLAGGED" : ""];
            } } }
        }
      }
    };
  });

  // 2. Daily cost of the account, running totals of the account and of the tenants, and the
  //    tenants' month-end forecast, drawn from the tenants' running total (the forecast covers
  //    tenants only, so it must not continue the account's line).
  function forecastDatasets(pts, end) {
    var last = pts[pts.length - 1], f = d.forecast;
    var lo = num(f.low), hi = num(f.high), me = num(f.month_end), ahead = last.x < end;
    var out = [];
    if (ahead) {
      // Cone from the tenants' running total today to the month-end range.
      out.push({ label: "_high", data: [{ x: last.x, y: last.t }, { x: end, y: hi }], yAxisID: "yCum",
        borderColor: C.bandEdge, borderWidth: 1, pointRadius: 0, fill: false });
      out.push({ label: "_low", data: [{ x: last.x, y: last.t }, { x: end, y: lo }], yAxisID: "yCum",
        borderColor: C.bandEdge, borderWidth: 1, pointRadius: 0, backgroundColor: C.band, fill: "-1" });
    }
    out.push({ label: "Tenants' forecast range", data: [{ x: end, y: lo }, { x: end, y: hi }], yAxisID: "yCum",
      borderColor: C.bandEdge, backgroundColor: C.bandEdge, borderWidth: 9, borderCapStyle: "butt", pointRadius: 0 });
    out.push({ label: "Tenants' forecast month end",
      data: ahead ? [{ x: last.x, y: last.t }, { x: end, y: me }] : [{ x: end, y: me }], yAxisID: "yCum",
      borderColor: C.tenants, backgroundColor: "#ffffff", borderDash: [6, 4], borderWidth: 2,
      pointRadius: ahead ? [0, 6] : 6, pointBorderWidth: 2.5 });
    return out;
  }

  function dailyScales(end, prefix) {
    return {
      x: { type: "linear", min: 0.5, max: end + 0.5, grid: { color: C.grid },
           afterBuildTicks: function (axis) {
             var ticks = [];
             for (var i = 1; i <= end; i += 1) { ticks.push({ value: i }); }
             axis.ticks = ticks;
           },
           ticks: { autoSkip: true, maxRotation: 0 },
           title: { display: true, text: "day of " + prefix } },
      y: { beginAtZero: true, position: "left", grid: { color: C.grid }, ticks: { callback: axisMoney },
           title: { display: true, text: "daily " + cur } },
      yCum: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
              ticks: { callback: axisMoney }, title: { display: true, text: "running total " + cur } }
    };
  }

  draw("chart-daily", function () {
    var tenantsCum = view.cumulative_tenants || [];
    var pts = d.daily.map(function (p, i) {
      return { x: Number(String(p.day).slice(8, 10)), y: num(p.actual), c: num(view.cumulative[i]),
               t: num(tenantsCum[i]) };
    });
    var lastDay = pts.length ? pts[pts.length - 1].x : 1;
    var end = view.days_in_month || lastDay;
    var datasets = [
      { label: "Daily cost, account", data: pts.map(function (p) { return { x: p.x, y: p.y }; }), yAxisID: "y",
        borderColor: C.daily, backgroundColor: C.daily, borderWidth: 2.5, pointRadius: 3, tension: 0.2 },
      { label: "Running total, account", data: pts.map(function (p) { return { x: p.x, y: p.c }; }),
        yAxisID: "yCum", borderColor: C.cumulative, backgroundColor: C.cumulative, borderWidth: 2.5, pointRadius: 0 },
      { label: "Running total, tenants", data: pts.map(function (p) { return { x: p.x, y: p.t }; }),
        yAxisID: "yCum", borderColor: C.tenants, backgroundColor: C.tenants, borderWidth: 2.5, pointRadius: 0 }
    ];
    if (d.forecast && pts.length) {
      datasets = datasets.concat(forecastDatasets(pts, end));
    }
    var prefix = String(d.period || "");
    return {
      type: "line",
      data: { datasets: datasets },
      options: {
        parsing: true,
        interaction: { mode: "nearest", intersect: false },
        scales: dailyScales(end, prefix),
        plugins: {
          legend: legend({ position: "bottom",
            labels: { filter: function (item) { return item.text.charAt(0) !== "_"; } } }),
          tooltip: {
            filter: function (item) { return item.dataset.label.charAt(0) !== "_"; },
            callbacks: {
              title: function (items) { return items.length ? prefix + "-" + String(items[0].parsed.x).padStart(2, "0") : ""; },
              label: function (ctx) { return ctx.dataset.label + ": " + moneyCur(ctx.parsed.y); }
            }
          }
        }
      }
    };
  });

  // 3. Budget used, % (horizontal), with 80 % and 100 % reference lines.
  var refLines = {
    id: "curflowRefLines",
    afterDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      [[80, C.warn], [100, C.over]].forEach(function (r) {
        var px = x.getPixelForValue(r[0]);
        if (px < area.left || px > area.right) { return; }
        ctx.save();
        ctx.strokeStyle = r[1];
        ctx.lineWidth = 1.5;
        ctx.setLineDash([5, 4]);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = r[1];
        ctx.font = "600 11px " + Chart.defaults.font.family;
        ctx.textAlign = "center";
        ctx.fillText(r[0] + " %", px, area.top - 4);
        ctx.restore();
      });
    }
  };
  draw("chart-budgets", function () {
    var b = d.budgets;
    var used = b.map(function (x) { return num(x.used_pct); });
    var max = Math.max(120, Math.ceil((Math.max.apply(null, used) + 10) / 10) * 10);
    return {
      type: "bar",
      data: {
        labels: b.map(function (x) { return x.tenant; }),
        datasets: [{ label: "Budget used", data: used, borderRadius: 2, maxBarThickness: 34,
          backgroundColor: used.map(function (u) { return u >= 100 ? C.over : u >= 80 ? C.warn : C.ok; }) }]
      },
      options: {
        indexAxis: "y",
        layout: { padding: { top: 16 } },
        scales: {
          x: { min: 0, max: max, grid: { color: C.grid },
               ticks: { callback: function (v) { return v + " %"; } } },
          y: { grid: { display: false },
               ticks: { callback: function (v) { var s = String(this.getLabelForValue(v));
                 return s.length > 18 ? s.slice(0, 17) + "\u2026" : s; } } }
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            label: function (ctx) {
              var x = b[ctx.dataIndex];
              return [pctText(x.used_pct) + " of " + moneyCur(num(x.budget)),
                      "month to date " + moneyCur(num(x.month_to_date)),
                      "forecast " + (x.forecast === null ? "n/a" : moneyCur(num(x.forecast))),
                      "status " + x.status];
            } } }
        }
      },
      plugins: [refLines]
    };
  });

  // 4. Attribution coverage.
  draw("chart-coverage", function () {
    var c = d.coverage;
    var parts = [["Tagged", c.tagged_pct, C.tagged], ["Usage driver", c.usage_driver_pct, C.driver],
                 ["Fallback", c.fallback_pct, C.fallback], ["Unattributed", c.unattributed_pct, C.unattributed]];
    return {
      type: "doughnut",
      data: {
        labels: parts.map(function (p) { return p[0] + " " + num(p[1]).toFixed(1) + " %"; }),
        datasets: [{ data: parts.map(function (p) { return num(p[1]); }),
                     backgroundColor: parts.map(function (p) { return p[2]; }), borderColor: "#ffffff", borderWidth: 2 }]
      },
      options: {
        cutout: "58%",
        plugins: {
          legend: { position: "right" },
          tooltip: { callbacks: { label: function (ctx) { return ctx.label; } } }
        }
      }
    };
  });

  done();
})();

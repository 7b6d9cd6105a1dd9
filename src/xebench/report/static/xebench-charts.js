/*
 * xebench-charts.js: draws xebench chart specs with Chart.js (load chart.umd.min.js first).
 *
 * On DOMContentLoaded, every chart block -- a script element of type
 * "application/json" and class "xb-chart" holding one spec -- is parsed and drawn
 * into a canvas inside a div of class "xb-chart-box" (data-kind: the spec's kind)
 * inserted right after the block. (No markup in this file's text: it is inlined
 * into reports' script elements.) window.xebenchCharts.render(root) draws (again) the
 * blocks under root, for a page that has changed its content.
 *
 * Spec (the contract with xebench.report.charts.chart_spec):
 *   {"kind": "line" | "bar" | "histogram" | "reliability" | "ranking",
 *    "title", "x_label", "y_label", "x_type": "time" | "linear" | "category",
 *    "series": [{"name", "x": [...], "y": [...], "lo"?, "hi"?, "counts"?, "color"?}],
 *    "thresholds"?: [{"y", "label", "color"?} or {"x", "label"}], "height"?: 260,
 *    "y_format"?: "percent", "bin_edges"?: [...] (reliability: where the count bars go)}
 *
 * Plain ES2017, no build step, no eval, no inline script, no HTML built from spec
 * text (all text goes to the canvas or to textContent): works under a strict CSP
 * (script-src 'self').
 */
(function () {
  "use strict";

  const SELECTOR = 'script[type="application/json"].xb-chart';
  const KINDS = ["line", "bar", "histogram", "reliability", "ranking"];
  const PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ];
  const boxes = new WeakMap(); // data block -> the box drawn for it

  // --- numbers and text ----------------------------------------------------------

  const SIG4 = new Intl.NumberFormat("en-US", {
    minimumSignificantDigits: 4,
    maximumSignificantDigits: 4,
  });

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  /** A number to 4 significant digits ("n/a" when missing). */
  function fmt(v) {
    if (!isNum(v)) return "n/a";
    if (v !== 0 && (Math.abs(v) < 1e-4 || Math.abs(v) >= 1e9)) return v.toPrecision(4);
    return SIG4.format(v);
  }

  /** A count: whole numbers in full with separators, weighted ones to 4 digits. */
  function fmtCount(v) {
    if (!isNum(v)) return "n/a";
    return Number.isInteger(v) ? v.toLocaleString("en-US") : fmt(v);
  }

  function fmtValue(v, spec) {
    return spec.y_format === "percent" && isNum(v) ? fmt(v * 100) + "%" : fmt(v);
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  /** Epoch ms as "YYYY-MM-DD HH:MM" (UTC; the reports' and the store's time zone). */
  function fmtTime(ms, withDate) {
    const d = new Date(ms);
    const day = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
    const time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    return withDate === false ? time : day + " " + time;
  }

  const TIME_STEPS = [
    1e3, 5e3, 15e3, 3e4, 6e4, 3e5, 9e5, 18e5, 36e5, 108e5, 216e5, 432e5,
    864e5, 1728e5, 6048e5, 12096e5, 2592e6, 7776e6, 31536e6,
  ];

  /** Ticks on round UTC times (minutes, hours, days, weeks) between min and max. */
  function timeTicks(min, max) {
    if (!isNum(min) || !isNum(max) || max <= min) return [{ value: min }];
    const span = max - min;
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    for (let i = 0; i < TIME_STEPS.length; i++) {
      if (span / TIME_STEPS[i] <= 7) {
        step = TIME_STEPS[i];
        break;
      }
    }
    const ticks = [];
    for (let v = Math.ceil(min / step) * step; v <= max && ticks.length < 60; v += step) {
      ticks.push({ value: v });
    }
    return ticks;
  }

  function text(v) {
    return v === null || v === undefined ? "" : String(v);
  }

  /** x as the scale wants it: epoch ms (time), a number (linear), a label (category). */
  function toX(v, xType) {
    if (xType === "time") {
      const ms = typeof v === "number" ? v : Date.parse(text(v));
      return isNum(ms) ? ms : null;
    }
    if (xType === "linear") return isNum(v) ? v : null;
    return v === null || v === undefined ? null : text(v);
  }

  function color(series, i) {
    return typeof series.color === "string" && series.color ? series.color : PALETTE[i % PALETTE.length];
  }

  function translucent(c, alpha) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
    if (!m) return "rgba(127, 127, 127, " + alpha + ")";
    return "rgba(" + parseInt(m[1], 16) + ", " + parseInt(m[2], 16) + ", " + parseInt(m[3], 16) + ", " + alpha + ")";
  }

  function at(array, i) {
    return Array.isArray(array) && i < array.length ? array[i] : null;
  }

  /** The spec's series as point objects {x, y, lo, hi, n}; points without an x are dropped. */
  function points(series, xType, yOf) {
    const xs = Array.isArray(series.x) ? series.x : [];
    const out = [];
    for (let i = 0; i < xs.length; i++) {
      const x = toX(xs[i], xType);
      if (x === null) continue;
      const y = yOf ? yOf(i) : at(series.y, i);
      out.push({
        x: x,
        y: isNum(y) ? y : null,
        lo: at(series.lo, i),
        hi: at(series.hi, i),
        n: at(series.counts, i),
      });
    }
    return out;
  }

  /** Every category in order of first appearance. */
  function categories(seriesList, key) {
    const seen = new Set();
    const out = [];
    seriesList.forEach(function (s) {
      (Array.isArray(s[key]) ? s[key] : []).forEach(function (v) {
        if (v === null || v === undefined) return;
        const label = text(v);
        if (!seen.has(label)) {
          seen.add(label);
          out.push(label);
        }
      });
    });
    return out;
  }

  function finiteValues(seriesList, keys) {
    const out = [];
    seriesList.forEach(function (s) {
      keys.forEach(function (k) {
        (Array.isArray(s[k]) ? s[k] : []).forEach(function (v) {
          if (isNum(v)) out.push(v);
        });
      });
    });
    return out;
  }

  // --- plugins (per chart, not registered globally) --------------------------------

  /** Dashed threshold lines: {"y": v} horizontal, {"x": v} vertical, with their labels. */
  function thresholdPlugin(lines) {
    return {
      id: "xbThresholds",
      afterDatasetsDraw: function (chart) {
        const area = chart.chartArea;
        const ctx = chart.ctx;
        lines.forEach(function (t) {
          const horizontal = isNum(t.y);
          const scale = horizontal ? chart.scales.y : chart.scales.x;
          const value = horizontal ? t.y : t.x;
          if (!scale || !isNum(value)) return;
          const p = scale.getPixelForValue(value);
          const inside = horizontal ? p >= area.top - 1 && p <= area.bottom + 1 : p >= area.left - 1 && p <= area.right + 1;
          if (!inside) return;
          ctx.save();
          ctx.strokeStyle = typeof t.color === "string" && t.color ? t.color : "#b3261e";
          ctx.fillStyle = ctx.strokeStyle;
          ctx.lineWidth = 1.5;
          ctx.setLineDash([6, 4]);
          ctx.beginPath();
          if (horizontal) {
            ctx.moveTo(area.left, p);
            ctx.lineTo(area.right, p);
          } else {
            ctx.moveTo(p, area.top);
            ctx.lineTo(p, area.bottom);
          }
          ctx.stroke();
          const label = text(t.label);
          if (label) {
            ctx.setLineDash([]);
            ctx.font = "12px system-ui, sans-serif";
            if (horizontal) {
              ctx.textAlign = "right";
              ctx.textBaseline = "bottom";
              ctx.fillText(label, area.right - 4, p - 3);
            } else {
              ctx.textAlign = "left";
              ctx.textBaseline = "top";
              ctx.fillText(label, p + 4, area.top + 2);
            }
          }
          ctx.restore();
        });
      },
    };
  }

  /** Horizontal interval bars (with caps) from each point's lo to hi: the ranking's CIs. */
  const intervalPlugin = {
    id: "xbIntervals",
    afterDatasetsDraw: function (chart) {
      const ctx = chart.ctx;
      const xScale = chart.scales.x;
      chart.data.datasets.forEach(function (dataset, i) {
        if (!dataset.xbIntervals || !chart.isDatasetVisible(i)) return;
        const meta = chart.getDatasetMeta(i);
        ctx.save();
        ctx.strokeStyle = dataset.borderColor;
        ctx.lineWidth = 2;
        meta.data.forEach(function (element, j) {
          const point = dataset.data[j];
          if (!point || !isNum(point.lo) || !isNum(point.hi)) return;
          const a = xScale.getPixelForValue(point.lo);
          const b = xScale.getPixelForValue(point.hi);
          const y = element.y;
          ctx.beginPath();
          ctx.moveTo(a, y);
          ctx.lineTo(b, y);
          ctx.moveTo(a, y - 6);
          ctx.lineTo(a, y + 6);
          ctx.moveTo(b, y - 6);
          ctx.lineTo(b, y + 6);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };

  // --- the kinds ---------------------------------------------------------------------

  function axisTitle(label) {
    return { display: !!text(label), text: text(label) };
  }

  function xScale(spec, extra) {
    const xType = spec.x_type || "category";
    const scale = Object.assign({ title: axisTitle(spec.x_label) }, extra || {});
    if (xType === "time") {
      scale.type = "linear";
      scale.bounds = "data";
      scale.afterBuildTicks = function (axis) {
        axis.ticks = timeTicks(axis.min, axis.max);
      };
      scale.ticks = {
        maxRotation: 0,
        autoSkipPadding: 12,
        callback: function (v, i, ticks) {
          const step = ticks.length > 1 ? ticks[1].value - ticks[0].value : 864e5;
          const d = new Date(v);
          const midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
          if (step >= 864e5) return fmtTime(v).slice(0, 10);
          const label = fmtTime(v, i === 0 || midnight);
          return step < 6e4 ? label + ":" + pad(d.getUTCSeconds()) : label;
        },
      };
    } else {
      scale.type = xType === "linear" ? "linear" : "category";
    }
    return scale;
  }

  function yTicks(spec) {
    if (spec.y_format !== "percent") return {};
    return {
      callback: function (v) {
        return +(v * 100).toPrecision(4) + "%";
      },
    };
  }

  function thresholdRange(spec, axis) {
    const values = (Array.isArray(spec.thresholds) ? spec.thresholds : [])
      .map(function (t) { return t && t[axis]; })
      .filter(isNum);
    if (!values.length) return {};
    return { suggestedMin: Math.min.apply(null, values), suggestedMax: Math.max.apply(null, values) };
  }

  function xLabelOf(spec, raw) {
    return spec.x_type === "time" ? fmtTime(raw.x) + " UTC" : text(raw.x);
  }

  function lineConfig(spec) {
    const xType = spec.x_type || "category";
    const datasets = [];
    spec.series.forEach(function (s, i) {
      const c = color(s, i);
      const data = points(s, xType);
      if (Array.isArray(s.lo) && Array.isArray(s.hi)) {
        const upper = datasets.length;
        const band = { borderWidth: 0, pointRadius: 0, pointHitRadius: 0, spanGaps: false, xbHidden: true };
        datasets.push(Object.assign({ label: text(s.name) + " (upper)", data: points(s, xType, function (j) { return at(s.hi, j); }), fill: false }, band));
        datasets.push(Object.assign({ label: text(s.name) + " (lower)", data: points(s, xType, function (j) { return at(s.lo, j); }), fill: { target: upper }, backgroundColor: translucent(c, 0.18) }, band));
      }
      datasets.push({
        label: text(s.name),
        data: data,
        borderColor: c,
        backgroundColor: c,
        borderWidth: 2,
        pointRadius: data.length > 60 ? 0 : 2.5,
        pointHitRadius: 6,
        spanGaps: false,
        fill: false,
      });
    });
    const scales = {
      x: xScale(spec, xType === "category" ? { labels: categories(spec.series, "x") } : {}),
      y: Object.assign({ type: "linear", title: axisTitle(spec.y_label), ticks: yTicks(spec) }, thresholdRange(spec, "y")),
    };
    return {
      type: "line",
      data: { datasets: datasets },
      options: {
        scales: scales,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? xLabelOf(spec, items[0].raw) : ""; },
              label: function (item) {
                const p = item.raw;
                let out = item.dataset.label + ": " + fmtValue(p.y, spec);
                if (isNum(p.lo) || isNum(p.hi)) out += " [" + fmtValue(p.lo, spec) + ", " + fmtValue(p.hi, spec) + "]";
                return out;
              },
            },
          },
        },
      },
    };
  }

  function barConfig(spec) {
    const xType = spec.x_type || "category";
    const histogram = spec.kind === "histogram";
    const datasets = spec.series.map(function (s, i) {
      const c = color(s, i);
      return {
        type: "bar",
        label: text(s.name),
        data: points(s, xType),
        backgroundColor: histogram ? translucent(c, 0.75) : c,
        borderColor: c,
        borderWidth: histogram ? 1 : 0,
        barPercentage: histogram ? 1 : 0.9,
        categoryPercentage: histogram ? 0.96 : 0.8,
      };
    });
    const x = xScale(spec, { offset: true, grid: { offset: xType === "category" } });
    if (xType === "category") x.labels = categories(spec.series, "x");
    const y = Object.assign(
      { type: "linear", beginAtZero: true, title: axisTitle(spec.y_label), ticks: yTicks(spec) },
      thresholdRange(spec, "y"),
    );
    return {
      type: "bar",
      data: { datasets: datasets },
      options: {
        scales: { x: x, y: y },
        interaction: { mode: "index", intersect: false },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) {
                return items.length ? (spec.x_type === "linear" ? fmt(items[0].raw.x) : xLabelOf(spec, items[0].raw)) : "";
              },
              label: function (item) { return item.dataset.label + ": " + fmtValue(item.raw.y, spec); },
            },
          },
        },
      },
    };
  }

  function reliabilityConfig(spec) {
    const datasets = [
      {
        type: "line",
        label: "perfect calibration",
        data: [{ x: 0, y: 0 }, { x: 1, y: 1 }],
        borderColor: "#888888",
        borderDash: [6, 4],
        borderWidth: 1.5,
        pointRadius: 0,
        pointHitRadius: 0,
        fill: false,
        order: 2,
        xbNoTooltip: true,
      },
    ];
    const edges = Array.isArray(spec.bin_edges) ? spec.bin_edges : null;
    let counted = false;
    spec.series.forEach(function (s, i) {
      const c = color(s, i);
      datasets.push({
        type: "line",
        label: text(s.name),
        data: points(s, "linear"),
        borderColor: c,
        backgroundColor: c,
        borderWidth: 2,
        pointRadius: 3.5,
        spanGaps: true,
        fill: false,
        order: 1,
      });
      if (!Array.isArray(s.counts)) return;
      counted = true;
      let bars;
      if (edges && edges.length === s.counts.length + 1) {
        bars = s.counts.map(function (n, j) {
          return { x: (edges[j] + edges[j + 1]) / 2, y: isNum(n) ? n : null, a: edges[j], b: edges[j + 1] };
        });
      } else {
        bars = points(s, "linear", function (j) { return at(s.counts, j); });
      }
      datasets.push({
        type: "bar",
        label: text(s.name) + ": rows per bin",
        data: bars,
        yAxisID: "y2",
        backgroundColor: translucent(c, 0.2),
        borderColor: translucent(c, 0.45),
        borderWidth: 1,
        barPercentage: 1,
        categoryPercentage: 1,
        grouped: false,
        order: 3,
      });
    });
    const scales = {
      x: { type: "linear", min: 0, max: 1, title: axisTitle(spec.x_label || "mean predicted") },
      y: { type: "linear", min: 0, max: 1, title: axisTitle(spec.y_label || "observed") },
    };
    if (counted) {
      scales.y2 = {
        type: "linear",
        position: "right",
        beginAtZero: true,
        grid: { drawOnChartArea: false },
        title: axisTitle(spec.y2_label || "rows"),
      };
    }
    return {
      type: "line",
      data: { datasets: datasets },
      options: {
        scales: scales,
        interaction: { mode: "nearest", intersect: true },
        plugins: {
          tooltip: {
            filter: function (item) { return !item.dataset.xbNoTooltip; },
            callbacks: {
              title: function () { return ""; },
              label: function (item) {
                const p = item.raw;
                if (item.dataset.type === "bar") {
                  const bin = isNum(p.a) ? " in [" + fmt(p.a) + ", " + fmt(p.b) + ")" : "";
                  return item.dataset.label + ": " + fmtCount(p.y) + bin;
                }
                let out = item.dataset.label + ": predicted " + fmt(p.x) + ", observed " + fmt(p.y);
                if (p.n !== null && p.n !== undefined) out += " (n = " + fmtCount(p.n) + ")";
                return out;
              },
            },
          },
        },
      },
    };
  }

  function rankingConfig(spec) {
    const labels = categories(spec.series, "y");
    const datasets = spec.series.map(function (s, i) {
      const c = color(s, i);
      const ys = Array.isArray(s.y) ? s.y : [];
      const data = [];
      ys.forEach(function (name, j) {
        if (name === null || name === undefined) return;
        const v = at(s.x, j);
        data.push({ x: isNum(v) ? v : null, y: text(name), lo: at(s.lo, j), hi: at(s.hi, j) });
      });
      return {
        type: "scatter",
        label: text(s.name),
        data: data,
        borderColor: c,
        backgroundColor: c,
        pointRadius: 5,
        pointHoverRadius: 6,
        xbIntervals: true,
      };
    });
    const values = finiteValues(spec.series, ["x", "lo", "hi"]).concat(
      (Array.isArray(spec.thresholds) ? spec.thresholds : []).map(function (t) { return t && t.x; }).filter(isNum),
    );
    const x = { type: "linear", title: axisTitle(spec.x_label), grace: "5%" };
    if (values.length) {
      x.suggestedMin = Math.min.apply(null, values);
      x.suggestedMax = Math.max.apply(null, values);
    }
    return {
      type: "scatter",
      data: { datasets: datasets },
      options: {
        scales: {
          x: x,
          y: { type: "category", labels: labels, offset: true, title: axisTitle(spec.y_label) },
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? text(items[0].raw.y) : ""; },
              label: function (item) {
                const p = item.raw;
                let out = item.dataset.label + ": " + fmt(p.x);
                if (isNum(p.lo) || isNum(p.hi)) out += " [" + fmt(p.lo) + ", " + fmt(p.hi) + "]";
                return out;
              },
            },
          },
        },
      },
      plugins: [intervalPlugin],
    };
  }

  const BUILDERS = {
    line: lineConfig,
    bar: barConfig,
    histogram: barConfig,
    reliability: reliabilityConfig,
    ranking: rankingConfig,
  };

  function config(spec) {
    const cfg = BUILDERS[spec.kind](spec);
    const options = cfg.options;
    options.responsive = true;
    options.maintainAspectRatio = false;
    options.animation = false;
    const plugins = options.plugins;
    const visible = cfg.data.datasets.filter(function (d) { return !d.xbHidden; }).length;
    plugins.title = { display: !!text(spec.title), text: text(spec.title), align: "start", font: { size: 14 } };
    plugins.legend = {
      display: visible > 1,
      labels: {
        filter: function (item, data) { return !data.datasets[item.datasetIndex].xbHidden; },
      },
    };
    const tooltip = plugins.tooltip || (plugins.tooltip = {});
    const filter = tooltip.filter;
    tooltip.filter = function (item) {
      return !item.dataset.xbHidden && (!filter || filter(item));
    };
    const thresholds = Array.isArray(spec.thresholds) ? spec.thresholds : [];
    cfg.plugins = (cfg.plugins || []).concat(thresholds.length ? [thresholdPlugin(thresholds)] : []);
    return cfg;
  }

  // --- the page ----------------------------------------------------------------------

  function parseSpec(block) {
    const spec = JSON.parse(block.textContent);
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new Error("a chart spec is a JSON object");
    if (KINDS.indexOf(spec.kind) < 0) throw new Error("unknown chart kind: " + text(spec.kind));
    if (!Array.isArray(spec.series)) throw new Error("a chart spec needs a list of series");
    spec.series = spec.series.filter(function (s) { return s && typeof s === "object"; });
    if (["time", "linear", "category"].indexOf(spec.x_type || "category") < 0) {
      throw new Error("unknown x_type: " + text(spec.x_type));
    }
    return spec;
  }

  function clear(block) {
    const box = boxes.get(block);
    boxes.delete(block);
    if (!box) return;
    const canvas = box.querySelector("canvas");
    const chart = canvas && window.Chart ? window.Chart.getChart(canvas) : undefined;
    if (chart) chart.destroy();
    box.remove();
  }

  function renderBlock(block) {
    clear(block);
    const box = document.createElement("div");
    box.className = "xb-chart-box";
    boxes.set(block, box);
    let spec;
    try {
      spec = parseSpec(block);
      if (!window.Chart) throw new Error("Chart.js is not loaded");
    } catch (error) {
      box.dataset.kind = "error";
      box.textContent = "chart not drawn: " + error.message;
      block.insertAdjacentElement("afterend", box);
      console.error("xebench-charts:", error);
      return null;
    }
    const height = isNum(spec.height) && spec.height > 0 ? spec.height : 260;
    const title = text(spec.title) || spec.kind + " chart";
    box.dataset.kind = spec.kind;
    box.style.position = "relative";
    box.style.height = height + "px";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", title);
    canvas.textContent = title; // the fallback content: text, never markup
    box.appendChild(canvas);
    block.insertAdjacentElement("afterend", box);
    return new window.Chart(canvas, config(spec));
  }

  /** Draw (or redraw) every chart block under root (the whole document by default). */
  function render(root) {
    const scope = root || document;
    const blocks = Array.prototype.slice.call(scope.querySelectorAll(SELECTOR));
    if (scope.matches && scope.matches(SELECTOR)) blocks.unshift(scope);
    return blocks.map(renderBlock).filter(Boolean);
  }

  window.xebenchCharts = { render: render, format: fmt, version: "1" };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  } else {
    render(document);
  }
})();

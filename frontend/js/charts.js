// Hand-written SVG charts. Styles are presentation attributes, not CSS classes, so a chart
// serialised on its own (SVG/PNG export) looks exactly like the one on the page.

import { s } from "./dom.js";
import { methodLabel } from "./format.js";

export const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
export const AXIS = "#4b5563";
export const GRID = "#e5e7eb";
export const TEXT = "#1f2937";

/** A chart width (SVG user units = CSS px) that fits `available` pixels, so text keeps its size. */
export function fitWidth(available, min, max) {
  return Math.round(Math.min(max, Math.max(min, (available || max) - 20)));
}

/** Round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) {
    const pad = Math.abs(lo) || 1;
    lo -= pad / 2;
    hi += pad / 2;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
  const start = Math.floor(lo / step + 1e-9) * step;
  const ticks = [];
  // start + i * step, not a running sum: adding 0.2 three times to -0.6 misses zero by 6e-17.
  for (let i = 0; start + i * step <= hi + step * 0.5 + 1e-12; i += 1) ticks.push(Number((start + i * step).toPrecision(12)));
  if (ticks[ticks.length - 1] < hi - 1e-12) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

export function scale(d0, d1, r0, r1) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

export function frame({ width, height, title, desc }) {
  return s(
    "svg",
    {
      xmlns: "http://www.w3.org/2000/svg",
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "font-family": FONT,
      "font-size": 12,
      class: "chart",
      preserveAspectRatio: "xMidYMid meet",
    },
    s("title", {}, title),
    desc ? s("desc", {}, desc) : null,
    s("rect", { x: 0, y: 0, width, height, fill: "#ffffff" }),
  );
}

/** A grid line and a label (`format(t)`) per y tick. */
export function yGridLines(yTicks, y, { margin, width }, format) {
  return yTicks.flatMap((t) => [
    s("line", { x1: margin.left, x2: width - margin.right, y1: y(t), y2: y(t), stroke: GRID }),
    s("text", { x: margin.left - 6, y: y(t) + 4, "text-anchor": "end", fill: AXIS }, format(t)),
  ]);
}

/** Axes with grid lines, tick labels and axis titles; returns the scales. */
export function axes(svg, { width, height, margin, xTicks, yTicks, xFormat, yFormat, xLabel, yLabel }) {
  const x = scale(xTicks[0], xTicks[xTicks.length - 1], margin.left, width - margin.right);
  const y = scale(yTicks[0], yTicks[yTicks.length - 1], height - margin.bottom, margin.top);
  const g = s("g", { "aria-hidden": "true" });
  g.append(...yGridLines(yTicks, y, { margin, width }, yFormat));
  for (const t of xTicks) {
    g.append(
      s("line", { x1: x(t), x2: x(t), y1: height - margin.bottom, y2: height - margin.bottom + 4, stroke: AXIS }),
      s("text", { x: x(t), y: height - margin.bottom + 17, "text-anchor": "middle", fill: AXIS }, xFormat(t)),
    );
  }
  g.append(
    s("line", {
      x1: margin.left,
      x2: width - margin.right,
      y1: height - margin.bottom,
      y2: height - margin.bottom,
      stroke: AXIS,
    }),
    s("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom, stroke: AXIS }),
    s("text", { x: (margin.left + width - margin.right) / 2, y: height - 6, "text-anchor": "middle", fill: TEXT }, xLabel),
    s(
      "text",
      {
        x: -(margin.top + height - margin.bottom) / 2,
        y: 14,
        transform: "rotate(-90)",
        "text-anchor": "middle",
        fill: TEXT,
      },
      yLabel,
    ),
  );
  svg.append(g);
  return { x, y };
}

export function legend(svg, items, { x, y }) {
  const g = s("g", { class: "legend" });
  let cx = x;
  for (const item of items) {
    const entry = s("g", { transform: `translate(${cx},${y})` });
    entry.append(item.swatch(0, -4), s("text", { x: 12, y: 0, fill: TEXT, "dominant-baseline": "middle" }, item.name));
    g.append(entry);
    cx += 24 + item.name.length * 7;
  }
  svg.append(g);
  return g;
}

/** A chart with no data: `text` in the middle of the frame. */
export function emptyNote(svg, width, height, text) {
  svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: AXIS }, text));
  return svg;
}

/**
 * The y range a line chart shows: the values' (or yMin/yMax where given), widened to at least
 * `yMinSpan` so a flat curve (e.g. no ξ at zero yet) gets a sensible range, not one around ±0.5.
 */
export function lineYRange(ys, { yMin, yMax, yMinSpan = 0 } = {}) {
  let yLo = yMin ?? Math.min(...ys);
  let yHi = yMax ?? Math.max(...ys);
  if (yHi - yLo < yMinSpan) {
    const mid = (yLo + yHi) / 2;
    yLo = yMin ?? mid - yMinSpan / 2;
    yHi = yLo + yMinSpan;
  }
  return [yLo, yHi];
}

/** One series' line and a titled dot per point; null when it has no finite point. */
function seriesGroup(sr, { x, y }, { xLabel, xFormat, yFormat }) {
  const pts = sr.points.filter((p) => p.y !== null && Number.isFinite(p.y));
  if (!pts.length) return null;
  const g = s("g", { "data-series": sr.name });
  g.append(
    s("polyline", {
      points: pts.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" "),
      fill: "none",
      stroke: sr.color,
      "stroke-width": 2,
      "stroke-dasharray": sr.dash || null,
      "stroke-linejoin": "round",
    }),
  );
  for (const p of pts) {
    g.append(
      s(
        "circle",
        { cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: pts.length > 60 ? 1.5 : 3, fill: sr.color },
        s("title", {}, `${sr.name} · ${xLabel} ${xFormat(p.x)}: ${yFormat(p.y)}`),
      ),
    );
  }
  return g;
}

/** Legend entries: one per solid series; dashed (fine-tune) series share one entry instead of repeating every name. */
function lineLegendItems(series) {
  const named = series.filter((sr) => sr.points.length && !sr.dash);
  const items = named.map((sr) => ({
    name: sr.name,
    swatch: (lx, ly) => s("line", { x1: lx - 2, x2: lx + 8, y1: ly + 4, y2: ly + 4, stroke: sr.color, "stroke-width": 3 }),
  }));
  if (series.some((sr) => sr.points.length && sr.dash)) {
    items.push({
      name: "fine-tune",
      swatch: (lx, ly) =>
        s("line", { x1: lx - 2, x2: lx + 8, y1: ly + 4, y2: ly + 4, stroke: AXIS, "stroke-width": 2, "stroke-dasharray": "3 2" }),
    });
  }
  return items;
}

/**
 * Line chart of one or more series: {name, color, dash?, points: [{x, y}]}.
 * Empty series are skipped; with no points at all it shows `emptyText`.
 */
export function lineChart({
  title,
  xLabel,
  yLabel,
  series,
  yFormat = String,
  yTickFormat,
  xFormat = String,
  yMin,
  yMax,
  yMinSpan = 0,
  xMin,
  xMax,
  emptyText = "No data yet",
  width = 640,
  height = 260,
}) {
  const svg = frame({ width, height, title });
  const all = series.flatMap((sr) => sr.points);
  const margin = { top: 30, right: 16, bottom: 42, left: 62 };
  if (all.length === 0) return emptyNote(svg, width, height, emptyText);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y).filter((v) => v !== null && Number.isFinite(v));
  const xTicks = niceTicks(xMin ?? Math.min(...xs), xMax ?? Math.max(...xs, (xMin ?? Math.min(...xs)) + 1), 6).filter((t) =>
    Number.isInteger(t),
  );
  const yTicks = niceTicks(...lineYRange(ys, { yMin, yMax, yMinSpan }), 5);
  const scales = axes(svg, { width, height, margin, xTicks, yTicks, xFormat, yFormat: yTickFormat || yFormat, xLabel, yLabel });
  for (const sr of series) {
    const g = seriesGroup(sr, scales, { xLabel, xFormat, yFormat });
    if (g) svg.append(g);
  }
  const items = lineLegendItems(series);
  if (items.length > 1) legend(svg, items, { x: margin.left + 4, y: 14 });
  return svg;
}

const TOTAL_FILL = "#cbd5e1";
const KEPT_FILL = "#1d4ed8";

/** Narrowest column of the layer chart (px): below it the chart grows wider than asked, and scrolls. */
export const MIN_LAYER_BAND = 6;
/** Least room between two layer numbers under the bars (px). */
const MIN_LABEL_GAP = 18;
const LAYER_MARGIN = { top: 30, right: 16, bottom: 56, left: 58 };

/**
 * Geometry of the layer chart for `count` layers in `width` px: each column's `band`, the chart's
 * `width` (wider than asked when the columns would be narrower than MIN_LAYER_BAND, e.g. densenet121's
 * 120 BN layers on a phone) and the step between numbered layers (1, 2, 5, 10, 20, ...: layer 1 and
 * every multiple of it), so that neither the bars nor their numbers run together.
 */
export function layerLayout(count, width, margin = LAYER_MARGIN) {
  const plot = (w) => w - margin.left - margin.right;
  const n = Math.max(1, count);
  const chartWidth = Math.max(width, Math.ceil(margin.left + margin.right + n * MIN_LAYER_BAND));
  const band = plot(chartWidth) / n;
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  const labelStep = steps.find((st) => st * band >= MIN_LABEL_GAP) ?? steps.at(-1);
  return { width: chartWidth, band, labelStep };
}

/** Whether layer number `n` (1-based) is written under its column. */
export function layerNumbered(n, labelStep) {
  return n === 1 || n % labelStep === 0;
}

/** One layer's column: total (light) behind kept (dark), titled, and numbered every `labelStep`. */
function layerColumn(layer, i, { bx, bw, y, labelY, labelStep }) {
  const col = s("g", { "data-layer": layer.name });
  const bar = (value, fill) =>
    s("rect", { x: bx.toFixed(1), y: y(value).toFixed(1), width: bw.toFixed(1), height: (y(0) - y(value)).toFixed(1), fill });
  col.append(
    s(
      "title",
      {},
      `${layer.name}: kept ${layer.kept} of ${layer.total} (${layer.total ? Math.round((100 * layer.kept) / layer.total) : 0} %)`,
    ),
    bar(layer.total, TOTAL_FILL),
    bar(layer.kept, KEPT_FILL),
  );
  if (layerNumbered(i + 1, labelStep)) {
    const lx = bx + bw / 2;
    col.append(
      s(
        "text",
        { x: lx, y: labelY, "text-anchor": "end", fill: AXIS, "font-size": 10, transform: `rotate(-45 ${lx} ${labelY})` },
        String(i + 1),
      ),
    );
  }
  return col;
}

/** The bar chart's baseline and axis titles. */
function layerAxisTitles(y, { margin, width, height }) {
  return [
    s("line", { x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0), stroke: AXIS }),
    s(
      "text",
      { x: (margin.left + width - margin.right) / 2, y: height - 6, "text-anchor": "middle", fill: TEXT },
      "layer (BN, in network order)",
    ),
    s(
      "text",
      { x: -(margin.top + height - margin.bottom) / 2, y: 14, transform: "rotate(-90)", "text-anchor": "middle", fill: TEXT },
      "channels",
    ),
  ];
}

/**
 * Channels per layer: total (light) behind kept (dark), one column per layer. With many layers the
 * chart is wider than `width` (see layerLayout): put it in a horizontally scrolling box.
 */
export function layerBars({ layers, width = 900, height = 300 }) {
  const margin = LAYER_MARGIN;
  const layout = layerLayout(layers.length, width, margin);
  const svg = frame({ width: layout.width, height, title: "Channels per layer: total and kept after slimming" });
  if (!layers.length) return emptyNote(svg, layout.width, height, "No layer data");
  const box = { margin, width: layout.width, height };
  const yTicks = niceTicks(0, Math.max(...layers.map((l) => l.total)), 5);
  const y = scale(0, yTicks[yTicks.length - 1], height - margin.bottom, margin.top);
  const { band, labelStep } = layout;
  svg.append(s("g", { "aria-hidden": "true" }, yGridLines(yTicks, y, box, String)));
  // many thin columns: less gap between them, so the bars stay visible
  const bw = Math.max(1, band * (band < 10 ? 0.84 : 0.76));
  layers.forEach((layer, i) => {
    const bx = margin.left + i * band + (band - bw) / 2;
    svg.append(layerColumn(layer, i, { bx, bw, y, labelY: height - margin.bottom + 10, labelStep }));
  });
  svg.append(...layerAxisTitles(y, box));
  legend(
    svg,
    [
      { name: "total", swatch: (lx, ly) => s("rect", { x: lx, y: ly, width: 9, height: 9, fill: TOTAL_FILL }) },
      { name: "kept", swatch: (lx, ly) => s("rect", { x: lx, y: ly, width: 9, height: 9, fill: KEPT_FILL }) },
    ],
    { x: margin.left + 4, y: 14 },
  );
  return svg;
}

export const METHOD_STYLE = {
  baseline: { color: "#4b5563", marker: "square" },
  ns: { color: "#d95f02", marker: "triangle" },
  proxns: { color: "#1b6ec2", marker: "circle" },
};

/** A marker shape centred on (cx, cy). */
export function marker(shape, cx, cy, r, color, extra = {}) {
  const common = { fill: color, stroke: "#ffffff", "stroke-width": 1.5, ...extra };
  if (shape === "square") return s("rect", { x: cx - r, y: cy - r, width: 2 * r, height: 2 * r, ...common });
  if (shape === "triangle") {
    const pts = [
      [cx, cy - r * 1.2],
      [cx + r * 1.1, cy + r * 0.8],
      [cx - r * 1.1, cy + r * 0.8],
    ];
    return s("polygon", { points: pts.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" "), ...common });
  }
  if (shape === "diamond") {
    const pts = [
      [cx, cy - r * 1.3],
      [cx + r * 1.3, cy],
      [cx, cy + r * 1.3],
      [cx - r * 1.3, cy],
    ];
    return s("polygon", { points: pts.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" "), ...common });
  }
  return s("circle", { cx, cy, r, ...common });
}

/** The scatter plot's y range: the accuracies and the baseline, padded, within [0, 1]. */
export function scatterYRange(points, baseline) {
  const ys = points.map((p) => p.y);
  if (baseline !== null && baseline !== undefined) ys.push(baseline);
  const lo = ys.length ? Math.min(...ys) : 0;
  const hi = ys.length ? Math.max(...ys) : 1;
  const pad = Math.max(0.01, (hi - lo) * 0.15);
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)];
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The points that set the y range: not flagged at chance accuracy (`flagged`), and not far below the
 * rest (more than 3 interquartile ranges, at least 6 points, under the lower quartile), so one
 * collapsed run does not squash the 96–100 % band. All points when that would leave none.
 */
export function bulkPoints(points) {
  const kept = points.filter((p) => !p.flagged);
  let bulk = kept.length ? kept : points;
  if (bulk.length >= 4) {
    const ys = bulk.map((p) => p.y).sort((a, b) => a - b);
    const q1 = quantile(ys, 0.25);
    const fence = q1 - 3 * Math.max(quantile(ys, 0.75) - q1, 0.02);
    bulk = bulk.filter((p) => p.y >= fence);
  }
  return bulk;
}

/**
 * The y ticks of the scatter plot and the points that fall below them (drawn pinned to the bottom
 * edge with their value): the range covers the bulk of the points and the baseline.
 */
export function scatterYAxis(points, baseline) {
  const yTicks = niceTicks(...scatterYRange(bulkPoints(points), baseline), 5);
  const below = new Set(points.filter((p) => p.y < yTicks[0] - 1e-12).map((p) => p.job_id));
  return { yTicks, below };
}

/** The baseline's accuracy as a dashed line across the plot. */
function baselineLine(baseline, y, { margin, width }) {
  return s(
    "g",
    { class: "baseline-line" },
    s("line", {
      x1: margin.left,
      x2: width - margin.right,
      y1: y(baseline),
      y2: y(baseline),
      stroke: "#111827",
      "stroke-width": 1.5,
      "stroke-dasharray": "6 4",
    }),
    s(
      "text",
      { x: width - margin.right - 4, y: y(baseline) - 6, "text-anchor": "end", fill: "#111827" },
      `baseline ${(baseline * 100).toFixed(1)} %`,
    ),
  );
}

const OTHER_METHOD_STYLE = { color: "#7c3aed", marker: "diamond" };
export const CHANCE_COLOR = "#dc2626";
const INACTIVE_COLOR = "#9ca3af";
/** Opacity of a marker that another job of its method beats on both axes. */
export const DOMINATED_OPACITY = 0.3;

/** How a point's marker looks: its method's shape; hollow red at chance, grey when inactive. */
function markerLook(p, frontierMode) {
  const style = METHOD_STYLE[p.method] || OTHER_METHOD_STYLE;
  if (p.active === false) return { shape: style.marker, color: INACTIVE_COLOR, extra: { opacity: 0.45 } };
  const extra = frontierMode && p.frontier === false ? { opacity: DOMINATED_OPACITY } : {};
  if (p.flagged) return { shape: style.marker, color: "#ffffff", extra: { ...extra, stroke: CHANCE_COLOR, "stroke-width": 2 } };
  return { shape: style.marker, color: style.color, extra };
}

function pointAriaLabel(p, { xShort, pinned, selectable }) {
  const parts = [`${p.method} job ${p.job_id}: ${(p.y * 100).toFixed(1)} % accuracy at ${(p.x * 100).toFixed(1)} % ${xShort}`];
  if (p.lam !== null && p.lam !== undefined) parts.push(`λ ${p.lam}`);
  if (pinned) parts.push("below the axis, drawn at its bottom edge");
  if (p.frontier === true) parts.push("on the frontier");
  else if (p.frontier === false && p.active !== false) parts.push("dominated");
  if (p.active === false) parts.push("outside the brushed ranges");
  if (p.flagged) parts.push("at chance accuracy");
  return `${parts.join("; ")}; press Enter to open${selectable ? ", S to select for comparison" : ""}`;
}

/**
 * One job's marker at (cx, cy): focusable, reporting hover, focus, open and (when `selectable`) select
 * to `onPoint`. A button: a selectable one is a toggle whose `aria-pressed` says whether its job is
 * selected for comparison (false here; the page sets it, see experiments.js markSelected).
 */
function pointMarker(p, cx, cy, { onPoint, frontierMode, xShort, pinned, selectable }) {
  const look = markerLook(p, frontierMode);
  const g = s("g", {
    class: `point${p.method === "baseline" ? " baseline-point" : ""}`,
    tabindex: 0,
    role: "button",
    cursor: "pointer",
    "data-job-id": p.job_id,
    "data-frontier": frontierMode ? String(p.frontier === true) : null,
    "aria-pressed": selectable ? "false" : null,
    "aria-label": pointAriaLabel(p, { xShort, pinned, selectable }),
  });
  g.append(marker(look.shape, cx, cy, p.method === "baseline" ? 7 : 6, look.color, look.extra));
  if (!onPoint) return g;
  for (const [event, kind] of [
    ["mouseenter", "enter"],
    ["focus", "enter"],
    ["mouseleave", "leave"],
    ["blur", "leave"],
  ]) {
    g.addEventListener(event, (ev) => onPoint(kind, p, g, ev));
  }
  g.addEventListener("click", (ev) => onPoint(ev.shiftKey && selectable ? "select" : "open", p, g, ev));
  g.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      onPoint("open", p, g, ev);
    } else if (selectable && (ev.key === "s" || ev.key === "S")) {
      ev.preventDefault();
      onPoint("select", p, g, ev);
    }
  });
  return g;
}

/** Markers on the same spot: the group's count beside the topmost one. */
function overlapCounts(points, pos) {
  const counted = new Set();
  const labels = [];
  for (const p of [...points].reverse()) {
    if (!p.overlaps?.length || counted.has(p.job_id)) continue;
    for (const id of [p.job_id, ...p.overlaps]) counted.add(id);
    const [cx, cy] = pos(p);
    labels.push(
      s(
        "text",
        { x: cx + 9, y: cy - 7, fill: TEXT, "font-size": 11, "aria-hidden": "true", "pointer-events": "none" },
        `×${p.overlaps.length + 1}`,
      ),
    );
  }
  return labels;
}

/** One legend entry per method plotted, with its marker; then the frontier's conventions in use. */
function methodLegendItems(points, { frontierMode, inactiveNote }) {
  const items = [...new Set(points.map((p) => p.method))].map((m) => {
    const style = METHOD_STYLE[m] || OTHER_METHOD_STYLE;
    return { name: methodLabel(m), swatch: (lx, ly) => marker(style.marker, lx + 4, ly + 4, 5, style.color) };
  });
  if (frontierMode && points.some((p) => p.frontier === false && p.active !== false)) {
    items.push({
      name: "dominated",
      swatch: (lx, ly) => s("circle", { cx: lx + 4, cy: ly + 4, r: 5, fill: AXIS, opacity: DOMINATED_OPACITY }),
    });
  }
  if (points.some((p) => p.flagged)) {
    items.push({
      name: "chance level",
      swatch: (lx, ly) => s("circle", { cx: lx + 4, cy: ly + 4, r: 4.5, fill: "#ffffff", stroke: CHANCE_COLOR, "stroke-width": 2 }),
    });
  }
  if (points.some((p) => p.active === false)) {
    items.push({
      name: `${inactiveNote} (not in frontiers)`,
      swatch: (lx, ly) => s("circle", { cx: lx + 4, cy: ly + 4, r: 5, fill: INACTIVE_COLOR }),
    });
  }
  return items;
}

function boxesOverlap(a, b) {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/**
 * Where to write a short label beside each marker without covering another label or marker:
 * right, left, above or below it, the first that fits inside `bounds`; null when none does.
 * anchors: [{x, y, text, r?}] in pixels, in priority order; returns [{x, y, anchor} | null] with
 * (x, y) the text's start/end point on its baseline. Text width is estimated at `charWidth` per char.
 */
export function placeLabels(anchors, { bounds, charWidth = 6, lineHeight = 11, gap = 3 } = {}) {
  const taken = anchors.map((a) => {
    const r = a.r ?? 6;
    return { x0: a.x - r, x1: a.x + r, y0: a.y - r, y1: a.y + r };
  });
  const inside = (b) => !bounds || (b.x0 >= bounds.x0 && b.x1 <= bounds.x1 && b.y0 >= bounds.y0 && b.y1 <= bounds.y1);
  return anchors.map((a) => {
    const r = a.r ?? 6;
    const w = a.text.length * charWidth;
    const half = lineHeight / 2;
    const candidates = [
      {
        x: a.x + r + gap,
        y: a.y + half - 2,
        anchor: "start",
        box: { x0: a.x + r + gap, x1: a.x + r + gap + w, y0: a.y - half, y1: a.y + half },
      },
      {
        x: a.x - r - gap,
        y: a.y + half - 2,
        anchor: "end",
        box: { x0: a.x - r - gap - w, x1: a.x - r - gap, y0: a.y - half, y1: a.y + half },
      },
      {
        x: a.x,
        y: a.y - r - gap - 1,
        anchor: "middle",
        box: { x0: a.x - w / 2, x1: a.x + w / 2, y0: a.y - r - gap - lineHeight, y1: a.y - r - gap },
      },
      {
        x: a.x,
        y: a.y + r + gap + lineHeight - 2,
        anchor: "middle",
        box: { x0: a.x - w / 2, x1: a.x + w / 2, y0: a.y + r + gap, y1: a.y + r + gap + lineHeight },
      },
    ];
    const spot = candidates.find((c) => inside(c.box) && !taken.some((t) => boxesOverlap(t, c.box)));
    if (!spot) return null;
    taken.push(spot.box);
    return { x: spot.x, y: spot.y, anchor: spot.anchor };
  });
}

/** "λ 0.5" for a point with a λ; "" for one without (baseline). */
export function lamLabel(p) {
  if (p.lam === null || p.lam === undefined) return "";
  return `λ ${Number(p.lam.toPrecision(3))}`;
}

/** λ labels beside the markers, placed so they do not overlap; frontier points get first pick. */
function lamLabels(points, pos, bounds, pinned) {
  // a pinned point's note names its λ already
  const order = [...points]
    .filter((p) => lamLabel(p) && !pinned.has(p.job_id))
    .sort((a, b) => Number(b.frontier === true) - Number(a.frontier === true));
  const anchors = order.map((p) => {
    const [x, y] = pos(p);
    return { x, y, text: lamLabel(p), r: 6 };
  });
  // the "×2" of markers on one spot sits up and right of them: keep labels off it
  const counts = points
    .filter((p) => p.overlaps?.length)
    .map((p) => {
      const [x, y] = pos(p);
      return { x: x + 17, y: y - 11, text: "", r: 8 };
    });
  const spots = placeLabels([...anchors, ...counts], { bounds }).slice(0, anchors.length);
  const g = s("g", { class: "lam-labels", "aria-hidden": "true", "pointer-events": "none" });
  order.forEach((p, i) => {
    const spot = spots[i];
    if (!spot) return;
    g.append(
      s(
        "text",
        {
          x: spot.x.toFixed(1),
          y: spot.y.toFixed(1),
          "text-anchor": spot.anchor,
          "font-size": 10,
          fill: AXIS,
          opacity: p.active === false ? 0.5 : 1,
        },
        anchors[i].text,
      ),
    );
  });
  return g;
}

/**
 * Each method's frontier: a line through its non-dominated points, in x order. Points pinned below
 * the axis (always the front's last ones: the lowest accuracy) are joined by a dashed line, since
 * their drawn height is not their value.
 */
function frontierLines(points, pos, pinned) {
  const g = s("g", { class: "frontiers", "pointer-events": "none" });
  const path = (pts) =>
    pts
      .map((p) =>
        pos(p)
          .map((v) => v.toFixed(1))
          .join(","),
      )
      .join(" ");
  const methods = [...new Set(points.filter((p) => p.frontier === true).map((p) => p.method))];
  for (const m of methods) {
    const front = points.filter((p) => p.frontier === true && p.method === m).sort((a, b) => a.x - b.x || b.y - a.y);
    if (front.length < 2) continue;
    const style = METHOD_STYLE[m] || OTHER_METHOD_STYLE;
    const line = { "data-method": m, fill: "none", stroke: style.color, "stroke-width": 2, "stroke-linejoin": "round", opacity: 0.85 };
    const cut = front.findIndex((p) => pinned.has(p.job_id));
    const solid = cut < 0 ? front : front.slice(0, cut);
    if (solid.length >= 2) g.append(s("polyline", { ...line, points: path(solid) }));
    if (cut >= 0) {
      const dashed = front.slice(Math.max(0, cut - 1));
      if (dashed.length >= 2) g.append(s("polyline", { ...line, class: "to-pinned", "stroke-dasharray": "4 4", points: path(dashed) }));
    }
  }
  return g;
}

/** Two short slanted strokes across the y axis near its bottom: the axis is cut there. */
function axisBreak(x0, yBottom) {
  const stroke = (dy) =>
    s("line", { x1: x0 - 6, x2: x0 + 6, y1: yBottom - 10 + dy + 3, y2: yBottom - 10 + dy - 3, stroke: AXIS, "stroke-width": 1.5 });
  return s(
    "g",
    { class: "axis-break", "aria-hidden": "true" },
    s("rect", { x: x0 - 7, y: yBottom - 16, width: 14, height: 9, fill: "#ffffff" }),
    stroke(-4),
    stroke(0),
  );
}

/** A point below the y axis: its "↓ 10.2 %" note (and λ) above its marker, pinned to the bottom edge. */
function pinnedNote(p, cx, cy, { withLam, right }) {
  const near = cx > right - 60;
  return s(
    "text",
    {
      x: near ? cx + 8 : cx,
      y: cy - 10,
      "text-anchor": near ? "end" : "middle",
      "font-size": 10,
      fill: p.flagged ? CHANCE_COLOR : TEXT,
      "pointer-events": "none",
      class: "pinned-note",
    },
    `↓ ${(p.y * 100).toFixed(1)} %${withLam && lamLabel(p) ? ` · ${lamLabel(p)}` : ""}`,
  );
}

/**
 * The headline plot: accuracy (y) against a compressed share (x), one marker per job.
 * points: [{job_id, method, x, y, lam?, flagged?, frontier?, active?, overlaps?}]; baseline: accuracy or null.
 * Options beyond the original ones: xLabel / xShort (the x axis's title and its words in labels),
 * heading (a title drawn in the chart, so exports carry it), frontier (draw each method's frontier and
 * fade dominated points, from `p.frontier`), labels (λ beside markers), inactiveNote (legend words
 * for `active: false` points). Points below the range of the bulk are pinned to the bottom edge.
 * Calls onPoint(kind, point, element, event) for "enter", "leave", "open" and, with `selectable`
 * (the default), "select" (shift+click, S): markers then say so and carry `aria-pressed`.
 */
export function scatterPlot({
  points,
  baseline,
  yLabel,
  onPoint,
  width = 720,
  height = 420,
  xLabel = "channels pruned (%)",
  xShort = "pruned",
  heading = "",
  frontier = false,
  labels = false,
  inactiveNote = "inactive",
  selectable = true,
}) {
  const svg = frame({
    width,
    height,
    title: heading || `Test accuracy against the share of ${xShort}`,
    desc: `${points.length} finished jobs`,
  });
  const margin = { top: heading ? 62 : 40, right: 24, bottom: 48, left: 62 };
  const xTicks = niceTicks(0, Math.max(0.1, ...points.map((p) => p.x)) * 1.05, 6).filter((t) => t <= 1.0001);
  const { yTicks, below } = scatterYAxis(points, baseline);
  const pctFmt = (v) => `${Math.round(v * 1000) / 10}`;
  const scales = axes(svg, { width, height, margin, xTicks, yTicks, xFormat: pctFmt, yFormat: pctFmt, xLabel, yLabel });
  const bottom = height - margin.bottom;
  const pos = (p) => [scales.x(p.x), below.has(p.job_id) ? bottom - 6 : scales.y(p.y)];
  if (below.size) svg.append(axisBreak(margin.left, bottom));
  if (heading)
    svg.append(s("text", { x: margin.left, y: 20, fill: TEXT, "font-size": 15, "font-weight": 600, class: "chart-heading" }, heading));
  if (baseline !== null && baseline !== undefined) svg.append(baselineLine(baseline, scales.y, { margin, width }));
  if (!points.length) emptyNote(svg, width, height, "No finished jobs yet: points appear here as jobs finish");
  if (frontier) svg.append(frontierLines(points, pos, below));
  const layer = s("g", { class: "points" });
  // inactive first, the baseline's squares last: drawn on top, so jobs at x = 0 never hide them
  const rank = (p) => (p.method === "baseline" ? 2 : p.active === false ? 0 : 1);
  const ordered = [...points].sort((a, b) => rank(a) - rank(b));
  for (const p of ordered) {
    const [cx, cy] = pos(p);
    layer.append(pointMarker(p, cx, cy, { onPoint, frontierMode: frontier, xShort, pinned: below.has(p.job_id), selectable }));
    if (below.has(p.job_id)) layer.append(pinnedNote(p, cx, cy, { withLam: labels, right: width - margin.right }));
  }
  layer.append(...overlapCounts(ordered, pos));
  if (labels) svg.append(lamLabels(points, pos, { x0: margin.left + 2, x1: width - 2, y0: margin.top - 4, y1: bottom - 2 }, below));
  svg.append(layer);
  legend(svg, methodLegendItems(points, { frontierMode: frontier, inactiveNote }), { x: margin.left + 4, y: heading ? 42 : 16 });
  return svg;
}

// Parallel coordinates over an experiment's jobs: one vertical axis per swept config field that
// varies and per headline result, one polyline per job coloured by method. A brush (a range on an
// axis, drawn with the mouse or the keyboard) keeps the jobs inside it; brushes combine with AND.
// Hand-written SVG like charts.js, so the chart exports as SVG/PNG the same way.

import { AXIS, frame, GRID, legend, METHOD_STYLE, TEXT } from "./charts.js";
import { s } from "./dom.js";
import { methodLabel } from "./format.js";
import { finalAcc, finite, removedShare } from "./frontier.js";

/** Config fields a sweep may vary, in the order their axes are drawn. */
export const CONFIG_AXES = [
  { key: "lam", label: "λ" },
  { key: "beta", label: "β" },
  { key: "prune_ratio", label: "prune ratio" },
  { key: "penalty", label: "penalty" },
  { key: "width", label: "width" },
  { key: "epochs", label: "epochs" },
  { key: "finetune_epochs", label: "fine-tune epochs" },
  { key: "seed", label: "seed" },
];

/** Result axes, always drawn: shares in [0, 1]. */
export const RESULT_AXES = [
  { key: "acc_final", label: "accuracy", percent: true },
  { key: "pruned_fraction", label: "channels pruned", percent: true },
  { key: "flops_removed", label: "FLOPs removed", percent: true },
  { key: "params_removed", label: "params removed", percent: true },
];

/** A point's value on axis `key`: a config field as it is, or a derived result share. */
export function axisValue(p, key) {
  if (key === "acc_final") return finite(finalAcc(p));
  if (key === "flops_removed") return removedShare(p.flops_slim, p.flops_full);
  if (key === "params_removed") return removedShare(p.params_slim, p.params_full);
  const v = p[key];
  return v === undefined ? null : v;
}

/**
 * `points` with the method-specific fields a method does not take (GET /api/meta's `method_fields`,
 * e.g. the baseline's λ, stored as 0) set to null, so they sit on the "n/a" line and no brush keeps
 * them. Without `methodFields` the points are returned as they are.
 */
export function withApplicableFields(points, methodFields) {
  if (!methodFields) return points;
  const specific = new Set(Object.values(methodFields).flat());
  return points.map((p) => {
    const takes = methodFields[p.method];
    if (!takes) return p;
    const out = { ...p };
    for (const f of specific) if (!takes.includes(f) && f in out) out[f] = null;
    return out;
  });
}

/** The config axes whose (non-null) values differ between `points`. */
export function varyingFields(points) {
  return CONFIG_AXES.filter(({ key }) => {
    const seen = new Set(points.map((p) => axisValue(p, key)).filter((v) => v !== null));
    return seen.size >= 2;
  }).map((a) => a.key);
}

/**
 * The axes for `points`: each varying config field, then the result shares. Each axis is
 * {key, label, kind: "linear" | "log" | "category", domain: [lo, hi] | categories, percent?}.
 * λ-like fields spanning 20× or more (all positive) get a log scale.
 */
export function buildAxes(points) {
  const specs = [...CONFIG_AXES.filter((a) => varyingFields(points).includes(a.key)), ...RESULT_AXES];
  return specs.map((spec) => {
    const values = points.map((p) => axisValue(p, spec.key)).filter((v) => v !== null);
    if (values.some((v) => typeof v !== "number")) {
      return { ...spec, kind: "category", domain: [...new Set(values.map(String))].sort() };
    }
    let lo = values.length ? Math.min(...values) : 0;
    let hi = values.length ? Math.max(...values) : 1;
    const log = lo > 0 && hi / lo >= 20;
    if (hi === lo) {
      const pad = Math.abs(lo) * 0.1 || 0.5;
      lo -= pad;
      hi += pad;
    }
    return { ...spec, kind: log ? "log" : "linear", domain: [lo, hi] };
  });
}

/** Axis position in [0, 1] (0 bottom) of `value`; null for a missing value. */
export function toFraction(axis, value) {
  if (value === null || value === undefined) return null;
  if (axis.kind === "category") {
    const i = axis.domain.indexOf(String(value));
    if (i < 0) return null;
    return axis.domain.length === 1 ? 0.5 : i / (axis.domain.length - 1);
  }
  const [lo, hi] = axis.domain;
  if (axis.kind === "log") return (Math.log(value) - Math.log(lo)) / (Math.log(hi) - Math.log(lo));
  return (value - lo) / (hi - lo);
}

/** The value at axis position `f` (0 bottom, 1 top); for a category axis, its index. */
export function fromFraction(axis, f) {
  if (axis.kind === "category") return f * Math.max(0, axis.domain.length - 1);
  const [lo, hi] = axis.domain;
  if (f <= 0) return lo;
  if (f >= 1) return hi;
  const v = axis.kind === "log" ? Math.exp(Math.log(lo) + f * (Math.log(hi) - Math.log(lo))) : lo + f * (hi - lo);
  return Number(v.toPrecision(6));
}

/** The number a brush compares on axis `axis`: the value, or the category's index. */
function brushValue(axis, value) {
  if (value === null || value === undefined) return null;
  if (axis.kind === "category") {
    const i = axis.domain.indexOf(String(value));
    return i < 0 ? null : i;
  }
  return value;
}

/**
 * Whether `p` lies inside every brush ({key: [lo, hi]}, bounds included) of an axis in `axes`;
 * a point without a value on a brushed axis is outside. Brushes on absent axes are ignored.
 */
export function inBrushes(p, brushes, axes) {
  for (const axis of axes) {
    const range = brushes[axis.key];
    if (!range) continue;
    const v = brushValue(axis, axisValue(p, axis.key));
    if (v === null || v < range[0] || v > range[1]) return false;
  }
  return true;
}

/** "lam:0.1:0.5,acc_final:0.9:1" → {lam: [0.1, 0.5], acc_final: [0.9, 1]}; malformed parts dropped. */
export function parseBrushes(text) {
  const out = {};
  for (const part of String(text || "").split(",")) {
    const [key, a, b] = part.split(":");
    const lo = Number(a);
    const hi = Number(b);
    if (!key || a === undefined || b === undefined || a === "" || b === "" || !Number.isFinite(lo) || !Number.isFinite(hi)) continue;
    out[key] = [Math.min(lo, hi), Math.max(lo, hi)];
  }
  return out;
}

/** The address form of `brushes` (parseBrushes' inverse); "" for none. */
export function formatBrushes(brushes) {
  return Object.entries(brushes || {})
    .filter(([, r]) => r)
    .map(([key, [lo, hi]]) => `${key}:${lo}:${hi}`)
    .join(",");
}

/** Brush step for a key press, as a share of the axis. */
export const KEY_STEP = 0.05;

/**
 * The brush (as axis fractions [lo, hi], or null) after a key press on a focused axis: with none,
 * any arrow starts one over the top quarter; ArrowUp/ArrowDown move it, Shift+ArrowUp/Shift+ArrowDown
 * move its lower edge (shrink/grow); Escape clears. Returns `undefined` for a key it ignores.
 */
export function keyBrush(range, key, shift) {
  if (key === "Escape") return null;
  if (key !== "ArrowUp" && key !== "ArrowDown") return undefined;
  if (!range) return [0.75, 1];
  let [lo, hi] = range;
  const dir = key === "ArrowUp" ? 1 : -1;
  if (shift) {
    lo = Math.min(hi - 0.02, Math.max(0, lo + dir * KEY_STEP));
    return [Math.max(0, lo), hi];
  }
  const span = hi - lo;
  lo = Math.min(1 - span, Math.max(0, lo + dir * KEY_STEP));
  return [lo, lo + span];
}

/** A value range on `axis` from fractions [lo, hi]. */
export function rangeFromFractions(axis, [lo, hi]) {
  return [fromFraction(axis, Math.max(0, lo)), fromFraction(axis, Math.min(1, hi))];
}

/** Fractions [lo, hi] of a value range on `axis`, clamped to [0, 1]. */
export function fractionsOfRange(axis, [lo, hi]) {
  const f = (v) => {
    if (axis.kind === "category") return axis.domain.length <= 1 ? 0.5 : v / (axis.domain.length - 1);
    if (axis.kind === "log" && v <= 0) return 0;
    return toFraction(axis, v);
  };
  return [Math.max(0, Math.min(1, f(lo))), Math.max(0, Math.min(1, f(hi)))];
}

function formatTick(axis, v) {
  if (axis.percent) return `${(v * 100).toFixed(1)} %`;
  return String(Number(Number(v).toPrecision(3)));
}

function describeBrush(axis, range) {
  if (!range) return "no brush";
  if (axis.kind === "category") {
    const names = axis.domain.filter((_, i) => i >= range[0] && i <= range[1]);
    return `brushed: ${names.join(", ") || "none"}`;
  }
  return `brushed ${formatTick(axis, range[0])} to ${formatTick(axis, range[1])}`;
}

const NULL_GAP = 16;

/** Layout: each axis's x and the y of a fraction. */
function layout(axes, { width, height }) {
  const margin = { top: 80, right: 56, bottom: 24 + NULL_GAP, left: 56 };
  const span = width - margin.left - margin.right;
  const xs = axes.map((_, i) => margin.left + (axes.length === 1 ? span / 2 : (span * i) / (axes.length - 1)));
  const y0 = height - margin.bottom;
  const y = (f) => y0 - f * (y0 - margin.top);
  return { margin, xs, y, y0, nullY: y0 + NULL_GAP };
}

/** One job's polyline across the axes (a missing value sits on the "n/a" line under its axis). */
function jobLine(p, axes, geo, active) {
  const style = METHOD_STYLE[p.method] || { color: "#7c3aed" };
  const pts = axes.map((axis, i) => {
    const f = toFraction(axis, axisValue(p, axis.key));
    return `${geo.xs[i].toFixed(1)},${(f === null ? geo.nullY : geo.y(f)).toFixed(1)}`;
  });
  return s(
    "polyline",
    {
      points: pts.join(" "),
      fill: "none",
      stroke: active ? style.color : "#cbd5e1",
      "stroke-width": active ? 1.6 : 1,
      opacity: active ? 0.8 : 0.6,
      "data-job-id": p.job_id,
      "data-active": String(active),
    },
    s("title", {}, `${methodLabel(p.method)} job ${p.job_id}`),
  );
}

function axisTicks(axis, x, geo) {
  const g = s("g", { "aria-hidden": "true" });
  const ticks =
    axis.kind === "category"
      ? axis.domain.map((name, i) => [toFraction(axis, name), name, i])
      : [0, 0.5, 1].map((f) => [f, formatTick(axis, fromFraction(axis, f))]);
  for (const [f, text] of ticks) {
    g.append(
      s("line", { x1: x - 4, x2: x, y1: geo.y(f), y2: geo.y(f), stroke: AXIS }),
      s("text", { x: x - 6, y: geo.y(f) + 4, "text-anchor": "end", "font-size": 10, fill: AXIS }, text),
    );
  }
  g.append(s("text", { x: x - 6, y: geo.nullY + 4, "text-anchor": "end", "font-size": 10, fill: AXIS }, "n/a"));
  return g;
}

/** SVG y → axis fraction, from a pointer event. */
function eventFraction(svg, ev, geo) {
  const ctm = svg.getScreenCTM();
  const y = ctm ? (ev.clientY - ctm.f) / ctm.d : ev.offsetY;
  return Math.max(0, Math.min(1, (geo.y0 - y) / (geo.y0 - geo.margin.top)));
}

/** The axis, its brush, and the mouse and keyboard handlers that change it. */
function axisGroup(axis, x, geo, { brush, onBrush, svg }) {
  const g = s("g", {
    class: "pc-axis",
    tabindex: 0,
    role: "group",
    "data-axis": axis.key,
    "data-brush": brush ? JSON.stringify(brush) : "",
    "aria-label": `${axis.label} axis, ${describeBrush(axis, brush)}. Up and down arrows move the brush, shift with arrows resizes it, Escape clears it; left and right arrows go to the next axis.`,
  });
  const hit = s("rect", {
    class: "pc-hit",
    x: x - 14,
    y: geo.margin.top - 4,
    width: 28,
    height: geo.y0 - geo.margin.top + 8,
    fill: "#ffffff",
    "fill-opacity": 0,
    cursor: "ns-resize",
  });
  const band = s("rect", {
    class: "pc-brush",
    x: x - 8,
    width: 16,
    fill: "#2563eb",
    "fill-opacity": 0.22,
    stroke: "#1d4ed8",
    visibility: "hidden",
  });
  const showBand = (fr) => {
    if (!fr) return band.setAttribute("visibility", "hidden");
    band.setAttribute("visibility", "visible");
    band.setAttribute("y", geo.y(fr[1]).toFixed(1));
    band.setAttribute("height", Math.max(2, geo.y(fr[0]) - geo.y(fr[1])).toFixed(1));
  };
  showBand(brush ? fractionsOfRange(axis, brush) : null);
  g.append(
    s("line", { x1: x, x2: x, y1: geo.margin.top, y2: geo.y0, stroke: AXIS, "stroke-width": 1.5 }),
    axisTicks(axis, x, geo),
    s("text", { x, y: geo.margin.top - 12, "text-anchor": "middle", fill: TEXT, "font-weight": 600 }, axis.label),
    hit,
    band,
  );
  if (!onBrush) return g;
  let start = null;
  let current = null;
  hit.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    start = eventFraction(svg, ev, geo);
    current = [start, start];
    hit.setPointerCapture?.(ev.pointerId);
    g.focus({ preventScroll: true });
  });
  hit.addEventListener("pointermove", (ev) => {
    if (start === null) return;
    const f = eventFraction(svg, ev, geo);
    current = [Math.min(start, f), Math.max(start, f)];
    showBand(current);
  });
  const finish = () => {
    if (start === null) return;
    const fr = current;
    start = null;
    // a click without a drag clears the brush
    onBrush(axis.key, fr[1] - fr[0] < 0.01 ? null : rangeFromFractions(axis, fr));
  };
  hit.addEventListener("pointerup", finish);
  hit.addEventListener("pointercancel", finish);
  g.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      const all = [...svg.querySelectorAll(".pc-axis")];
      const next = all[all.indexOf(g) + (ev.key === "ArrowRight" ? 1 : -1)];
      if (next) {
        ev.preventDefault();
        next.focus();
      }
      return;
    }
    const next = keyBrush(brush ? fractionsOfRange(axis, brush) : null, ev.key, ev.shiftKey);
    if (next === undefined) return;
    ev.preventDefault();
    onBrush(axis.key, next ? rangeFromFractions(axis, next) : null);
  });
  return g;
}

/**
 * The parallel-coordinates chart: points (API plot points), axes (buildAxes), brushes
 * ({key: [lo, hi]}), onBrush(key, range | null) after a drag, a click (clears) or a key press,
 * title (drawn in the chart). Jobs outside the brushes are drawn grey, under the others.
 */
export function parcoordsChart({ points, axes, brushes = {}, onBrush, title = "", width = 900, height = 360 }) {
  const svg = frame({ width, height, title: title || "Parallel coordinates of the experiment's jobs" });
  if (title) svg.append(s("text", { x: 16, y: 20, fill: TEXT, "font-size": 15, "font-weight": 600 }, title));
  const geo = layout(axes, { width, height });
  const lines = s("g", { class: "pc-lines", "pointer-events": "none" });
  const active = points.map((p) => inBrushes(p, brushes, axes));
  points.forEach((p, i) => {
    if (!active[i]) lines.append(jobLine(p, axes, geo, false));
  });
  points.forEach((p, i) => {
    if (active[i]) lines.append(jobLine(p, axes, geo, true));
  });
  svg.append(
    s("line", {
      x1: geo.margin.left - 20,
      x2: width - geo.margin.right + 20,
      y1: geo.nullY,
      y2: geo.nullY,
      stroke: GRID,
      "stroke-dasharray": "2 3",
    }),
    lines,
  );
  axes.forEach((axis, i) => {
    svg.append(axisGroup(axis, geo.xs[i], geo, { brush: brushes[axis.key] || null, onBrush, svg }));
  });
  const methods = [...new Set(points.map((p) => p.method))];
  const items = methods.map((m) => {
    const color = (METHOD_STYLE[m] || { color: "#7c3aed" }).color;
    return {
      name: methodLabel(m),
      swatch: (lx, ly) => s("line", { x1: lx - 2, x2: lx + 8, y1: ly + 4, y2: ly + 4, stroke: color, "stroke-width": 3 }),
    };
  });
  if (active.some((a) => !a)) {
    items.push({
      name: "outside brush",
      swatch: (lx, ly) => s("line", { x1: lx - 2, x2: lx + 8, y1: ly + 4, y2: ly + 4, stroke: "#cbd5e1", "stroke-width": 3 }),
    });
  }
  legend(svg, items, { x: 16, y: title ? 42 : 16 });
  return svg;
}

/** CSV rows: each job's id, method, axis values and whether it is inside the brushes. */
export function parcoordsRows(points, axes, brushes) {
  return points.map((p) => {
    const row = { job_id: p.job_id, method: p.method };
    for (const axis of axes) row[axis.key] = axisValue(p, axis.key);
    row.in_brush = inBrushes(p, brushes, axes);
    return row;
  });
}

// Inside training: the share of each BN layer's sparse vector (ξ for proxns) exactly zero, as a
// layer × epoch heatmap, and the |ξ| histograms the worker records per layer and epoch. Hand-written
// SVG like charts.js (presentation attributes, so exported files look like the page); pure helpers
// first, testable without a DOM.

import { AXIS, emptyNote, FONT, frame, niceTicks, scale, TEXT, yGridLines } from "./charts.js";
import { h, s } from "./dom.js";
import { num } from "./format.js";

/** Epoch rows that carry per-layer counts (training epochs; fine-tune rows have none), in epoch order. */
export function layerEpochs(metrics) {
  return (metrics || []).filter((m) => Array.isArray(m.layers) && m.layers.length).sort((a, b) => a.epoch - b.epoch);
}

/**
 * The heatmap's grid: `layers` (BN layer names in network order, as the worker lists them),
 * `epochs` (numbers), and `cells[row][col]` = {layer, epoch, zeros, total, share} or null where an
 * epoch did not record that layer.
 */
export function heatmapData(metrics) {
  const rows = layerEpochs(metrics);
  const layers = [];
  for (const m of rows) for (const l of m.layers) if (!layers.includes(l.name)) layers.push(l.name);
  const cells = layers.map((name) =>
    rows.map((m) => {
      const l = m.layers.find((x) => x.name === name);
      if (!l) return null;
      return { layer: name, epoch: m.epoch, zeros: l.zeros, total: l.total, share: l.total ? l.zeros / l.total : 0 };
    }),
  );
  return { layers, epochs: rows.map((m) => m.epoch), cells };
}

/** Sequential colour ramp, light (no zeros) to dark (all zero): a blue ramp, readable in grey too. */
export const HEAT_STOPS = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];

function hexRgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** The colour of a share 0..1 (clamped): linear between HEAT_STOPS. */
export function heatColor(share) {
  const v = Math.max(0, Math.min(1, Number.isFinite(share) ? share : 0));
  const pos = v * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(pos));
  const t = pos - i;
  const a = hexRgb(HEAT_STOPS[i]);
  const b = hexRgb(HEAT_STOPS[i + 1]);
  const mix = a.map((c, k) => Math.round(c + (b[k] - c) * t));
  return `#${mix.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

/** What a cell says, for its title, its aria text and the read-out line. */
export function cellText(cell) {
  if (!cell) return "not recorded";
  const share = cell.total ? `${((100 * cell.zeros) / cell.total).toFixed(1)} %` : "—";
  return `${cell.layer}, epoch ${cell.epoch}: ${cell.zeros} of ${cell.total} exactly zero (${share})`;
}

/** The heatmap's rows as CSV-ready objects: one per layer and epoch. */
export function heatmapRows(data) {
  return data.cells.flat().filter(Boolean);
}

const HEAT_MARGIN = { top: 34, right: 16, bottom: 74, left: 120 };

/** Cursor moves: arrows step, Home/End jump to the first/last epoch; null for other keys. */
export function moveCursor(cursor, key, rows, cols) {
  const { row, col } = cursor;
  const moves = {
    ArrowUp: [row - 1, col],
    ArrowDown: [row + 1, col],
    ArrowLeft: [row, col - 1],
    ArrowRight: [row, col + 1],
    Home: [row, 0],
    End: [row, cols - 1],
  };
  if (!moves[key]) return null;
  const [r, c] = moves[key];
  return { row: Math.max(0, Math.min(rows - 1, r)), col: Math.max(0, Math.min(cols - 1, c)) };
}

/** The colour legend: a bar of the ramp from 0 % to 100 %. */
function heatLegend(x, y, w) {
  const g = s("g", { class: "heat-legend", "aria-hidden": "true" });
  const steps = 20;
  for (let i = 0; i < steps; i += 1) {
    g.append(s("rect", { x: x + (i * w) / steps, y, width: w / steps + 0.5, height: 10, fill: heatColor((i + 0.5) / steps) }));
  }
  g.append(s("rect", { x, y, width: w, height: 10, fill: "none", stroke: AXIS, "stroke-width": 0.5 }));
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    g.append(s("text", { x: x + t * w, y: y + 22, "text-anchor": "middle", fill: AXIS, "font-size": 10 }, `${t * 100} %`));
  }
  g.append(s("text", { x: x - 6, y: y + 9, "text-anchor": "end", fill: TEXT, "font-size": 11 }, "ξ = 0:"));
  return g;
}

/** Row labels: every layer when rows are tall enough, else every k-th (1-based numbers in the title). */
function rowLabels(layers, { y0, cellH, left }) {
  const step = cellH >= 11 ? 1 : Math.ceil(11 / cellH);
  return layers.flatMap((name, r) =>
    r % step === 0
      ? [
          s(
            "text",
            { x: left - 6, y: y0 + r * cellH + cellH / 2 + 4, "text-anchor": "end", fill: AXIS, "font-size": Math.min(11, cellH) },
            name.length > 18 ? `…${name.slice(-17)}` : name,
          ),
        ]
      : [],
  );
}

/**
 * Layer × epoch heatmap of the share of the sparse vector exactly zero. Hover shows a cell's title;
 * the chart is one tab stop: arrow keys (Home/End) move a cursor cell, whose value `onCursor` and the
 * returned `readout` (an aria-live line) announce. Returns {figure, svg} (svg for export).
 */
export function heatmap({ data, width = 900, cursor = null, onCursor, id = "heatmap" }) {
  const rows = data.layers.length;
  const cols = data.epochs.length;
  const margin = HEAT_MARGIN;
  const cellH = rows ? Math.max(4, Math.min(28, 360 / rows)) : 18;
  const height = margin.top + margin.bottom + Math.max(1, rows) * cellH;
  const svg = frame({ width, height, title: "Share of ξ exactly zero per BN layer and epoch" });
  svg.setAttribute("id", `${id}-svg`);
  const readout = h("p", { class: "heat-readout", id: `${id}-readout`, "aria-live": "polite" });
  if (!rows || !cols) {
    emptyNote(svg, width, height, "No per-layer counts recorded");
    return { figure: h("div", {}, svg), svg, readout };
  }
  const plotW = width - margin.left - margin.right;
  const cellW = plotW / cols;
  const y0 = margin.top;
  const cellsG = s("g", { class: "heat-cells" });
  data.cells.forEach((row, r) => {
    row.forEach((cell, c) => {
      if (!cell) return;
      cellsG.append(
        s(
          "rect",
          {
            x: (margin.left + c * cellW).toFixed(2),
            y: (y0 + r * cellH).toFixed(2),
            width: (cellW + 0.3).toFixed(2),
            height: (cellH + 0.3).toFixed(2),
            fill: heatColor(cell.share),
            "data-row": r,
            "data-col": c,
            "data-share": cell.share.toFixed(4),
          },
          s("title", {}, cellText(cell)),
        ),
      );
    });
  });
  svg.append(cellsG, s("g", { "aria-hidden": "true" }, rowLabels(data.layers, { y0, cellH, left: margin.left })));
  // epoch ticks under the columns, at the centre of their column
  const ticks = niceTicks(data.epochs[0], data.epochs[cols - 1], Math.min(8, cols)).filter((t) => data.epochs.includes(t));
  const bottom = y0 + rows * cellH;
  const axis = s("g", { "aria-hidden": "true" });
  for (const t of ticks) {
    const cx = margin.left + (data.epochs.indexOf(t) + 0.5) * cellW;
    axis.append(
      s("line", { x1: cx, x2: cx, y1: bottom, y2: bottom + 4, stroke: AXIS }),
      s("text", { x: cx, y: bottom + 16, "text-anchor": "middle", fill: AXIS }, String(t)),
    );
  }
  axis.append(
    s("text", { x: margin.left + plotW / 2, y: bottom + 32, "text-anchor": "middle", fill: TEXT }, "epoch"),
    s("text", { x: 8, y: 16, fill: TEXT }, "BN layer (network order)"),
  );
  svg.append(axis, heatLegend(margin.left + 40, height - 26, Math.min(260, plotW - 60)));
  const box = s("rect", { class: "heat-cursor", fill: "none", stroke: "#f59e0b", "stroke-width": 2.5, visibility: "hidden" });
  svg.append(box);
  let cur = cursor && cursor.row < rows && cursor.col < cols ? cursor : null;
  const show = (announce) => {
    if (!cur) return;
    box.setAttribute("x", (margin.left + cur.col * cellW).toFixed(2));
    box.setAttribute("y", (y0 + cur.row * cellH).toFixed(2));
    box.setAttribute("width", cellW.toFixed(2));
    box.setAttribute("height", cellH.toFixed(2));
    box.setAttribute("visibility", "visible");
    const text = cellText(data.cells[cur.row][cur.col]);
    svg.dataset.cursor = `${cur.row},${cur.col}`;
    if (announce) readout.textContent = text;
    onCursor?.(cur);
  };
  svg.setAttribute("tabindex", "0");
  svg.setAttribute("role", "application");
  svg.setAttribute("aria-roledescription", "heatmap");
  svg.setAttribute(
    "aria-label",
    `Share of ξ exactly zero: ${rows} BN layers by ${cols} epochs. Arrow keys move between cells, Home and End jump to the first and last epoch.`,
  );
  svg.setAttribute("aria-describedby", readout.id);
  svg.addEventListener("focus", () => {
    if (!cur) cur = { row: 0, col: cols - 1 };
    show(true);
  });
  svg.addEventListener("keydown", (ev) => {
    const next = moveCursor(cur || { row: 0, col: cols - 1 }, ev.key, rows, cols);
    if (!next) return;
    ev.preventDefault();
    cur = next;
    show(true);
  });
  svg.addEventListener("mouseover", (ev) => {
    const t = ev.target;
    if (t?.dataset?.row === undefined) return;
    cur = { row: Number(t.dataset.row), col: Number(t.dataset.col) };
    show(true);
  });
  if (cur) show(false);
  return { figure: h("div", { class: "chart-scroll" }, svg), svg, readout };
}

/**
 * The histogram's bins for XI_HIST_EDGES `edges` (e₀ < e₁ < …), as the worker counts them
 * (proxns_core/sparsity.py layer_sparsity): bin 0 exact zeros, bin 1 (0, e₀), bin k + 1
 * [e_{k−1}, e_k), the last [e_last, ∞) — edges.length + 2 bins, each {lo, hi, label}.
 */
export function histogramBins(edges) {
  const e = edges || [];
  const bins = [{ lo: 0, hi: 0, label: "0 (exactly)" }];
  if (!e.length) return bins;
  bins.push({ lo: 0, hi: e[0], label: `(0, ${num(e[0], 3)})` });
  for (let k = 1; k < e.length; k += 1) bins.push({ lo: e[k - 1], hi: e[k], label: `[${num(e[k - 1], 3)}, ${num(e[k], 3)})` });
  bins.push({ lo: e[e.length - 1], hi: Number.POSITIVE_INFINITY, label: `≥ ${num(e[e.length - 1], 3)}` });
  return bins;
}

/** Counts per bin of one epoch row: one layer's `hist`, or (layer null) all layers' summed. */
export function histogramCounts(row, layer = null) {
  const layers = (row?.layers || []).filter((l) => Array.isArray(l.hist) && (layer === null || l.name === layer));
  if (!layers.length) return [];
  const n = Math.max(...layers.map((l) => l.hist.length));
  const out = new Array(n).fill(0);
  for (const l of layers) {
    l.hist.forEach((c, i) => {
      out[i] += c;
    });
  }
  return out;
}

/** Whether any epoch recorded a histogram. */
export function hasHistograms(metrics) {
  return layerEpochs(metrics).some((m) => m.layers.some((l) => Array.isArray(l.hist) && l.hist.length));
}

/** Exponent label of an edge that is a whole power of ten ("1e-6"), else "" (half-decades unlabelled). */
function decadeLabel(v) {
  const p = Math.log10(v);
  if (Math.abs(p - Math.round(p)) > 1e-9) return "";
  const k = Math.round(p);
  return k === 0 ? "1" : k === 1 ? "10" : `1e${k}`;
}

/**
 * Bar chart of |ξ| counts per bin (`bins` from histogramBins, `counts` from histogramCounts). Each
 * bar is focusable with its range and count as its label. `title` names the epoch and layer.
 */
export function histogramChart({ bins, counts, title, width = 640, height = 280, what = "|ξ|" }) {
  const svg = frame({ width, height, title });
  const margin = { top: 30, right: 16, bottom: 58, left: 58 };
  const total = counts.reduce((a, b) => a + b, 0);
  if (!counts.length || !total) return emptyNote(svg, width, height, "No histogram recorded for this epoch");
  const yTicks = niceTicks(0, Math.max(...counts), 5);
  const y = scale(0, yTicks[yTicks.length - 1], height - margin.bottom, margin.top);
  svg.append(s("g", { "aria-hidden": "true" }, yGridLines(yTicks, y, { margin, width }, String)));
  const band = (width - margin.left - margin.right) / counts.length;
  const bw = Math.max(1, band * 0.8);
  const bars = s("g", { class: "hist-bars" });
  counts.forEach((c, i) => {
    const bin = bins[i] || { label: `bin ${i}` };
    const x = margin.left + i * band + (band - bw) / 2;
    const share = `${((100 * c) / total).toFixed(1)} %`;
    const label = `${what} ${bin.label}: ${c} of ${total} (${share})`;
    bars.append(
      s(
        "rect",
        {
          x: x.toFixed(1),
          y: y(c).toFixed(1),
          width: bw.toFixed(1),
          height: Math.max(0, y(0) - y(c)).toFixed(1),
          fill: i === 0 ? "#1b9e77" : "#1b6ec2",
          tabindex: 0,
          "data-bin": i,
          "data-count": c,
          "aria-label": label,
        },
        s("title", {}, label),
      ),
    );
  });
  svg.append(bars);
  const axis = s("g", { "aria-hidden": "true" });
  const base = height - margin.bottom;
  axis.append(s("line", { x1: margin.left, x2: width - margin.right, y1: base, y2: base, stroke: AXIS }));
  bins.slice(0, counts.length).forEach((bin, i) => {
    const cx = margin.left + (i + 0.5) * band;
    let text = "";
    if (i === 0) text = "0";
    else if (i === 1) text = `<${decadeLabel(bin.hi) || num(bin.hi, 2)}`;
    else if (i === bins.length - 1) text = `≥${decadeLabel(bin.lo) || num(bin.lo, 2)}`;
    else if (i > 1) text = decadeLabel(bin.lo);
    if (!text) return;
    axis.append(
      s(
        "text",
        { x: cx, y: base + 12, "text-anchor": "end", fill: AXIS, "font-size": 10, transform: `rotate(-40 ${cx} ${base + 12})` },
        text,
      ),
    );
  });
  axis.append(
    s(
      "text",
      { x: (margin.left + width - margin.right) / 2, y: height - 6, "text-anchor": "middle", fill: TEXT },
      `${what} (log bins; first bar: exactly 0)`,
    ),
    s("text", { x: -(margin.top + base) / 2, y: 14, transform: "rotate(-90)", "text-anchor": "middle", fill: TEXT }, "channels"),
  );
  svg.append(axis);
  svg.setAttribute("font-family", FONT);
  return svg;
}

// Compare page: two or more jobs side by side. The config fields that differ (or all of them), the
// results with their difference to a reference job, the training curves overlaid, the kept channels
// per layer of every network in one chart, and the frontier of the compared jobs. The job ids live
// in the address (#/compare?jobs=1,2,3[&all=1][&ref=2]) so a comparison can be shared; opening one
// makes its jobs the tab's selection. The pure helpers at the top touch no DOM (unit-tested in node).

import { api, loadMeta } from "../api.js";
import { AXIS, axes, emptyNote, fitWidth, frame, lineChart, niceTicks, TEXT } from "../charts.js";
import { h, keepFocus, mount, routeGuard, s } from "../dom.js";
import { csvColumns, saveCsv, savePng, saveSvg } from "../export.js";
import { DASH, methodLabel, modelLabel, ms, num, pct, pctFmt, pctTick, si, statusBadge } from "../format.js";
import { finite, frontierPlot, pointFromJob, removedShare, X_AXES, xAxisOrDefault } from "../frontier.js";
import { liveOrPoll } from "../live.js";
import { isFinished } from "../rules.js";
import { compareHash, parseIds, replace as selectOnly } from "../selection.js";

/** One colour per compared job (colour-blind-safe Dark2 + Tableau), repeated with a dash past ten. */
export const PALETTE = ["#1b6ec2", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#b8860b", "#4b5563", "#17becf"];

export function jobStyle(index) {
  return { color: PALETTE[index % PALETTE.length], dash: index >= PALETTE.length ? "6 3" : null };
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

/**
 * The page's state in its address: {ids, all, ref, x} (ref: the reference job's id, or null = the
 * first; x: the frontier's x axis, a key of frontier.js's X_AXES).
 */
export function compareState(params) {
  const ids = parseIds(params.get("jobs"));
  const ref = Number(params.get("ref"));
  return { ids, all: params.get("all") === "1", ref: ids.includes(ref) ? ref : null, x: xAxisOrDefault(params.get("x")) };
}

/** The address of a comparison; `ref` is written only when it is not the first job, `x` when not "pruned". */
export function compareAddress({ ids, all = false, ref = null, x = "pruned" }) {
  let address = compareHash(ids, { all });
  if (ref !== null && ref !== ids[0] && ids.includes(ref)) address += `&ref=${ref}`;
  if (x !== "pruned" && Object.hasOwn(X_AXES, x)) address += `&x=${x}`;
  return address;
}

/** Two config values are the same when they serialise alike: lists by content, a missing key as null. */
function sameValue(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Every key of `configs`, in the spec's order (the first config's key order, then any new ones). */
export function configKeys(configs) {
  const keys = [];
  const seen = new Set();
  for (const c of configs) {
    for (const k of Object.keys(c || {})) {
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
    }
  }
  return keys;
}

/** The keys whose values are not the same in every config (lists compared by content, null ≠ a value). */
export function differingFields(configs) {
  const list = configs.map((c) => c || {});
  if (list.length < 2) return [];
  return configKeys(list).filter((k) => list.some((c) => !sameValue(c[k], list[0][k])));
}

/** A config value as the table shows it. */
export function configText(value) {
  if (value === null || value === undefined) return DASH;
  if (Array.isArray(value)) return `[${value.join(", ")}]`;
  if (typeof value === "number") return num(value, 6);
  return String(value);
}

/**
 * The result rows, in the order the table shows them. `kind` says how values and differences read:
 * share (a fraction shown in %, differences in points), count (SI), ms. `better`: +1 higher is
 * better, -1 lower is better.
 */
export const RESULT_FIELDS = [
  { key: "acc_full", label: "Accuracy, full network", kind: "share", better: 1 },
  { key: "acc_slim", label: "Accuracy, slim network", kind: "share", better: 1 },
  { key: "acc_finetuned", label: "Accuracy after fine-tuning", kind: "share", better: 1 },
  { key: "pruned_fraction", label: "Channels pruned", kind: "share", better: 1 },
  { key: "params_slim", label: "Parameters, slim", kind: "count", better: -1 },
  { key: "flops_slim", label: "FLOPs, slim", kind: "count", better: -1 },
  { key: "latency_slim_ms", label: "Latency, slim", kind: "ms", better: -1 },
  { key: "flops_removed", label: "FLOPs removed", kind: "share", better: 1 },
  { key: "params_removed", label: "Parameters removed", kind: "share", better: 1 },
];

/** A result field's value, derived ones (flops_removed, params_removed) included; null when unknown. */
export function resultValue(result, key) {
  if (!result) return null;
  if (key === "flops_removed") return removedShare(result.flops_slim, result.flops_full);
  if (key === "params_removed") return removedShare(result.params_slim, result.params_full);
  return finite(result[key]);
}

/** value − ref: in percentage points for shares, in the value's unit otherwise; null when either is unknown. */
export function difference(value, ref, kind) {
  if (value === null || ref === null || value === undefined || ref === undefined) return null;
  return kind === "share" ? (value - ref) * 100 : value - ref;
}

/** Per result field: every job's value and its difference to the job at `refIndex` (null for itself). */
export function resultRows(results, refIndex = 0) {
  return RESULT_FIELDS.map((field) => {
    const values = results.map((r) => resultValue(r, field.key));
    const ref = values[refIndex] ?? null;
    const diffs = values.map((v, i) => (i === refIndex ? null : difference(v, ref, field.kind)));
    return { ...field, values, ref, diffs };
  });
}

/** A value as the results table shows it. */
export function valueText(value, kind) {
  if (value === null || value === undefined) return DASH;
  if (kind === "share") return pct(value, 2);
  if (kind === "ms") return ms(value);
  return si(value);
}

/** A difference as text: "+1.20 pts", "−35.2 k (−35.2 %)", "±0 ms"; `ref` gives the relative change. */
export function diffText(diff, kind, ref) {
  if (diff === null || diff === undefined) return DASH;
  const sign = diff > 0 ? "+" : diff < 0 ? "−" : "±";
  const abs = Math.abs(diff);
  if (kind === "share") return `${sign}${abs.toFixed(2)} pts`;
  const amount = kind === "ms" ? ms(abs) : si(Math.round(abs));
  const rel = ref ? ` (${sign}${((abs / Math.abs(ref)) * 100).toFixed(1)} %)` : "";
  return `${sign}${amount}${rel}`;
}

/** "better", "worse" or "same" for a difference of a field with direction `better`. */
export function diffTone(diff, better) {
  if (diff === null || diff === undefined || Math.abs(diff) < 1e-12) return "same";
  return diff * better > 0 ? "better" : "worse";
}

/** How a job is named in headers, legends and tooltips: "#12 ProxNS λ 0.5". */
export function jobLabel(job) {
  const cfg = job?.config || {};
  const lam = cfg.lam === null || cfg.lam === undefined ? "" : ` λ ${num(cfg.lam)}`;
  return `#${job.id} ${methodLabel(cfg.method)}${lam}`;
}

/** One series per job of metric `key` over the epoch (fine-tune epochs already continue the numbering). */
export function curveSeries(entries, key) {
  return entries.map((e) => ({
    name: e.label,
    job_id: e.job.id,
    color: e.style.color,
    dash: e.style.dash,
    points: (e.metrics || [])
      .filter((m) => finite(m[key]) !== null)
      .map((m) => ({ x: m.epoch, y: m[key], phase: m.phase }))
      .sort((a, b) => a.x - b.x),
  }));
}

/** Each job's kept channels per BN layer, in network order (an unfinished job has none yet). */
export function layerSeries(entries) {
  return entries.map((e) => ({
    name: e.label,
    job_id: e.job.id,
    color: e.style.color,
    dash: e.style.dash,
    layers: (e.job.result?.layers || []).map((l, i) => ({ index: i + 1, name: l.name, kept: l.kept, total: l.total })),
  }));
}

/**
 * The compared jobs as the API's plot points (frontier.js's pointFromJob: the fields of GET
 * /api/experiments/{id}'s `points`), so the frontier of a selection is drawn, and its tooltip reads,
 * exactly as an experiment's. Jobs not found or with no result yet are left out.
 */
export function comparePlotPoints(entries) {
  return entries
    .filter((e) => !e.missing && e.job?.result)
    .map((e) => pointFromJob(e.job))
    .filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// Charts

const CURVES = [
  {
    id: "chart-cmp-accuracy",
    key: "test_acc",
    caption: "Test accuracy",
    title: "Test accuracy per epoch",
    yLabel: "test accuracy (%)",
    share: true,
    yMinSpan: 0.05,
  },
  {
    id: "chart-cmp-loss",
    key: "train_loss",
    caption: "Train loss",
    title: "Train loss per epoch",
    yLabel: "train loss",
    share: false,
    yMinSpan: 0.1,
  },
  {
    id: "chart-cmp-zero",
    key: "zero_fraction",
    caption: "Share of ξ exactly zero (ProxNS jobs)",
    title: "Share of ξ exactly zero per epoch",
    yLabel: "ξ = 0 (%)",
    share: true,
    yMin: 0,
    yMinSpan: 0.1,
    only: (e) => e.job.config?.method === "proxns",
  },
];

/** Room a legend entry takes (the same estimate charts.js's legend uses). */
function legendEntryWidth(name) {
  return 24 + name.length * 7;
}

/**
 * Put a legend naming every series under the plot, wrapping into rows, and grow the SVG to hold
 * it: a compare chart has one entry per job, more than a row above the plot holds.
 */
function legendBelow(svg, items) {
  svg.querySelector("g.legend")?.remove();
  const [, , width, height] = svg.getAttribute("viewBox").split(/\s+/).map(Number);
  const rows = [[]];
  let x = 62;
  for (const item of items) {
    const w = legendEntryWidth(item.name);
    if (x + w > width - 8 && rows.at(-1).length) {
      rows.push([]);
      x = 62;
    }
    rows.at(-1).push({ ...item, x });
    x += w;
  }
  const rowHeight = 18;
  const total = height + rows.length * rowHeight + 6;
  const g = s("g", { class: "legend" });
  rows.forEach((row, r) => {
    const y = height + 8 + r * rowHeight;
    for (const item of row) {
      g.append(
        s(
          "g",
          { transform: `translate(${item.x},${y})` },
          item.swatch(0, -4),
          s("text", { x: 14, y: 0, fill: TEXT, "dominant-baseline": "middle" }, item.name),
        ),
      );
    }
  });
  svg.setAttribute("viewBox", `0 0 ${width} ${total}`);
  svg.setAttribute("height", total);
  svg.querySelector(":scope > rect")?.setAttribute("height", total);
  svg.append(g);
  return svg;
}

function lineSwatch(color, dash) {
  return (lx, ly) =>
    s("line", { x1: lx - 2, x2: lx + 10, y1: ly + 4, y2: ly + 4, stroke: color, "stroke-width": 3, "stroke-dasharray": dash || null });
}

/**
 * Keyboard and hover access to a chart's series: each `g[data-series]` is one Tab stop; arrows
 * (Home/End) step through its points, a ring marks the point and `readout` reads its title aloud.
 */
function stepThrough(svg, readout, describe, idPrefix) {
  const ring = s("circle", { r: 6, fill: "none", stroke: "#f59e0b", "stroke-width": 2.5, visibility: "hidden", "pointer-events": "none" });
  const show = (circle) => {
    ring.setAttribute("cx", circle.getAttribute("cx"));
    ring.setAttribute("cy", circle.getAttribute("cy"));
    ring.setAttribute("visibility", "visible");
    readout.textContent = circle.querySelector("title")?.textContent || "";
  };
  for (const [n, g] of [...svg.querySelectorAll("g[data-series]")].entries()) {
    const circles = [...g.querySelectorAll("circle")];
    if (!circles.length) continue;
    let at = circles.length - 1;
    g.id = `${idPrefix}-series-${n + 1}`; // keeps focus on it across a redraw (dom.js keepFocus)
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "group");
    g.setAttribute("class", "series");
    g.setAttribute("aria-label", `${describe(g, circles)}; arrow keys step through the points`);
    g.addEventListener("focus", () => show(circles[at]));
    g.addEventListener("blur", () => ring.setAttribute("visibility", "hidden"));
    g.addEventListener("keydown", (ev) => {
      const step = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[ev.key];
      if (step === undefined && ev.key !== "Home" && ev.key !== "End") return;
      ev.preventDefault();
      if (ev.key === "Home") at = 0;
      else if (ev.key === "End") at = circles.length - 1;
      else at = Math.max(0, Math.min(circles.length - 1, at + step));
      show(circles[at]);
    });
    circles.forEach((c, i) => {
      c.addEventListener("mouseenter", () => {
        at = i;
        show(c);
      });
    });
  }
  svg.append(ring);
  return svg;
}

/** A figure with its caption, PNG/SVG/CSV buttons, the chart and a line reading out the focused point. */
function chartFigure({ id, caption, svg, rows, columns, fileBase, note, scroll = false }) {
  const readout = h("p", { class: "chart-readout muted small", "aria-live": "polite", id: `${id}-readout` });
  const button = (kind, label, action) =>
    h("button", { type: "button", class: "export-button", id: `${id}-${kind}`, onclick: action }, label);
  const current = () => document.querySelector(`#${id} svg.chart`);
  return h(
    "figure",
    { class: "chart-card compare-chart", id, dataset: { rows: JSON.stringify(rows) } },
    h(
      "div",
      { class: "chart-head" },
      h("figcaption", {}, caption),
      h(
        "div",
        { class: "actions chart-exports", role: "group", "aria-label": `Export ${caption}` },
        button("png", "PNG", () => savePng(current(), `${fileBase}.png`)),
        button("svg", "SVG", () => saveSvg(current(), `${fileBase}.svg`)),
        button("csv", "CSV", () => saveCsv(rows, csvColumns(rows, columns), `${fileBase}.csv`)),
      ),
    ),
    scroll ? h("div", { class: "chart-scroll" }, svg) : svg,
    readout,
    note ? h("p", { class: "muted small" }, note) : null,
  );
}

/** The figure's readout paragraph, for stepThrough (the figure is built around the svg afterwards). */
function withReadout(figure, describe) {
  const svg = figure.querySelector("svg.chart");
  const readout = figure.querySelector(".chart-readout");
  stepThrough(svg, readout, describe, figure.id);
  return figure;
}

function curveFigure(spec, entries, width, fileTag) {
  const shown = spec.only ? entries.filter(spec.only) : entries;
  const series = curveSeries(shown, spec.key);
  const yFormat = spec.share ? pctFmt : (v) => num(v, 3);
  const svg = lineChart({
    title: spec.title,
    xLabel: "epoch",
    yLabel: spec.yLabel,
    series,
    yFormat,
    yTickFormat: spec.share ? pctTick : undefined,
    yMin: spec.yMin,
    yMinSpan: spec.yMinSpan,
    xMin: 1,
    emptyText: shown.length ? "No epoch finished yet" : "None of these jobs is a ProxNS job: only ProxNS has ξ",
    width,
  });
  legendBelow(
    svg,
    series.map((sr) => ({ name: sr.name, swatch: lineSwatch(sr.color, sr.dash) })),
  );
  const rows = series.flatMap((sr) =>
    sr.points.map((p) => ({ job_id: sr.job_id, job: sr.name, epoch: p.x, phase: p.phase, [spec.key]: p.y })),
  );
  const left = entries.length - shown.length;
  const figure = chartFigure({
    id: spec.id,
    caption: spec.caption,
    svg,
    rows,
    columns: ["job_id", "job", "epoch", "phase", spec.key],
    fileBase: `compare-${fileTag}-${spec.key}`,
    note: spec.only && left ? `${left} job(s) left out: NS and baseline have no ξ.` : null,
  });
  figure.dataset.series = JSON.stringify(series.map((sr) => ({ job_id: sr.job_id, name: sr.name, epochs: sr.points.map((p) => p.x) })));
  return withReadout(figure, (g, circles) => `${g.dataset.series}: ${circles.length} epochs`);
}

/**
 * Kept channels per BN layer, one line per job over the layer's index in its network (so networks
 * of different depth end where they end), each job's total channels dotted behind it.
 */
export function layerChart({ series, width = 900, height = 320 }) {
  const svg = frame({ width, height, title: "Kept channels per BN layer, one line per job", desc: `${series.length} jobs` });
  const margin = { top: 20, right: 16, bottom: 42, left: 58 };
  const withLayers = series.filter((sr) => sr.layers.length);
  if (!withLayers.length) return emptyNote(svg, width, height, "No finished job: channels are known once a job is slimmed");
  const maxLayers = Math.max(...withLayers.map((sr) => sr.layers.length));
  const xTicks = niceTicks(1, Math.max(2, maxLayers), 8).filter((t) => Number.isInteger(t) && t >= 1);
  if (xTicks[0] !== 1) xTicks.unshift(1);
  const yTicks = niceTicks(0, Math.max(1, ...withLayers.flatMap((sr) => sr.layers.map((l) => l.total))), 5);
  const { x, y } = axes(svg, {
    width,
    height,
    margin,
    xTicks,
    yTicks,
    xFormat: String,
    yFormat: String,
    xLabel: "BN layer (in network order)",
    yLabel: "channels",
  });
  const r = maxLayers > 60 ? 1.8 : 3;
  for (const sr of withLayers) {
    const path = (key) => sr.layers.map((l) => `${x(l.index).toFixed(1)},${y(l[key]).toFixed(1)}`).join(" ");
    const g = s("g", { "data-series": sr.name, "data-job-id": sr.job_id, "data-layers": sr.layers.length });
    g.append(
      s("polyline", { points: path("total"), fill: "none", stroke: sr.color, "stroke-width": 1, "stroke-dasharray": "2 3", opacity: 0.6 }),
      s("polyline", {
        points: path("kept"),
        fill: "none",
        stroke: sr.color,
        "stroke-width": 2,
        "stroke-dasharray": sr.dash || null,
        "stroke-linejoin": "round",
      }),
    );
    for (const l of sr.layers) {
      const share = l.total ? Math.round((100 * l.kept) / l.total) : 0;
      g.append(
        s(
          "circle",
          { cx: x(l.index).toFixed(1), cy: y(l.kept).toFixed(1), r, fill: sr.color },
          s("title", {}, `${sr.name} · layer ${l.index} ${l.name}: kept ${l.kept} of ${l.total} (${share} %)`),
        ),
      );
    }
    svg.append(g);
  }
  legendBelow(svg, [
    ...withLayers.map((sr) => ({ name: sr.name, swatch: lineSwatch(sr.color, sr.dash) })),
    { name: "total channels (dotted)", swatch: lineSwatch(AXIS, "2 3") },
  ]);
  return svg;
}

function layerFigure(entries, width, fileTag) {
  const series = layerSeries(entries);
  const svg = layerChart({ series, width });
  const rows = series.flatMap((sr) =>
    sr.layers.map((l) => ({ job_id: sr.job_id, job: sr.name, layer_index: l.index, layer: l.name, kept: l.kept, total: l.total })),
  );
  const missing = series.filter((sr) => !sr.layers.length).map((sr) => sr.name);
  const figure = chartFigure({
    id: "chart-cmp-layers",
    caption: "Kept channels per BN layer",
    svg,
    rows,
    columns: ["job_id", "job", "layer_index", "layer", "kept", "total"],
    fileBase: `compare-${fileTag}-layers`,
    note: missing.length ? `Not slimmed yet: ${missing.join(", ")}.` : null,
  });
  return withReadout(figure, (g, circles) => `${g.dataset.series}: ${circles.length} BN layers`);
}

function xAxisSelect(view, onX) {
  return h(
    "div",
    { class: "filter" },
    h("label", { for: "compare-x-axis" }, "x axis"),
    h(
      "select",
      { id: "compare-x-axis", onchange: (ev) => onX(ev.target.value) },
      Object.entries(X_AXES).map(([k, v]) => h("option", { value: k, selected: k === view.x }, v.short)),
    ),
  );
}

/** The selection's frontier, drawn by frontier.js as on an experiment's page, with an x-axis switch. */
function frontierFigure(entries, view, width, fileTag) {
  const points = comparePlotPoints(entries);
  const readout = h("span");
  const onPoint = (kind, p, el) => {
    if (kind === "open") location.hash = `#/jobs/${p.job_id}`;
    else if (kind === "enter") readout.textContent = el.getAttribute("aria-label") || "";
  };
  const svg = frontierPlot({
    points,
    xAxis: view.x,
    title: `Frontier of jobs ${entries.map((e) => `#${e.job.id}`).join(", ")}`,
    onPoint,
    selectable: false, // the jobs compared are the address's: no selecting from here
    width,
    height: Math.round(Math.max(300, Math.min(420, width * 0.55))),
  });
  const rows = JSON.parse(svg.getAttribute("data-points") || "[]");
  const figure = chartFigure({
    id: "chart-cmp-frontier",
    caption: `Accuracy against ${X_AXES[view.x].short}: each method's frontier`,
    svg,
    rows,
    columns: ["job_id", "method", "x", "y", "frontier"],
    fileBase: `compare-${fileTag}-frontier-${view.x}`,
    note: "A faded marker is dominated: another job of its method removes at least as much with at least its accuracy (fine-tuned where run, else slim). Enter opens a job.",
  });
  figure.querySelector(".chart-readout").append(readout);
  figure.querySelector(".chart-head").after(h("div", { class: "compare-toolbar" }, xAxisSelect(view, view.handlers.onX)));
  return figure;
}

// ---------------------------------------------------------------------------------------------
// The page

function swatch(style) {
  return h("span", {
    class: "swatch",
    "aria-hidden": "true",
    style: `background: ${style.color}${style.dash ? "; background-image: repeating-linear-gradient(90deg, transparent 0 3px, #fff 3px 5px)" : ""}`,
  });
}

/** A job's column head: colour, link to its page, method, λ, status, and a button that drops it. */
function jobHead(e, view, isRef, removable) {
  const cfg = e.job.config || {};
  const others = view.ids.filter((id) => id !== e.job.id);
  return h(
    "th",
    { scope: "col", class: "job-col keep-case", dataset: { jobId: String(e.job.id) } },
    h(
      "div",
      { class: "job-col-name" },
      swatch(e.style),
      h("a", { href: `#/jobs/${e.job.id}` }, `#${e.job.id}`),
      isRef ? h("span", { class: "ref-tag" }, "reference") : null,
    ),
    h("div", { class: "job-col-sub" }, `${methodLabel(cfg.method)} · λ ${cfg.lam === null || cfg.lam === undefined ? DASH : num(cfg.lam)}`),
    h("div", { class: "job-col-sub" }, modelLabel(cfg), " ", statusBadge(e.job.status)),
    removable
      ? h(
          "a",
          {
            class: "drop-job small",
            href: compareAddress({ ...view, ids: others, ref: view.ref === e.job.id ? null : view.ref }),
            "aria-label": `Remove job ${e.job.id} from the comparison`,
          },
          "Remove",
        )
      : null,
  );
}

function headRow(entries, view, refIndex, first, removable = false) {
  return h(
    "thead",
    {},
    h(
      "tr",
      {},
      h("th", { scope: "col" }, first),
      entries.map((e, i) => jobHead(e, view, i === refIndex, removable)),
    ),
  );
}

function configTable(entries, view, refIndex) {
  const configs = entries.map((e) => e.job.config || {});
  const differ = differingFields(configs);
  const keys = view.all ? configKeys(configs) : differ;
  const differs = new Set(differ);
  const rows = keys.map((k) =>
    h(
      "tr",
      { dataset: { field: k, differs: String(differs.has(k)) }, class: differs.has(k) ? "differs" : null },
      h(
        "th",
        { scope: "row", class: "mono" },
        k,
        differs.has(k) && view.all ? h("span", { class: "differs-mark", title: "differs" }, " ≠") : null,
      ),
      configs.map((c, i) => h("td", { class: "mono", dataset: { jobId: String(entries[i].job.id) } }, configText(c[k]))),
    ),
  );
  const summary = differ.length
    ? `${differ.length} of ${configKeys(configs).length} config fields differ${view.all ? "; all fields shown, the differing ones marked ≠" : ""}.`
    : `The ${entries.length} configs are identical in all ${configKeys(configs).length} fields.`;
  return [
    h("p", { class: "muted", id: "compare-config-summary" }, summary),
    keys.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "data-table compare-grid", id: "compare-config" },
            headRow(entries, view, refIndex, "Field", true),
            h("tbody", {}, rows),
          ),
        )
      : null,
  ];
}

function resultCell(row, i, refIndex, job) {
  const value = row.values[i];
  const diff = row.diffs[i];
  const tone = diffTone(diff, row.better);
  return h(
    "td",
    { dataset: { jobId: String(job.id), value: value === null ? "" : String(value), diff: diff === null ? "" : String(diff) } },
    h("span", { class: "value" }, valueText(value, row.kind)),
    i !== refIndex && value !== null ? h("span", { class: `diff diff-${tone}` }, diffText(diff, row.kind, row.ref)) : null,
  );
}

function resultTable(entries, view, refIndex) {
  const rows = resultRows(
    entries.map((e) => e.job.result),
    refIndex,
  );
  const unfinished = entries.filter((e) => !e.job.result).map((e) => `#${e.job.id}`);
  return [
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data-table compare-grid", id: "compare-results" },
        headRow(entries, view, refIndex, "Result"),
        h(
          "tbody",
          {},
          rows.map((row) =>
            h(
              "tr",
              { dataset: { field: row.key } },
              h("th", { scope: "row" }, row.label),
              entries.map((e, i) => resultCell(row, i, refIndex, e.job)),
            ),
          ),
        ),
      ),
    ),
    unfinished.length ? h("p", { class: "muted small" }, `No result yet for ${unfinished.join(", ")}: shown as ${DASH}.`) : null,
  ];
}

function refSelect(entries, refIndex, onRef) {
  return h(
    "div",
    { class: "filter" },
    h("label", { for: "compare-ref" }, "Differences to"),
    h(
      "select",
      { id: "compare-ref", onchange: (ev) => onRef(Number(ev.target.value)) },
      entries.map((e, i) => h("option", { value: String(e.job.id), selected: i === refIndex }, jobLabel(e.job))),
    ),
  );
}

function allSwitch(view, onAll) {
  return h(
    "button",
    {
      type: "button",
      role: "switch",
      id: "compare-show-all",
      class: "switch",
      "aria-checked": String(view.all),
      onclick: () => onAll(!view.all),
    },
    h("span", { class: "switch-track", "aria-hidden": "true" }),
    "Show all fields",
  );
}

function missingBox(missing, view) {
  const present = view.ids.filter((id) => !missing.includes(id));
  return h(
    "div",
    { class: "notice", id: "compare-missing", role: "status" },
    h("p", {}, `Not found (deleted, or not yours): ${missing.map((id) => `#${id}`).join(", ")}.`),
    h(
      "a",
      { href: compareAddress({ ids: present, all: view.all, ref: view.ref }), id: "compare-drop-missing" },
      "Drop them from the comparison",
    ),
  );
}

function tooFew(count) {
  return h(
    "div",
    { class: "empty", id: "compare-too-few" },
    h(
      "p",
      {},
      count === 1 ? "Only one job to compare: a comparison needs two or more." : "No jobs to compare: a comparison needs two or more.",
    ),
    h(
      "p",
      {},
      "Tick jobs in the ",
      h("a", { href: "#/", id: "compare-back" }, "jobs list"),
      " (or on an experiment's plot), then open Compare.",
    ),
  );
}

function shareBox() {
  const status = h("span", { class: "small muted", role: "status", "aria-live": "polite" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      status.textContent = "Link copied.";
    } catch {
      status.textContent = "Could not copy: copy the page's address from the address bar.";
    }
  };
  return h("div", { class: "share" }, h("button", { type: "button", id: "compare-copy-link", onclick: copy }, "Copy link"), status);
}

function pageHead(view, count) {
  return h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Jobs"), " / Compare"),
      h("h1", {}, `Compare ${count} jobs`),
      h("p", { class: "lead" }, "The address holds the jobs compared: share it, or bookmark it, to come back to this comparison."),
    ),
    count >= 2 ? shareBox(view) : null,
  );
}

/** The page's parts for the fetched `view.entries`. */
function comparePage(view, widths, handlers) {
  const missing = view.entries.filter((e) => e.missing).map((e) => e.id);
  const entries = view.entries.filter((e) => !e.missing);
  const parts = [pageHead(view, entries.length), missing.length ? missingBox(missing, view) : null];
  if (entries.length < 2) return [...parts, tooFew(entries.length)];
  const refIndex = Math.max(0, view.ref === null ? 0 : entries.findIndex((e) => e.job.id === view.ref));
  const tag = entries.map((e) => e.job.id).join("-");
  return [
    ...parts,
    h("div", { class: "compare-toolbar" }, refSelect(entries, refIndex, handlers.onRef), allSwitch(view, handlers.onAll)),
    h(
      "section",
      { id: "compare-config-section" },
      h("h2", {}, view.all ? "Config" : "Config: the fields that differ"),
      configTable(entries, view, refIndex),
    ),
    h(
      "section",
      { id: "compare-results-section" },
      h("h2", {}, `Results, with the difference to #${entries[refIndex].job.id}`),
      resultTable(entries, view, refIndex),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Training curves"),
      h(
        "p",
        { class: "muted small" },
        "Fine-tune epochs continue the count after the training epochs. Tab to a curve, then step through its epochs with the arrow keys; hover a point for its value.",
      ),
      h(
        "div",
        { class: "charts" },
        CURVES.map((spec) => curveFigure(spec, entries, widths.curve, tag)),
      ),
    ),
    h("section", {}, h("h2", {}, "Channels per layer"), layerFigure(entries, widths.wide, tag)),
    h("section", {}, h("h2", {}, "Frontier"), frontierFigure(entries, view, widths.frontier, tag)),
  ];
}

/** Give each entry that was found its colour and label, by its place in the address. */
function styled(entries) {
  return entries.map((e, i) => (e.missing ? e : { ...e, style: jobStyle(i), label: jobLabel(e.job) }));
}

async function fetchEntry(id) {
  try {
    const [job, metrics] = await Promise.all([api.getJob(id), api.jobMetrics(id)]);
    return { id, job, metrics: metrics.items || [] };
  } catch (err) {
    if (err.status === 404) return { id, missing: true };
    throw err;
  }
}

function drawCompare(root, view) {
  const curve = fitWidth(window.innerWidth >= 1000 ? (root.clientWidth - 48) / 2 : root.clientWidth, 300, 640);
  const widths = { curve, wide: fitWidth(root.clientWidth, 320, 1100), frontier: fitWidth(Math.min(root.clientWidth, 900), 320, 760) };
  const signature = JSON.stringify([view.entries, view.all, view.ref, view.x, widths]);
  if (signature === view.signature) return;
  view.signature = signature;
  keepFocus(root, () => mount(root, ...comparePage(view, widths, view.handlers)));
}

/** #/compare?jobs=…: fetch every job and its epochs, draw, and follow the unfinished ones. */
export async function renderCompare(root, params) {
  const state = compareState(params);
  selectOnly(state.ids);
  const view = { ...state, entries: [], signature: "", handlers: null };
  const setAddress = () => history.replaceState(history.state, "", compareAddress(view));
  view.handlers = {
    onAll: (all) => {
      view.all = all;
      setAddress();
      drawCompare(root, view);
    },
    onRef: (ref) => {
      view.ref = ref;
      setAddress();
      drawCompare(root, view);
    },
    onX: (x) => {
      view.x = xAxisOrDefault(x);
      setAddress();
      drawCompare(root, view);
    },
  };
  if (state.ids.length < 2) {
    mount(root, pageHead(view, state.ids.length), tooFew(state.ids.length));
    return null;
  }
  const onPage = routeGuard(root);
  let stopped = false; // set by the cleanup
  const left = () => stopped || !onPage();
  mount(root, h("p", { class: "muted" }, `Loading ${state.ids.length} jobs…`));
  const meta = await loadMeta();
  const entries = await Promise.all(state.ids.map(fetchEntry));
  if (left()) return () => {}; // left while they loaded: draw nothing over the next page
  view.entries = styled(entries);
  drawCompare(root, view);
  const unfinished = () => view.entries.filter((e) => !e.missing && !isFinished(meta, e.job.status));
  let first = true;
  let asked = 0; // refreshes overlap (the stream's catch-up and a debounced event): the latest wins
  const refresh = async () => {
    if (left()) return false;
    if (first) {
      first = false;
      return unfinished().length > 0;
    }
    const mine = ++asked;
    const fresh = await Promise.all(unfinished().map((e) => fetchEntry(e.id)));
    if (left()) return false;
    if (mine !== asked) return true;
    const byId = new Map(fresh.map((e) => [e.id, e]));
    view.entries = styled(view.entries.map((e) => byId.get(e.id) || e));
    drawCompare(root, view);
    return unfinished().length > 0;
  };
  // Unfinished jobs follow GET /api/events (a job change or a new epoch refetches them, debounced);
  // polling only when the stream cannot be opened.
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((err) => console.warn("refresh failed:", err.message)), 250);
  };
  const stopLive = unfinished().length
    ? liveOrPoll({ jobIds: unfinished().map((e) => e.id) }, { refresh, onJob: soon, onEpoch: soon, onDeleted: soon })
    : () => {};
  const stop = () => {
    clearTimeout(timer);
    stopLive();
  };
  const onResize = () => drawCompare(root, view);
  window.addEventListener("resize", onResize);
  return () => {
    stopped = true;
    stop();
    window.removeEventListener("resize", onResize);
  };
}

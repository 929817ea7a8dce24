// Job page: config, live curves, channels per layer, inside training (ξ = 0 per layer and epoch,
// |ξ| histograms), full vs slim table, downloads, cancel, and organising (tags, note, archive, delete).

import { api, fetchFile, loadMeta } from "../api.js";
import { fitWidth, layerBars, lineChart } from "../charts.js";
import { h, keepFocus, mount, routeGuard } from "../dom.js";
import { csvColumns, downloadBlob, saveCsv, savePng, saveSvg } from "../export.js";
import { ranOn, waitingText } from "../fleet.js";
import {
  bytes,
  DASH,
  dateTime,
  duration,
  methodLabel,
  modelLabel,
  ms,
  num,
  pct,
  pctFmt,
  pctTick,
  progressBar,
  shortId,
  si,
  statusCell,
} from "../format.js";
import {
  hasHistograms,
  heatmap,
  heatmapData,
  heatmapRows,
  histogramBins,
  histogramChart,
  histogramCounts,
  layerEpochs,
} from "../heatmap.js";
import { liveOrPoll } from "../live.js";
import { archiveButton, deleteButton, deleteJob, flash, noteEditor, patchJob, tagEditor } from "../organise.js";
import { isFinished } from "../rules.js";
import { isSelected, toggle } from "../selection.js";

const COLORS = { acc: "#1b6ec2", loss: "#d95f02", objective: "#7570b3", zero: "#1b9e77" };

/**
 * Points of one per-epoch value on a single epoch axis. The API numbers fine-tune epochs after the
 * training ones already (EpochMetrics.epoch counts over both), so x is the epoch as it is.
 */
export function curvePoints(metrics, key) {
  return metrics
    .filter((m) => m[key] !== null && m[key] !== undefined)
    .map((m) => ({ x: m.epoch, y: m[key], phase: m.phase, epoch: m.epoch }));
}

/** `metrics` with `row` in epoch order (a repeated epoch, e.g. from an event and a fetch, replaced). */
export function mergeEpoch(metrics, row) {
  const out = metrics.filter((m) => m.epoch !== row.epoch);
  out.push(row);
  return out.sort((a, b) => a.epoch - b.epoch);
}

/**
 * Which per-epoch charts the page draws: none before the first epoch (a note says why instead of
 * empty frames), else accuracy and loss, and the share of ξ exactly zero for proxns only: NS and the
 * baseline never set γ to exactly zero during training, so theirs is a flat 0.
 */
export function chartKinds(job, metrics) {
  if (!metrics?.length) return [];
  return job?.config?.method === "proxns" ? ["accuracy", "loss", "zero"] : ["accuracy", "loss"];
}

/** Why there are no curves yet (or ever). */
export function noCurvesText(job) {
  switch (job.status) {
    case "queued":
      return "Waiting for a worker: curves appear after the first epoch.";
    case "running":
      return "No epoch finished yet: curves appear after the first one.";
    case "failed":
      return "The job failed before finishing an epoch: there are no curves.";
    case "cancelled":
      return "The job was cancelled before finishing an epoch: there are no curves.";
    default:
      return "No epochs were recorded for this job.";
  }
}

function byPhase(points, name, color) {
  const train = points.filter((p) => p.phase !== "finetune");
  const fine = points.filter((p) => p.phase === "finetune");
  const out = [{ name, color, points: train }];
  if (fine.length) out.push({ name: `${name} (fine-tune)`, color, dash: "5 3", points: fine });
  return out;
}

/** PNG, SVG and CSV of one chart: `svg()` the chart, `rows()` its data as flat objects. */
function exportBar(id, base, svg, rows) {
  const button = (suffix, text, action) =>
    h("button", { type: "button", class: "small-button", id: `${id}-${suffix}`, onclick: action }, text);
  return h(
    "div",
    { class: "chart-export", role: "group", "aria-label": "Export this chart" },
    button("png", "PNG", () => savePng(svg(), `${base}.png`)),
    button("svg", "SVG", () => saveSvg(svg(), `${base}.svg`)),
    button("csv", "CSV", () => {
      const data = rows();
      saveCsv(data, csvColumns(data), `${base}.csv`);
    }),
  );
}

/** A chart card: caption, the chart, export buttons; `data-points` carries the numbers for tests. */
function chartFigure(id, caption, svg, data, { file, rows, exported } = {}) {
  const found = svg.tagName?.toLowerCase() === "svg" ? svg : svg.querySelector("svg");
  const chart = exported ? { svg: exported } : found ? { svg: () => found } : null;
  const flat = rows || (() => (Array.isArray(data) ? data : []));
  return h(
    "figure",
    { class: "chart-card", id, dataset: { points: JSON.stringify(data) } },
    h("figcaption", {}, caption),
    svg,
    file && chart ? exportBar(id, file, chart.svg, flat) : null,
  );
}

function accuracyFigure(common, acc, file) {
  const chart = lineChart({
    ...common,
    title: "Test accuracy per epoch",
    yLabel: "test accuracy (%)",
    yFormat: pctFmt,
    yTickFormat: pctTick,
    yMinSpan: 0.05,
    series: byPhase(acc, "test accuracy", COLORS.acc),
  });
  return chartFigure("chart-accuracy", "Test accuracy", chart, acc, { file: `${file}-accuracy` });
}

function lossFigure(common, loss, obj, file) {
  const chart = lineChart({
    ...common,
    title: "Train loss and objective per epoch",
    yLabel: "loss",
    yFormat: (v) => num(v, 3),
    yMinSpan: 0.1,
    series: [...byPhase(loss, "train loss", COLORS.loss), ...byPhase(obj, "objective", COLORS.objective)],
  });
  const rows = () => [...loss.map((p) => ({ series: "train_loss", ...p })), ...obj.map((p) => ({ series: "objective", ...p }))];
  return chartFigure("chart-loss", "Train loss and objective", chart, { train_loss: loss, objective: obj }, { file: `${file}-loss`, rows });
}

function zeroFigure(common, zero, file) {
  const chart = lineChart({
    ...common,
    title: "Share of ξ exactly zero per epoch",
    yLabel: "ξ = 0 (%)",
    yFormat: pctFmt,
    yTickFormat: pctTick,
    yMin: 0,
    yMinSpan: 0.1,
    series: byPhase(zero, "ξ = 0", COLORS.zero),
  });
  return chartFigure("chart-zero", "Share of ξ exactly zero", chart, zero, { file: `${file}-xi-zero` });
}

/** The per-epoch charts chartKinds picks (accuracy, loss and objective, ξ = 0), or a note. */
function curves(job, metrics, width) {
  const kinds = chartKinds(job, metrics);
  if (!kinds.length) return h("p", { class: "muted", id: "no-curves" }, noCurvesText(job));
  const points = (key) => curvePoints(metrics, key);
  const common = {
    width,
    xLabel: "epoch",
    xMin: 1,
    xMax: Math.max(2, job.config.epochs + (job.config.finetune_epochs || 0)),
  };
  const file = `job-${job.id}`;
  const figures = {
    accuracy: () => accuracyFigure(common, points("test_acc"), file),
    loss: () => lossFigure(common, points("train_loss"), points("objective"), file),
    zero: () => zeroFigure(common, points("zero_fraction"), file),
  };
  return h(
    "div",
    { class: "charts" },
    kinds.map((k) => figures[k]()),
  );
}

/** The heatmap of ξ = 0 per layer and epoch (proxns: the others' γ is never exactly 0 in training). */
function heatmapFigure(view, width) {
  const data = heatmapData(view.metrics);
  if (view.job.config.method !== "proxns" || !data.layers.length) return null;
  const chart = heatmap({ data, width, cursor: view.heatCursor, onCursor: (c) => (view.heatCursor = c) });
  const figure = chartFigure(
    "chart-heatmap",
    "Share of ξ exactly zero per BN layer (rows, network order) and epoch (columns)",
    chart.figure,
    { layers: data.layers, epochs: data.epochs, cells: heatmapRows(data) },
    {
      file: `job-${view.job.id}-xi-zero-heatmap`,
      rows: () => heatmapRows(data),
      // the file shows the data, not the keyboard cursor
      exported: () => {
        const copy = chart.svg.cloneNode(true);
        copy.querySelector(".heat-cursor")?.remove();
        copy.removeAttribute("tabindex");
        return copy;
      },
    },
  );
  figure.append(chart.readout);
  return figure;
}

/** The histogram's epoch and layer as chosen (default: the last recorded epoch, all layers). */
export function histogramChoice(metrics, choice = {}) {
  const rows = layerEpochs(metrics);
  if (!rows.length) return null;
  const row = rows.find((m) => m.epoch === choice.epoch) || rows[rows.length - 1];
  const layer = row.layers.some((l) => l.name === choice.layer) ? choice.layer : null;
  return { row, layer, epochs: rows.map((m) => m.epoch), layers: row.layers.map((l) => l.name) };
}

/** |ξ| histogram of one epoch, summed over layers or for one, with its two pickers. */
function histogramFigure(view, meta, width, redraw) {
  if (!hasHistograms(view.metrics)) return null;
  const pick = histogramChoice(view.metrics, view.hist);
  const what = view.job.config.method === "proxns" ? "|ξ|" : "|γ|";
  const bins = histogramBins(meta.xi_hist_edges || []);
  const counts = histogramCounts(pick.row, pick.layer);
  const where = pick.layer ? `layer ${pick.layer}` : "all layers";
  const svg = histogramChart({ bins, counts, width, what, title: `${what} at the end of epoch ${pick.row.epoch}, ${where}` });
  const rows = counts.map((count, i) => ({
    epoch: pick.row.epoch,
    layer: pick.layer ?? "all",
    bin: i,
    label: bins[i]?.label,
    lo: bins[i]?.lo,
    hi: bins[i]?.hi,
    count,
  }));
  const choose = (key, value) => {
    view.hist = { ...view.hist, [key]: value };
    redraw();
  };
  const epochSel = h(
    "select",
    { id: "hist-epoch", onchange: (e) => choose("epoch", Number(e.target.value)) },
    pick.epochs.map((ep) => h("option", { value: ep, selected: ep === pick.row.epoch }, `epoch ${ep}`)),
  );
  const layerSel = h(
    "select",
    { id: "hist-layer", onchange: (e) => choose("layer", e.target.value || null) },
    h("option", { value: "" }, "all layers (summed)"),
    pick.layers.map((name) => h("option", { value: name, selected: name === pick.layer }, name)),
  );
  const controls = h(
    "div",
    { class: "hist-controls filters" },
    h("div", { class: "filter" }, h("label", { for: "hist-epoch" }, "Epoch"), epochSel),
    h("div", { class: "filter" }, h("label", { for: "hist-layer" }, "Layer"), layerSel),
  );
  const figure = chartFigure("chart-hist", `Distribution of ${what} (${where}, epoch ${pick.row.epoch})`, svg, rows, {
    file: `job-${view.job.id}-hist-epoch${pick.row.epoch}${pick.layer ? `-${pick.layer}` : ""}`,
  });
  figure.querySelector("figcaption").after(controls);
  return figure;
}

/** Inside training: the heatmap and the histograms, when the worker recorded per-layer counts. */
function insideSection(view, meta, width, redraw) {
  const heat = heatmapFigure(view, width);
  const hist = histogramFigure(view, meta, Math.min(width, 720), redraw);
  if (!heat && !hist) return null;
  return h("section", { id: "inside-training" }, h("h2", {}, "Inside training"), heat, hist);
}

function ratio(full, slim) {
  if (!full || slim === null || slim === undefined) return DASH;
  return `${((slim / full) * 100).toFixed(1)} %`;
}

function resultTable(r) {
  const row = (label, full, slim, fmt, rel) =>
    h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, fmt(full)), h("td", {}, fmt(slim)), h("td", {}, rel));
  const speed = r.latency_full_ms && r.latency_slim_ms ? r.latency_full_ms / r.latency_slim_ms : null;
  const speedup = speed === null ? DASH : speed >= 1 ? `${speed.toFixed(2)}× faster` : `${(1 / speed).toFixed(2)}× slower`;
  return h(
    "table",
    { class: "data-table compare-table", id: "result-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, ""),
        h("th", { scope: "col" }, "Full"),
        h("th", { scope: "col" }, "Slim"),
        h("th", { scope: "col" }, "Slim / full"),
      ),
    ),
    h(
      "tbody",
      {},
      row("Parameters", r.params_full, r.params_slim, si, ratio(r.params_full, r.params_slim)),
      row("FLOPs", r.flops_full, r.flops_slim, si, ratio(r.flops_full, r.flops_slim)),
      row("Latency", r.latency_full_ms, r.latency_slim_ms, ms, speedup),
      row("Channels", r.channels_total, r.channels_total - r.channels_pruned, String, `${pct(r.pruned_fraction)} pruned`),
      row(
        "Test accuracy",
        r.acc_full,
        r.acc_slim,
        pct,
        r.acc_full !== null && r.acc_slim !== null ? `${((r.acc_slim - r.acc_full) * 100).toFixed(2)} pts` : DASH,
      ),
      r.acc_finetuned !== null && r.acc_finetuned !== undefined
        ? row("Accuracy after fine-tuning", r.acc_full, r.acc_finetuned, pct, `${((r.acc_finetuned - r.acc_full) * 100).toFixed(2)} pts`)
        : null,
    ),
  );
}

function configTable(config) {
  return h(
    "dl",
    { class: "config-list", id: "job-config" },
    Object.entries(config).map(([k, v]) => [
      h("dt", {}, k),
      h("dd", { class: "mono" }, v === null || v === undefined ? DASH : Array.isArray(v) ? `[${v.join(", ")}]` : String(v)),
    ]),
  );
}

/** What meta.artifact_formats says a model file is for. */
function artifactDescription(artifact, formats) {
  const known = (formats || []).find((f) => f.file === artifact.name) || (formats || []).find((f) => f.format === artifact.format);
  return known?.description || null;
}

/** Download links need the API token, so the click fetches the file with it and saves the blob. */
async function downloadWithToken(ev) {
  const link = ev.currentTarget;
  ev.preventDefault();
  if (link.getAttribute("aria-busy") === "true") return;
  const note = link.parentElement?.querySelector(".download-status");
  link.setAttribute("aria-busy", "true");
  if (note) note.textContent = "Downloading…";
  try {
    downloadBlob(await fetchFile(link.getAttribute("href")), link.getAttribute("download"));
    if (note) note.textContent = "";
  } catch (err) {
    if (note) note.textContent = err.status === 401 ? "" : `Download failed: ${err.message}`;
  } finally {
    link.removeAttribute("aria-busy");
  }
}

function downloads(items, formats) {
  if (!items.length) return h("p", { class: "muted" }, "No model files were written.");
  return h(
    "ul",
    { class: "downloads", id: "downloads" },
    items.map((a) =>
      h(
        "li",
        { dataset: { artifact: a.name } },
        h(
          "a",
          {
            class: "button",
            href: a.url,
            download: a.name,
            dataset: { sha256: a.sha256, bytes: String(a.bytes) },
            onclick: downloadWithToken,
          },
          "Download ",
          h("strong", {}, a.name),
        ),
        h("span", { class: "download-status field-error", role: "status", "aria-live": "polite" }),
        h("span", { class: "artifact-meta" }, `${a.format} · ${bytes(a.bytes)}`),
        h("code", { class: "sha", title: `sha256 ${a.sha256}` }, `sha256 ${a.sha256}`),
        artifactDescription(a, formats) ? h("span", { class: "artifact-desc muted small" }, artifactDescription(a, formats)) : null,
      ),
    ),
  );
}

function header(job, finished, onCancel) {
  const cfg = job.config;
  const canCancel = !finished;
  return h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      h(
        "p",
        { class: "crumbs" },
        h("a", { href: "#/" }, "Jobs"),
        job.experiment_id
          ? [" / ", h("a", { href: `#/experiments/${job.experiment_id}` }, `Experiment #${shortId(job.experiment_id)}`)]
          : null,
      ),
      h(
        "h1",
        {},
        `Job ${shortId(job.id)} `,
        statusCell(job),
        job.archived_at ? [" ", h("span", { class: "badge badge-archived", id: "archived-badge" }, "archived")] : null,
      ),
      h(
        "p",
        { class: "lead" },
        `${methodLabel(cfg.method)} · λ ${num(cfg.lam)}${cfg.beta !== null && cfg.beta !== undefined ? ` · β ${num(cfg.beta)}` : ""} · ${modelLabel(cfg)} on ${cfg.dataset}`,
      ),
    ),
    h(
      "div",
      { class: "actions" },
      canCancel ? h("button", { type: "button", class: "danger", id: "cancel-job", onclick: onCancel }, "Cancel job") : null,
      h("a", { class: "button", href: `#/new?from=${job.id}` }, "Run again with changes"),
      h(
        "span",
        { class: "check compare-check" },
        h("input", { type: "checkbox", id: "select-this-job", checked: isSelected(job.id), onchange: () => toggle(job.id) }),
        h("label", { for: "select-this-job" }, "Select for comparison"),
      ),
    ),
  );
}

function facts(job) {
  const items = [
    ["Created", dateTime(job.created_at)],
    ["Started", dateTime(job.started_at)],
    ["Finished", dateTime(job.finished_at)],
    ["Epochs done", `${job.epochs_done ?? 0} / ${job.config.epochs + (job.config.finetune_epochs || 0)}`],
    [
      "Run time",
      job.started_at ? duration(((job.finished_at ? new Date(job.finished_at) : new Date()) - new Date(job.started_at)) / 1000) : DASH,
    ],
    ["Device", job.device || job.result?.device || DASH],
    ["Ran on", ranOn(job)],
    ["Worker", job.worker_host || DASH],
    ["Attempts", job.attempts ?? DASH],
  ];
  return h(
    "dl",
    { class: "facts" },
    items.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))),
  );
}

function failureBox(job) {
  return h(
    "div",
    { class: "error-box", role: "alert", id: "job-error" },
    h("h2", {}, "The job failed"),
    h("pre", {}, job.error || "no error message recorded"),
  );
}

/**
 * How faithfully the slim network reproduces the masked one (γ = 0 on the pruned channels, nothing
 * deleted): {masked, gap (slim − masked, or null), exact (true, false or null: not reported),
 * inexact: [[consumer, reason], ...]}.
 */
export function slimFidelity(r) {
  const masked = r?.acc_masked ?? null;
  const slim = r?.acc_slim ?? null;
  return {
    masked,
    gap: masked !== null && slim !== null ? slim - masked : null,
    exact: r?.slim_exact ?? null,
    inexact: Object.entries(r?.inexact_layers ?? {}),
  };
}

/** The masked network's accuracy and, when slimming was not exact, the consumers that were not and why. */
function fidelityNote(r) {
  const f = slimFidelity(r);
  if (f.masked === null && f.exact === null) return null;
  const parts = [];
  if (f.masked !== null) {
    const gap = f.gap === null ? "" : ` (slim − masked: ${(f.gap * 100).toFixed(2)} pts)`;
    parts.push(
      h("p", {}, "Masked network (pruned channels' γ = 0, nothing deleted): ", h("strong", { id: "acc-masked" }, pct(f.masked)), gap),
    );
  }
  if (f.exact === true)
    parts.push(h("p", { class: "muted" }, "Slimming was exact: every deleted channel's constant was folded into its consumers."));
  if (f.exact === false) {
    parts.push(
      h(
        "p",
        {},
        `Slimming was not exact for ${f.inexact.length} consumer(s); the slim network's BN statistics were re-estimated on training batches:`,
      ),
      h(
        "ul",
        { id: "inexact-layers", class: "inexact-layers" },
        f.inexact.map(([name, why]) => h("li", {}, h("code", {}, name), `: ${why}`)),
      ),
    );
  }
  return h("div", { class: "slim-fidelity", id: "slim-fidelity", dataset: { exact: String(f.exact) } }, parts);
}

/** Full vs slim numbers and the channels kept per layer. */
function resultSection(r, layerWidth, jobId) {
  const layers = r.layers || [];
  return h(
    "section",
    { id: "result" },
    h("h2", {}, "Full vs slim"),
    h("div", { class: "table-wrap" }, resultTable(r)),
    fidelityNote(r),
    r.kept_forced?.length
      ? h("p", { class: "muted" }, `Kept one channel in layers the method would have emptied: ${r.kept_forced.join(", ")}.`)
      : null,
    h("h2", {}, `Channels per layer (${layers.length} BN layers)`),
    chartFigure(
      "chart-layers",
      "Total vs kept channels per BN layer (hover a column for its name)",
      h("div", { class: "chart-scroll" }, layerBars({ layers, width: layerWidth })),
      layers,
      { file: `job-${jobId}-layers` },
    ),
  );
}

function filesSection(artifacts, formats) {
  return h(
    "section",
    {},
    h("h2", {}, "Slimmed model files"),
    artifacts ? downloads(artifacts, formats) : h("p", { class: "muted" }, "Loading files…"),
  );
}

/** The config, folded or not as the reader left it (`view.configOpen`). */
function configSection(view) {
  const details = h(
    "details",
    { class: "config-details", open: view.configOpen, ontoggle: (e) => (view.configOpen = e.target.open) },
    h("summary", {}, "Config"),
    configTable(view.job.config),
  );
  return h("section", {}, details);
}

/** The API's warnings about the result (chance accuracy, emptied layers), each with its code. */
function warningsBox(job) {
  const warnings = job.warnings || [];
  if (!warnings.length) return null;
  const title = { chance_accuracy: "Accuracy at chance level", layers_forced: "Layers emptied by the method" };
  return h(
    "div",
    { class: "warning-box", id: "job-warnings", role: "note" },
    warnings.map((w) => h("p", { dataset: { warning: w.code } }, h("strong", {}, `⚠ ${title[w.code] || w.code}: `), w.message)),
  );
}

/** The head of the page: title, status (with its warnings) and action notices. */
function topParts(view, meta, onCancel) {
  const { job, actionMsg } = view;
  return [
    header(job, isFinished(meta, job.status), onCancel),
    actionMsg ? h("p", { class: "notice", role: "status" }, actionMsg) : null,
    warningsBox(job),
  ];
}

/** The rest of the page, top to bottom, for the job in `view`. */
function bodyParts(view, meta, widths, redraw) {
  const { job } = view;
  const finished = isFinished(meta, job.status);
  return [
    !finished ? h("div", { class: "job-progress" }, progressBar(job)) : null,
    waitingText(job) ? h("p", { class: "notice", id: "waiting-reason", role: "status" }, `Waiting: ${waitingText(job)}`) : null,
    job.status === "failed" ? failureBox(job) : null,
    job.status === "cancelled" ? h("p", { class: "notice" }, "This job was cancelled.") : null,
    facts(job),
    h("section", {}, h("h2", {}, "Training curves"), curves(job, view.metrics, widths.curve)),
    insideSection(view, meta, widths.layer, redraw),
    job.result ? resultSection(job.result, widths.layer, job.id) : null,
    job.status === "succeeded" ? filesSection(view.artifacts, meta.artifact_formats) : null,
    configSection(view),
  ];
}

const organiseSignature = (job) => JSON.stringify([job.tags || [], job.note || "", Boolean(job.archived_at)]);

/**
 * Tags, note, archive and delete. Drawn again only when they changed elsewhere (another tab, the
 * CLI) and nobody is typing in them: a redraw must not eat a half-written note.
 */
function drawOrganise(holder, view, handlers) {
  const sig = organiseSignature(view.job);
  if (sig === view.organiseSig) return;
  const editing = holder.contains(document.activeElement) || [...holder.querySelectorAll("form")].some((f) => f.isDirty?.());
  if (view.organiseSig && editing) return;
  view.organiseSig = sig;
  const { job } = view;
  mount(
    holder,
    h(
      "section",
      { id: "organise", "aria-labelledby": "organise-title" },
      h("h2", { id: "organise-title" }, "Organise"),
      h(
        "div",
        { class: "organise-grid" },
        tagEditor({ tags: job.tags || [], onSave: handlers.saveTags }),
        noteEditor({ note: job.note || "", onSave: handlers.saveNote }),
        h(
          "div",
          { class: "organise-actions" },
          archiveButton({ archived: Boolean(job.archived_at), onToggle: handlers.archive }),
          deleteButton({ what: `job ${job.id}, its results and its model files`, onDelete: handlers.remove }),
        ),
      ),
    ),
  );
}

/**
 * Redraw the page, unless nothing it shows changed (so a hover or focus survives an update).
 * `parts`: {top, organise, body} holders; `handlers`: the organise callbacks and onCancel.
 */
function drawJob(root, parts, view, meta, handlers) {
  const widths = {
    curve: fitWidth(window.innerWidth >= 1000 ? (root.clientWidth - 48) / 2 : root.clientWidth, 300, 640),
    layer: fitWidth(root.clientWidth, 320, 900),
  };
  const signature = JSON.stringify([view.job, view.metrics, view.artifacts, view.actionMsg, widths.curve, widths.layer, view.hist]);
  if (signature !== view.signature) {
    view.signature = signature;
    keepFocus(parts.top, () => mount(parts.top, ...topParts(view, meta, handlers.onCancel)));
    keepFocus(parts.body, () => mount(parts.body, ...bodyParts(view, meta, widths, handlers.redraw)));
  }
  drawOrganise(parts.organise, view, handlers);
}

function notFound(root, id) {
  mount(
    root,
    h("h1", {}, "Job not found"),
    h(
      "p",
      { id: "job-missing" },
      `There is no job ${id}: it was deleted, or it never existed. `,
      h("a", { href: "#/" }, "Back to the jobs list"),
    ),
  );
}

function deletedPage(root, id) {
  mount(
    root,
    h("h1", {}, `Job ${id} was deleted`),
    h("p", { id: "job-missing" }, "Its results and model files are gone. ", h("a", { href: "#/" }, "Back to the jobs list")),
  );
}

/** Epoch rows `fetched` merged into `shown` by epoch: a fetch that began before a streamed epoch
 *  arrived must not drop it. The fetched row wins where both have an epoch (the stored one). */
export function mergeMetrics(shown, fetched) {
  const byEpoch = new Map((shown || []).map((m) => [m.epoch, m]));
  for (const m of fetched || []) byEpoch.set(m.epoch, m);
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

/** True when `next` (a job) is not older than `shown` by updated_at (either missing: true). */
export function notOlder(shown, next) {
  const a = Date.parse(shown?.updated_at ?? "");
  const b = Date.parse(next?.updated_at ?? "");
  return Number.isNaN(a) || Number.isNaN(b) || b >= a;
}

/**
 * Fetch the job and its epochs (and its files once it succeeded): false when it is gone. An answer
 * older than one already shown (a slower fetch begun before) is dropped: resolves to true then.
 */
async function fetchJob(id, view) {
  const mine = ++view.asked;
  let j;
  let m;
  try {
    [j, m] = await Promise.all([api.getJob(id), api.jobMetrics(id)]);
  } catch (err) {
    if (err.status !== 404) throw err;
    return false;
  }
  if (mine < view.shown) return true;
  view.shown = mine;
  if (notOlder(view.job, j)) view.job = j;
  // merged: an empty answer keeps the epochs already shown (e.g. a poll racing a restart), and
  // an epoch streamed while this fetch was on its way stays
  view.metrics = mergeMetrics(view.metrics, m.items);
  await fetchArtifacts(id, view);
  return true;
}

async function fetchArtifacts(id, view) {
  if (view.job.status === "succeeded" && !view.artifacts) view.artifacts = (await api.jobArtifacts(id)).items;
}

export async function renderJob(root, _params, id) {
  const onPage = routeGuard(root);
  let stopped = false; // set by the cleanup
  const left = () => stopped || !onPage();
  mount(root, h("p", { class: "muted" }, "Loading job…"));
  const meta = await loadMeta();
  // What the page shows; drawJob compares it with the last drawing's `signature`.
  const view = {
    job: null,
    metrics: [],
    artifacts: null,
    actionMsg: "",
    configOpen: true,
    signature: "",
    organiseSig: "",
    heatCursor: null,
    hist: { epoch: null, layer: null },
    asked: 0, // fetchJob's counter: the latest fetch begun, and the latest one shown
    shown: 0,
  };
  const found = await fetchJob(id, view);
  if (left()) return () => {};
  if (!found) {
    notFound(root, id);
    return () => {};
  }
  const parts = { top: h("div", { id: "job-top" }), organise: h("div", { id: "job-organise" }), body: h("div", { id: "job-body" }) };
  mount(root, parts.top, parts.organise, parts.body);
  let stopLive = () => {};
  const saved = (j) => {
    view.job = j;
    view.organiseSig = organiseSignature(j);
    draw();
    return j;
  };
  const handlers = {
    onCancel: async (ev) => {
      ev.target.disabled = true;
      try {
        view.job = await api.cancelJob(id);
        view.actionMsg = "Cancel requested.";
      } catch (err) {
        view.actionMsg = `Could not cancel: ${err.message}`;
      }
      if (!left()) draw();
    },
    redraw: () => draw(),
    saveTags: async (tags) => saved(await patchJob(id, { tags })),
    saveNote: async (note) => saved(await patchJob(id, { note })),
    archive: async (archived) => saved(await patchJob(id, { archived })),
    remove: async () => {
      await deleteJob(id);
      stopLive();
      flash(`Job ${id} was deleted, with its results and model files.`);
      location.hash = "#/";
    },
  };
  const draw = () => {
    if (!left()) drawJob(root, parts, view, meta, handlers);
  };
  draw();
  const onResize = () => draw(); // redraws only when a chart's width changes
  window.addEventListener("resize", onResize);
  const gone = () => {
    stopLive();
    if (!left()) deletedPage(root, id);
  };
  stopLive = liveOrPoll(
    { jobIds: [Number(id)] },
    {
      // the fallback's poll, and a catch-up each time the stream opens (what happened before it did)
      refresh: async () => {
        if (left()) return false;
        if (!(await fetchJob(id, view))) {
          gone();
          return false;
        }
        draw();
        return !isFinished(meta, view.job.status);
      },
      onJob: async (j) => {
        if (String(j.id) !== String(id) || !notOlder(view.job, j)) return;
        view.job = j;
        await fetchArtifacts(id, view);
        draw();
      },
      onEpoch: (e) => {
        if (String(e.job_id) !== String(id)) return;
        const { job_id: _jobId, ...row } = e;
        view.metrics = mergeEpoch(view.metrics, row);
        draw();
      },
      onDeleted: (e) => {
        if (String(e.job_id) === String(id)) gone();
      },
    },
  );
  return () => {
    stopped = true;
    stopLive();
    window.removeEventListener("resize", onResize);
  };
}

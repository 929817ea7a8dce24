// Job page: config, live curves, channels per layer, full vs slim table, downloads, cancel.

import { api, fetchFile, loadMeta } from "../api.js";
import { fitWidth, layerBars, lineChart } from "../charts.js";
import { h, keepFocus, mount } from "../dom.js";
import { downloadBlob } from "../export.js";
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
  progressBar,
  shortId,
  si,
  statusBadge,
} from "../format.js";
import { poll } from "../poll.js";
import { isFinished } from "../rules.js";

const COLORS = { acc: "#1b6ec2", loss: "#d95f02", objective: "#7570b3", zero: "#1b9e77" };

/** Epoch on a single axis: fine-tune epochs continue after the training epochs. */
function curvePoints(metrics, trainEpochs, key) {
  return metrics
    .filter((m) => m[key] !== null && m[key] !== undefined)
    .map((m) => ({ x: m.phase === "finetune" ? trainEpochs + m.epoch : m.epoch, y: m[key], phase: m.phase, epoch: m.epoch }));
}

function byPhase(points, name, color) {
  const train = points.filter((p) => p.phase !== "finetune");
  const fine = points.filter((p) => p.phase === "finetune");
  const out = [{ name, color, points: train }];
  if (fine.length) out.push({ name: `${name} (fine-tune)`, color, dash: "5 3", points: fine });
  return out;
}

function chartFigure(id, caption, svg, data) {
  return h("figure", { class: "chart-card", id, dataset: { points: JSON.stringify(data) } }, h("figcaption", {}, caption), svg);
}

const pctFmt = (v) => `${Math.round(v * 1000) / 10} %`;
const pctTick = (v) => `${Math.round(v * 1000) / 10}`;

function accuracyFigure(common, acc) {
  const chart = lineChart({
    ...common,
    title: "Test accuracy per epoch",
    yLabel: "test accuracy (%)",
    yFormat: pctFmt,
    yTickFormat: pctTick,
    yMinSpan: 0.05,
    series: byPhase(acc, "test accuracy", COLORS.acc),
  });
  return chartFigure("chart-accuracy", "Test accuracy", chart, acc);
}

function lossFigure(common, loss, obj) {
  const chart = lineChart({
    ...common,
    title: "Train loss and objective per epoch",
    yLabel: "loss",
    yFormat: (v) => num(v, 3),
    yMinSpan: 0.1,
    series: [...byPhase(loss, "train loss", COLORS.loss), ...byPhase(obj, "objective", COLORS.objective)],
  });
  return chartFigure("chart-loss", "Train loss and objective", chart, { train_loss: loss, objective: obj });
}

function zeroFigure(common, zero) {
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
  return chartFigure("chart-zero", "Share of ξ exactly zero", chart, zero);
}

/** The three per-epoch charts: accuracy, loss and objective, share of ξ at zero. */
function curves(job, metrics, width) {
  const epochs = job.config.epochs;
  const points = (key) => curvePoints(metrics, epochs, key);
  const common = {
    width,
    xLabel: "epoch",
    xMin: 1,
    xMax: Math.max(2, epochs + (job.config.finetune_epochs || 0)),
    emptyText: job.status === "queued" ? "Waiting for a worker…" : "No epoch finished yet",
  };
  return h(
    "div",
    { class: "charts" },
    accuracyFigure(common, points("test_acc")),
    lossFigure(common, points("train_loss"), points("objective")),
    zeroFigure(common, points("zero_fraction")),
  );
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
      h("h1", {}, `Job ${shortId(job.id)} `, statusBadge(job.status)),
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
function resultSection(r, layerWidth) {
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

/** The page's parts, top to bottom, for the job in `view`. */
function jobPage(view, meta, widths, onCancel) {
  const { job, actionMsg } = view;
  const finished = isFinished(meta, job.status);
  return [
    header(job, finished, onCancel),
    actionMsg ? h("p", { class: "notice", role: "status" }, actionMsg) : null,
    !finished ? h("div", { class: "job-progress" }, progressBar(job)) : null,
    waitingText(job) ? h("p", { class: "notice", id: "waiting-reason", role: "status" }, `Waiting: ${waitingText(job)}`) : null,
    job.status === "failed" ? failureBox(job) : null,
    job.status === "cancelled" ? h("p", { class: "notice" }, "This job was cancelled.") : null,
    facts(job),
    h("section", {}, h("h2", {}, "Training curves"), curves(job, view.metrics, widths.curve)),
    job.result ? resultSection(job.result, widths.layer) : null,
    job.status === "succeeded" ? filesSection(view.artifacts, meta.artifact_formats) : null,
    configSection(view),
  ];
}

/**
 * Redraw the page, unless nothing it shows changed (so a hover or focus survives a poll).
 * `metrics`: the latest epochs (an empty list keeps the last ones; undefined keeps them too).
 */
function drawJob(root, view, meta, metrics, onCancel) {
  if (metrics) view.metrics = metrics.length ? metrics : view.metrics;
  const widths = {
    curve: fitWidth(window.innerWidth >= 1000 ? (root.clientWidth - 48) / 2 : root.clientWidth, 300, 640),
    layer: fitWidth(root.clientWidth, 320, 900),
  };
  const signature = JSON.stringify([view.job, view.metrics, view.artifacts, view.actionMsg, widths.curve, widths.layer]);
  if (signature === view.signature) return;
  view.signature = signature;
  keepFocus(root, () => mount(root, ...jobPage(view, meta, widths, onCancel)));
}

function notFound(root, id) {
  mount(root, h("h1", {}, "Job not found"), h("p", {}, `There is no job ${id}. `, h("a", { href: "#/" }, "Back to the jobs list")));
}

/** One poll: fetch the job and its epochs (and its files once it succeeded), then redraw. */
async function pollJob(root, id, view, meta, draw) {
  let j;
  let m;
  try {
    [j, m] = await Promise.all([api.getJob(id), api.jobMetrics(id)]);
  } catch (err) {
    if (err.status !== 404) throw err;
    notFound(root, id);
    return false;
  }
  view.job = j;
  if (j.status === "succeeded" && !view.artifacts) {
    view.artifacts = (await api.jobArtifacts(id)).items;
  }
  draw(m.items);
  return !isFinished(meta, j.status);
}

export async function renderJob(root, _params, id) {
  mount(root, h("p", { class: "muted" }, "Loading job…"));
  const meta = await loadMeta();
  // What the page shows; drawJob compares it with the last drawing's `signature`.
  const view = { job: null, metrics: [], artifacts: null, actionMsg: "", configOpen: true, signature: "" };
  const draw = (metrics) => drawJob(root, view, meta, metrics, onCancel);
  const onCancel = async (ev) => {
    ev.target.disabled = true;
    try {
      view.job = await api.cancelJob(id);
      view.actionMsg = "Cancel requested.";
    } catch (err) {
      view.actionMsg = `Could not cancel: ${err.message}`;
    }
    draw([]);
  };
  const onResize = () => view.job && draw(); // redraws only when a chart's width changes
  window.addEventListener("resize", onResize);
  const stop = poll(() => pollJob(root, id, view, meta, draw));
  return () => {
    stop();
    window.removeEventListener("resize", onResize);
  };
}

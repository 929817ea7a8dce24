// Experiments list and the experiment page with the headline plot.

import { api, loadMeta } from "../api.js";
import { fitWidth, METHOD_STYLE, scatterPlot } from "../charts.js";
import { h, keepFocus, mount } from "../dom.js";
import { csvColumns, saveCsv, savePng, saveSvg } from "../export.js";
import { ago, DASH, dateTime, methodLabel, num, pct, shortId, si } from "../format.js";
import { poll } from "../poll.js";
import { isFinished } from "../rules.js";
import { jobsTable } from "./jobs.js";

// Which accuracy is the y axis. "final": fine-tuned where the job fine-tuned, else slim.
const ACCURACY = {
  final: { label: "slim, fine-tuned where run", pick: (p) => p.acc_finetuned ?? p.acc_slim },
  slim: { label: "slim, straight after pruning", pick: (p) => p.acc_slim },
  finetuned: { label: "slim after fine-tuning", pick: (p) => p.acc_finetuned },
  full: { label: "full, before pruning", pick: (p) => p.acc_full },
};

function statusCounts(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n);
  if (!entries.length) return DASH;
  return h(
    "span",
    { class: "counts" },
    entries.map(([st, n]) => h("span", { class: `badge status-${st}` }, `${n} ${st}`)),
  );
}

function experimentRow(x) {
  return h(
    "tr",
    { dataset: { experimentId: String(x.id) } },
    h("td", { "data-label": "Experiment" }, h("a", { href: `#/experiments/${x.id}` }, x.name || `#${shortId(x.id)}`)),
    h("td", { "data-label": "Jobs" }, String(x.job_count)),
    h("td", { "data-label": "Status" }, statusCounts(x.status_counts)),
    h("td", { "data-label": "Created" }, ago(x.created_at)),
  );
}

function experimentsTable(items) {
  const heads = ["Experiment", "Jobs", "Status", "Created"].map((t) => h("th", { scope: "col" }, t));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data-table", id: "experiments-table" },
      h("thead", {}, h("tr", {}, heads)),
      h("tbody", {}, items.map(experimentRow)),
    ),
  );
}

function noExperiments() {
  return h(
    "div",
    { class: "empty" },
    h("p", {}, "No experiments yet. A sweep runs one config over several values of λ, β or method and plots them together."),
    h("a", { class: "button primary", href: "#/sweep" }, "New sweep"),
  );
}

export async function renderExperiments(root) {
  const body = h("div", { id: "experiments-body" });
  const newSweep = h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/sweep" }, "New sweep"));
  mount(root, h("div", { class: "page-head" }, h("h1", {}, "Experiments"), newSweep), body);
  return poll(async () => {
    const page = await api.listExperiments({ limit: 200 });
    if (!page.items.length) mount(body, noExperiments());
    else keepFocus(body, () => mount(body, experimentsTable(page.items)));
    return true;
  });
}

function tooltipContent(p) {
  const rows = [
    ["Method", methodLabel(p.method)],
    ["λ", num(p.lam)],
    ["β", p.beta === null || p.beta === undefined ? DASH : num(p.beta)],
    ["Seed", p.seed ?? DASH],
    ["Pruned", pct(p.pruned_fraction)],
    ["Accuracy", pct(p.y, 2)],
    ["Params", si(p.params_slim)],
    ["FLOPs", si(p.flops_slim)],
  ];
  const same = p.overlaps?.length ? h("p", { class: "overlap" }, `Same spot as job ${p.overlaps.map(shortId).join(", ")}`) : null;
  return [
    h("strong", {}, `Job ${shortId(p.job_id)}`),
    same,
    h(
      "dl",
      {},
      rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))),
    ),
    h("small", {}, "Click to open"),
  ];
}

/** Points of the plot: finished jobs with a result and the chosen accuracy. */
export function plotPoints(points, accuracy) {
  const pick = ACCURACY[accuracy].pick;
  const out = points
    .filter((p) => p.pruned_fraction !== null && p.pruned_fraction !== undefined && pick(p) !== null && pick(p) !== undefined)
    .map((p) => ({ ...p, x: p.pruned_fraction, y: pick(p) }));
  // Markers that land on the same spot hide each other: the tooltip names the others.
  const spot = (p) => `${p.x.toFixed(3)}:${p.y.toFixed(3)}`;
  for (const p of out) p.overlaps = out.filter((q) => q !== p && spot(q) === spot(p)).map((q) => q.job_id);
  return out;
}

/** The plotted points as `data-points` exposes them to scripts and tests. */
export function exposedPoints(pts) {
  return pts.map((p) => ({
    job_id: p.job_id,
    method: p.method,
    lam: p.lam,
    beta: p.beta,
    seed: p.seed,
    x: p.x,
    y: p.y,
    params_slim: p.params_slim,
    flops_slim: p.flops_slim,
  }));
}

/** The line under the plot: points plotted, jobs finished, and whether there is a baseline. */
export function plotSummary(plotted, jobs, baselineAcc, meta) {
  const done = jobs.filter((j) => isFinished(meta, j.status)).length;
  const noBaseline = baselineAcc === null || baselineAcc === undefined ? " No baseline job finished yet, so no reference line." : "";
  return `${plotted} point(s) plotted; ${done} of ${jobs.length} job(s) finished.${noBaseline}`;
}

/** Jobs per status: {status: count}. */
export function tallyStatuses(jobs) {
  const counts = {};
  for (const j of jobs) counts[j.status] = (counts[j.status] || 0) + 1;
  return counts;
}

/** Put the tooltip above the marker `el` (below it when there is no room), inside the figure. */
function placeTooltip(tooltip, el, figure) {
  const box = el.getBoundingClientRect();
  const host = figure.getBoundingClientRect();
  const left = box.left - host.left + box.width / 2;
  const top = box.top - host.top;
  const above = top - tooltip.offsetHeight - 10;
  tooltip.style.left = `${Math.min(Math.max(8, left - tooltip.offsetWidth / 2), host.width - tooltip.offsetWidth - 8)}px`;
  tooltip.style.top = `${above < 0 ? top + box.height + 10 : above}px`;
}

/** The scatter plot's onPoint: open the job, or show and hide the tooltip. */
function pointHandler(tooltip, figure) {
  return (kind, p, el) => {
    if (kind === "open") {
      location.hash = `#/jobs/${p.job_id}`;
      return;
    }
    if (kind === "leave") {
      tooltip.hidden = true;
      return;
    }
    mount(tooltip, tooltipContent(p));
    tooltip.hidden = false;
    placeTooltip(tooltip, el, figure);
  };
}

/** The headline figure; `draw(exp, accuracy, meta)` redraws it when its data or width changed. */
function headlinePlot(root) {
  const tooltip = h("div", { class: "tooltip", role: "tooltip", id: "plot-tooltip", hidden: true });
  const plotHolder = h("div", { class: "plot-holder" });
  const figure = h("figure", { class: "chart-card headline", id: "headline-plot", dataset: { points: "[]" } }, plotHolder, tooltip);
  const summary = h("p", { class: "muted", id: "plot-summary", "aria-live": "polite" });
  const onPoint = pointHandler(tooltip, figure);
  let signature = "";
  function draw(exp, accuracy, meta) {
    const width = fitWidth(Math.min(root.clientWidth, 900), 320, 720);
    const next = JSON.stringify([exp.points, exp.baseline_acc, accuracy, width]);
    if (next === signature) return; // unchanged: keep the markers (and a hover) in place
    signature = next;
    tooltip.hidden = true;
    const pts = plotPoints(exp.points || [], accuracy);
    const height = Math.round(Math.max(300, Math.min(420, width * 0.62)));
    const svg = scatterPlot({ points: pts, baseline: exp.baseline_acc ?? null, yLabel: "test accuracy (%)", onPoint, width, height });
    svg.id = "headline-svg";
    const focusedJob = document.activeElement?.closest?.("[data-job-id]")?.dataset.jobId;
    mount(plotHolder, svg);
    if (focusedJob) plotHolder.querySelector(`[data-job-id="${CSS.escape(focusedJob)}"]`)?.focus({ preventScroll: true });
    figure.dataset.points = JSON.stringify(exposedPoints(pts));
    figure.dataset.baseline = exp.baseline_acc === null || exp.baseline_acc === undefined ? "" : String(exp.baseline_acc);
    summary.textContent = plotSummary(pts.length, exp.jobs || [], exp.baseline_acc, meta);
  }
  return { figure, summary, svg: () => plotHolder.querySelector("svg"), draw };
}

function accuracySelect(accuracy, onChange) {
  return h(
    "select",
    { id: "plot-accuracy", onchange: (e) => onChange(e.target.value) },
    Object.entries(ACCURACY).map(([k, v]) => h("option", { value: k, selected: k === accuracy }, v.label)),
  );
}

/** Accuracy picker and the PNG / SVG / CSV buttons; `current()` gives {exp, svg} at click time. */
function plotToolbar(accSelect, current) {
  const fileBase = (exp) => `experiment-${exp.id}-${(exp.name || "plot").replace(/[^\w.-]+/g, "_")}`;
  const save = (id, label, action) => h("button", { type: "button", id, onclick: () => action(current()) }, label);
  const points = (exp) => exp.points || [];
  return h(
    "div",
    { class: "plot-toolbar" },
    h("div", { class: "filter" }, h("label", { for: "plot-accuracy" }, "Accuracy"), accSelect),
    h(
      "div",
      { class: "actions" },
      save("save-png", "Save PNG", ({ exp, svg }) => savePng(svg, `${fileBase(exp)}.png`)),
      save("save-svg", "Save SVG", ({ exp, svg }) => saveSvg(svg, `${fileBase(exp)}.svg`)),
      save("save-csv", "Download CSV", ({ exp }) => saveCsv(points(exp), csvColumns(points(exp), ["job_id"]), `${fileBase(exp)}.csv`)),
    ),
  );
}

function legendNote() {
  return h(
    "p",
    { class: "muted small" },
    "Each marker is one finished job: ",
    Object.entries(METHOD_STYLE).map(([m, st], i) => [
      i ? ", " : "",
      h("span", { style: `color: ${st.color}` }, `${methodLabel(m)} ${st.marker}`),
    ]),
    ". The dashed line is the baseline's accuracy. Hover or focus a marker for details; click or press Enter to open the job.",
  );
}

function experimentHead(exp) {
  return h(
    "div",
    { class: "page-head" },
    h(
      "div",
      {},
      h("p", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments")),
      h("h1", {}, exp.name || `Experiment #${shortId(exp.id)}`),
      h("p", { class: "lead" }, `Created ${dateTime(exp.created_at)} · `, statusCounts(tallyStatuses(exp.jobs || []))),
    ),
  );
}

const TARGET_LABEL = { pruned_fraction: "of the channels pruned", flops_fraction: "of the FLOPs removed" };

/** A budget search in words: null for an experiment without one. */
export function searchSummary(exp) {
  const spec = exp?.search;
  if (!spec) return null;
  const state = exp.search_state || {};
  const points = (state.points || []).map((p) => ({
    jobId: p.job_id,
    lam: p.lam,
    value: p.value,
    status: p.status,
    text: `λ ${num(p.lam, 4)} → ${p.value == null ? DASH : pct(p.value)}`,
  }));
  return {
    budget: `${pct(spec.value)} ± ${pct(spec.tolerance)} ${TARGET_LABEL[spec.target] || spec.target}`,
    limits: `at most ${spec.max_jobs} jobs, ${spec.parallel} at a time, from λ ${num(state.default_lam, 4)}`,
    status: state.status || "running",
    reason: state.reason || "",
    bestJobId: state.best_job_id ?? null,
    points,
  };
}

function searchSection(exp) {
  const s = searchSummary(exp);
  if (!s) return null;
  const best =
    s.bestJobId == null
      ? null
      : h(
          "p",
          {},
          s.status === "met" ? "Met by " : "Closest: ",
          h("a", { href: `#/jobs/${s.bestJobId}`, id: "search-best" }, `job ${shortId(s.bestJobId)}`),
        );
  return h(
    "section",
    { class: "search-summary", id: "experiment-search", dataset: { status: s.status } },
    h("h2", {}, "Budget search"),
    h("p", {}, h("strong", {}, s.budget), ` · ${s.limits} · `, h("span", { class: `badge search-${s.status}` }, s.status)),
    s.reason ? h("p", { class: "muted", id: "search-reason" }, s.reason) : null,
    best,
    h(
      "ol",
      { class: "search-points" },
      s.points.map((p) => h("li", {}, h("a", { href: `#/jobs/${p.jobId}` }, p.text), ` (${p.status})`)),
    ),
  );
}

function specSection(exp) {
  const spec = JSON.stringify({ sweep: exp.sweep, base: exp.base, ...(exp.search ? { search: exp.search } : {}) }, null, 2);
  return h(
    "section",
    {},
    h("details", { class: "config-details" }, h("summary", {}, "Sweep and base config"), h("pre", { class: "mono" }, spec)),
  );
}

function experimentNotFound(root, id) {
  mount(
    root,
    h("h1", {}, "Experiment not found"),
    h("p", {}, `There is no experiment ${id}. `, h("a", { href: "#/experiments" }, "Back to experiments")),
  );
}

/** The page's parts, mounted on the first response; `update()` refreshes them on every poll. */
function experimentPage(root, meta, state) {
  const plot = headlinePlot(root);
  const drawPlot = () => plot.draw(state.exp, state.accuracy, meta);
  const accSelect = accuracySelect(state.accuracy, (value) => {
    state.accuracy = value;
    drawPlot();
  });
  const toolbar = plotToolbar(accSelect, () => ({ exp: state.exp, svg: plot.svg() }));
  const head = h("div");
  const searchHolder = h("div");
  const jobsHolder = h("div", { id: "experiment-jobs" });
  let mounted = false;
  let lastJobs = "";
  function update(exp) {
    if (!mounted) {
      mounted = true;
      const plotSection = h(
        "section",
        {},
        h("h2", {}, "Accuracy against channels pruned"),
        toolbar,
        plot.figure,
        plot.summary,
        legendNote(),
      );
      mount(root, head, searchHolder, plotSection, h("section", {}, h("h2", {}, "Jobs"), jobsHolder), h("div", {}, specSection(exp)));
    }
    mount(head, experimentHead(exp));
    mount(searchHolder, searchSection(exp));
    drawPlot();
    const jobsSignature = JSON.stringify(exp.jobs);
    if (jobsSignature === lastJobs) return;
    lastJobs = jobsSignature;
    const table = jobsTable(exp.jobs || [], { showExperiment: false, id: "experiment-jobs-table" });
    keepFocus(jobsHolder, () => mount(jobsHolder, h("div", { class: "table-wrap" }, table)));
  }
  return { update, drawPlot };
}

export async function renderExperiment(root, params, id) {
  mount(root, h("p", { class: "muted" }, "Loading experiment…"));
  const meta = await loadMeta();
  const state = { exp: null, accuracy: params.get("acc") in ACCURACY ? params.get("acc") : "final" };
  const page = experimentPage(root, meta, state);
  const onResize = () => state.exp && page.drawPlot();
  window.addEventListener("resize", onResize);
  const stop = poll(async () => {
    try {
      state.exp = await api.getExperiment(id);
    } catch (err) {
      if (err.status !== 404) throw err;
      experimentNotFound(root, id);
      return false;
    }
    page.update(state.exp);
    if (state.exp.search_state?.status === "running") return true; // its next round comes
    return !(state.exp.jobs || []).every((j) => isFinished(meta, j.status));
  });
  return () => {
    stop();
    window.removeEventListener("resize", onResize);
  };
}

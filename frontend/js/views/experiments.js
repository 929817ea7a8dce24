// Experiments list and the experiment page with the headline plot.

import { api, isFinished } from "../api.js";
import { fitWidth, METHOD_STYLE, scatterPlot } from "../charts.js";
import { h, keepFocus, mount } from "../dom.js";
import { ago, DASH, dateTime, methodLabel, num, pct, shortId, si } from "../format.js";
import { saveCsv, savePng, saveSvg } from "../export.js";
import { poll } from "../poll.js";
import { jobsTable } from "./jobs.js";

const CSV_COLUMNS = ["job_id", "method", "lam", "beta", "seed", "pruned_fraction", "acc_full", "acc_slim", "acc_finetuned", "params_slim", "flops_slim"];

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
  return h("span", { class: "counts" }, entries.map(([st, n]) => h("span", { class: `badge status-${st}` }, `${n} ${st}`)));
}

export async function renderExperiments(root) {
  const body = h("div", { id: "experiments-body" });
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Experiments"), h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/sweep" }, "New sweep"))),
    body,
  );
  return poll(async () => {
    const page = await api.listExperiments({ limit: 200 });
    if (!page.items.length) {
      mount(body, h("div", { class: "empty" }, h("p", {}, "No experiments yet. A sweep runs one config over several values of λ, β or method and plots them together."), h("a", { class: "button primary", href: "#/sweep" }, "New sweep")));
      return true;
    }
    keepFocus(body, () =>
      mount(
        body,
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "data-table", id: "experiments-table" },
            h("thead", {}, h("tr", {}, ["Experiment", "Jobs", "Status", "Created"].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              page.items.map((x) =>
                h(
                  "tr",
                  { dataset: { experimentId: String(x.id) } },
                  h("td", { "data-label": "Experiment" }, h("a", { href: `#/experiments/${x.id}` }, x.name || `#${shortId(x.id)}`)),
                  h("td", { "data-label": "Jobs" }, String(x.job_count)),
                  h("td", { "data-label": "Status" }, statusCounts(x.status_counts)),
                  h("td", { "data-label": "Created" }, ago(x.created_at)),
                ),
              ),
            ),
          ),
        ),
      ),
    );
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
  const same = p.overlaps && p.overlaps.length ? h("p", { class: "overlap" }, `Same spot as job ${p.overlaps.map(shortId).join(", ")}`) : null;
  return [h("strong", {}, `Job ${shortId(p.job_id)}`), same, h("dl", {}, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v))))), h("small", {}, "Click to open")];
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

export async function renderExperiment(root, params, id) {
  mount(root, h("p", { class: "muted" }, "Loading experiment…"));
  let accuracy = params.get("acc") in ACCURACY ? params.get("acc") : "final";
  let exp = null;

  const tooltip = h("div", { class: "tooltip", role: "tooltip", id: "plot-tooltip", hidden: true });
  const plotHolder = h("div", { class: "plot-holder" });
  const figure = h("figure", { class: "chart-card headline", id: "headline-plot", dataset: { points: "[]" } }, plotHolder, tooltip);
  const summary = h("p", { class: "muted", id: "plot-summary", "aria-live": "polite" });
  const jobsHolder = h("div", { id: "experiment-jobs" });
  const head = h("div");
  const specHolder = h("div");

  const onPoint = (kind, p, el) => {
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
    const box = el.getBoundingClientRect();
    const host = figure.getBoundingClientRect();
    const left = box.left - host.left + box.width / 2;
    const top = box.top - host.top;
    tooltip.style.left = `${Math.min(Math.max(8, left - tooltip.offsetWidth / 2), host.width - tooltip.offsetWidth - 8)}px`;
    tooltip.style.top = `${top - tooltip.offsetHeight - 10 < 0 ? top + box.height + 10 : top - tooltip.offsetHeight - 10}px`;
  };

  let plotSignature = "";
  function drawPlot() {
    const width = fitWidth(Math.min(root.clientWidth, 900), 320, 720);
    const signature = JSON.stringify([exp.points, exp.baseline_acc, accuracy, width]);
    if (signature === plotSignature) return; // unchanged: keep the markers (and a hover) in place
    plotSignature = signature;
    tooltip.hidden = true;
    const pts = plotPoints(exp.points || [], accuracy);
    const svg = scatterPlot({ points: pts, baseline: exp.baseline_acc ?? null, yLabel: "test accuracy (%)", onPoint, width, height: Math.round(Math.max(300, Math.min(420, width * 0.62))) });
    svg.id = "headline-svg";
    const focusedJob = document.activeElement?.closest?.("[data-job-id]")?.dataset.jobId;
    mount(plotHolder, svg);
    if (focusedJob) plotHolder.querySelector(`[data-job-id="${CSS.escape(focusedJob)}"]`)?.focus({ preventScroll: true });
    const exposed = pts.map((p) => ({ job_id: p.job_id, method: p.method, lam: p.lam, beta: p.beta, seed: p.seed, x: p.x, y: p.y, params_slim: p.params_slim, flops_slim: p.flops_slim }));
    figure.dataset.points = JSON.stringify(exposed);
    figure.dataset.baseline = exp.baseline_acc === null || exp.baseline_acc === undefined ? "" : String(exp.baseline_acc);
    window.__proxnsPlot = { experimentId: exp.id, accuracy, points: exposed, baseline: exp.baseline_acc ?? null };
    const done = (exp.jobs || []).filter((j) => isFinished(j.status)).length;
    summary.textContent = `${pts.length} point(s) plotted; ${done} of ${(exp.jobs || []).length} job(s) finished.${exp.baseline_acc === null || exp.baseline_acc === undefined ? " No baseline job finished yet, so no reference line." : ""}`;
  }

  const accSelect = h(
    "select",
    {
      id: "plot-accuracy",
      onchange: (e) => {
        accuracy = e.target.value;
        drawPlot();
      },
    },
    Object.entries(ACCURACY).map(([k, v]) => h("option", { value: k, selected: k === accuracy }, v.label)),
  );
  const svgEl = () => plotHolder.querySelector("svg");
  const fileBase = () => `experiment-${exp.id}-${(exp.name || "plot").replace(/[^\w.-]+/g, "_")}`;
  const toolbar = h(
    "div",
    { class: "plot-toolbar" },
    h("div", { class: "filter" }, h("label", { for: "plot-accuracy" }, "Accuracy"), accSelect),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "save-png", onclick: () => savePng(svgEl(), `${fileBase()}.png`) }, "Save PNG"),
      h("button", { type: "button", id: "save-svg", onclick: () => saveSvg(svgEl(), `${fileBase()}.svg`) }, "Save SVG"),
      h("button", { type: "button", id: "save-csv", onclick: () => saveCsv(exp.points || [], CSV_COLUMNS, `${fileBase()}.csv`) }, "Download CSV"),
    ),
  );
  const legendNote = h(
    "p",
    { class: "muted small" },
    "Each marker is one finished job: ",
    Object.entries(METHOD_STYLE).map(([m, st], i) => [i ? ", " : "", h("span", { style: `color: ${st.color}` }, `${methodLabel(m)} ${st.marker}`)]),
    ". The dashed line is the baseline's accuracy. Hover or focus a marker for details; click or press Enter to open the job.",
  );

  let first = true;
  let lastJobs = "";
  const onResize = () => exp && drawPlot();
  window.addEventListener("resize", onResize);
  const stop = poll(async () => {
    try {
      exp = await api.getExperiment(id);
    } catch (err) {
      if (err.status !== 404) throw err;
      mount(root, h("h1", {}, "Experiment not found"), h("p", {}, `There is no experiment ${id}. `, h("a", { href: "#/experiments" }, "Back to experiments")));
      return false;
    }
    if (first) {
      first = false;
      mount(
        root,
        head,
        h("section", {}, h("h2", {}, "Accuracy against channels pruned"), toolbar, figure, summary, legendNote),
        h("section", {}, h("h2", {}, "Jobs"), jobsHolder),
        specHolder,
      );
      mount(
        specHolder,
        h("section", {}, h("details", { class: "config-details" }, h("summary", {}, "Sweep and base config"), h("pre", { class: "mono" }, JSON.stringify({ sweep: exp.sweep, base: exp.base }, null, 2)))),
      );
    }
    const counts = {};
    for (const j of exp.jobs || []) counts[j.status] = (counts[j.status] || 0) + 1;
    mount(
      head,
      h("div", { class: "page-head" }, h("div", {}, h("p", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments")), h("h1", {}, exp.name || `Experiment #${shortId(exp.id)}`), h("p", { class: "lead" }, `Created ${dateTime(exp.created_at)} · `, statusCounts(counts)))),
    );
    drawPlot();
    const jobsSignature = JSON.stringify(exp.jobs);
    if (jobsSignature !== lastJobs) {
      lastJobs = jobsSignature;
      keepFocus(jobsHolder, () => mount(jobsHolder, h("div", { class: "table-wrap" }, jobsTable(exp.jobs || [], { showExperiment: false, id: "experiment-jobs-table" }))));
    }
    return !(exp.jobs || []).every((j) => isFinished(j.status));
  });
  return () => {
    stop();
    window.removeEventListener("resize", onResize);
  };
}


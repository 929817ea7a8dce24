// Experiments list and the experiment page: the frontier plot, parallel coordinates with brushing,
// and organising the experiment (rename, tags, note, archive, cancel, delete, add jobs).

import { api, loadMeta } from "../api.js";
import { fitWidth, METHOD_STYLE } from "../charts.js";
import { h, keepFocus, mount, routeGuard } from "../dom.js";
import { csvColumns, saveCsv, savePng, saveSvg } from "../export.js";
import { ago, DASH, dateTime, methodLabel, num, pct, shortId, si, tagChips } from "../format.js";
import { ACCURACY, exposedPoints as frontierExposed, frontierPlot, frontierPoints, X_AXES, xAxisOrDefault, xValue } from "../frontier.js";
import { liveOrPoll } from "../live.js";
import {
  archiveButton,
  deleteButton,
  deleteExperiment,
  errorText,
  flash,
  noteEditor,
  patchExperiment,
  tagEditor,
  takeFlash,
} from "../organise.js";
import { buildAxes, formatBrushes, inBrushes, parcoordsChart, parcoordsRows, parseBrushes, withApplicableFields } from "../parcoords.js";
import { isFinished } from "../rules.js";
import { compareLink, isSelected, onChange as onSelectionChange, selectedJobs, toggle as toggleSelected } from "../selection.js";
import { jobsTable } from "./jobs.js";

export { ACCURACY };

// ---------------------------------------------------------------- the experiments list

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
  const name = h("a", { href: `#/experiments/${x.id}` }, x.name || `#${shortId(x.id)}`);
  const archived = x.archived_at ? h("span", { class: "badge archived" }, "archived") : null;
  return h(
    "tr",
    { dataset: { experimentId: String(x.id) } },
    h("td", { "data-label": "Experiment" }, name, " ", archived),
    h("td", { "data-label": "Tags" }, tagChips(x.tags, null, { wrapClass: "exp-tags", chipClass: "tag-chip small" }) || DASH),
    h("td", { "data-label": "Jobs" }, String(x.job_count)),
    h("td", { "data-label": "Status" }, statusCounts(x.status_counts)),
    h("td", { "data-label": "Created" }, ago(x.created_at)),
  );
}

function experimentsTable(items) {
  const heads = ["Experiment", "Tags", "Jobs", "Status", "Created"].map((t) => h("th", { scope: "col" }, t));
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

function noExperiments(filtered) {
  if (filtered) return h("div", { class: "empty" }, h("p", {}, "No experiments match this search."));
  return h(
    "div",
    { class: "empty" },
    h("p", {}, "No experiments yet. A sweep runs one config over several values of λ, β or method and plots them together."),
    h("a", { class: "button primary", href: "#/sweep" }, "New sweep"),
  );
}

/** The list's state from its address: search text and whether archived experiments show. */
export function listState(params) {
  return { q: (params.get("q") || "").trim(), archived: params.get("archived") === "all" ? "all" : "false" };
}

/** The list's address for `state` (only what differs from the default). */
export function listHash({ q, archived }) {
  const p = new URLSearchParams();
  if (q) p.set("q", q);
  if (archived === "all") p.set("archived", "all");
  const str = p.toString();
  return `#/experiments${str ? `?${str}` : ""}`;
}

function listControls(state, onChange) {
  const search = h("input", {
    id: "experiments-q",
    type: "search",
    value: state.q,
    placeholder: "name, note or tag",
    oninput: (e) => onChange({ q: e.target.value.trim() }),
  });
  const showArchived = h("input", {
    id: "experiments-archived",
    type: "checkbox",
    checked: state.archived === "all",
    onchange: (e) => onChange({ archived: e.target.checked ? "all" : "false" }),
  });
  return h(
    "div",
    { class: "filters exp-list-controls" },
    h("div", { class: "filter" }, h("label", { for: "experiments-q" }, "Search"), search),
    h("div", { class: "filter check" }, showArchived, h("label", { for: "experiments-archived" }, "Show archived")),
  );
}

export async function renderExperiments(root, params) {
  const state = listState(params || new URLSearchParams());
  const body = h("div", { id: "experiments-body" });
  const message = takeFlash();
  const newSweep = h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/sweep" }, "New sweep"));
  let refresh = () => {};
  const controls = listControls(state, (change) => {
    Object.assign(state, change);
    history.replaceState(null, "", listHash(state));
    refresh();
  });
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Experiments"), newSweep),
    message ? h("p", { class: "flash", role: "status", id: "flash" }, message) : null,
    controls,
    body,
  );
  let asked = 0;
  const load = async () => {
    const mine = ++asked;
    const page = await api.listExperiments({ limit: 200, q: state.q, archived: state.archived });
    if (mine !== asked) return true;
    if (!page.items.length) mount(body, noExperiments(Boolean(state.q)));
    else keepFocus(body, () => mount(body, experimentsTable(page.items)));
    return true;
  };
  refresh = () => load().catch((err) => mount(body, h("p", { class: "error-box", role: "alert" }, errorText(err))));
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 500);
  };
  const stopLive = liveOrPoll({}, { refresh: load, onJob: soon, onDeleted: soon });
  return () => {
    clearTimeout(timer);
    stopLive();
  };
}

// ---------------------------------------------------------------- the experiment page

/** The page's view settings from its address: x axis, accuracy, λ labels and brushes. */
export function pageState(params) {
  return {
    xAxis: xAxisOrDefault(params.get("x")),
    accuracy: params.get("acc") in ACCURACY ? params.get("acc") : "final",
    labels: params.get("labels") !== "0",
    brushes: parseBrushes(params.get("brush")),
  };
}

/** The page's address for `state` (only settings off their default). */
export function pageHash(id, { xAxis, accuracy, labels, brushes }) {
  const p = new URLSearchParams();
  if (xAxis !== "pruned") p.set("x", xAxis);
  if (accuracy !== "final") p.set("acc", accuracy);
  if (!labels) p.set("labels", "0");
  const b = formatBrushes(brushes);
  if (b) p.set("brush", b);
  const str = p.toString().replace(/%3A/g, ":").replace(/%2C/g, ",");
  return `#/experiments/${id}${str ? `?${str}` : ""}`;
}

/** Points of the plot for the address's settings (kept for the unit tests' sake: see frontier.js). */
export function plotPoints(points, accuracy, xAxis = "pruned") {
  return frontierPoints(points, { accuracy, xAxis });
}

/** The plotted points as `data-points` exposes them to scripts and tests. */
export function exposedPoints(pts) {
  return frontierExposed(pts);
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

const optional = (v, fmt = String) => (v === null || v === undefined ? DASH : fmt(v));

/** The tooltip's rows: every swept field, so jobs that differ only in width or seed are told apart. */
export function tooltipRows(p, xAxis = "pruned") {
  const epochs = p.finetune_epochs ? `${p.epochs} + ${p.finetune_epochs} fine-tune` : optional(p.epochs);
  return [
    ["Method", methodLabel(p.method)],
    ["λ", optional(p.lam, num)],
    ["β", optional(p.beta, num)],
    ["Width", optional(p.width, num)],
    ["Prune ratio", optional(p.prune_ratio, num)],
    ["Penalty", optional(p.penalty)],
    ["Seed", optional(p.seed)],
    ["Epochs", epochs],
    [X_AXES[xAxis].short.replace(/^./, (c) => c.toUpperCase()), pct(xValue(p, xAxis))],
    ["Accuracy", pct(p.y, 2)],
    ["Params", si(p.params_slim)],
    ["FLOPs", si(p.flops_slim)],
  ];
}

function tooltipContent(p, xAxis) {
  const same = p.overlaps?.length ? h("p", { class: "overlap" }, `Same spot as job ${p.overlaps.map(shortId).join(", ")}`) : null;
  const warnings = (p.warnings || []).map((w) => h("p", { class: `tooltip-warning warning-${w.code}` }, `⚠ ${w.message}`));
  const front = p.active === false ? "outside the brushed ranges" : p.frontier ? "on its method's frontier" : "dominated";
  return [
    h("strong", {}, `Job ${shortId(p.job_id)}`),
    h("span", { class: "muted small" }, ` · ${front}`),
    same,
    warnings,
    h(
      "dl",
      {},
      tooltipRows(p, xAxis).map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))),
    ),
    h("small", {}, `Click or Enter: open. Shift+click or S: ${isSelected(p.job_id) ? "unselect" : "select for comparison"}.`),
  ];
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

/** The plot's onPoint: open the job, select it, or show and hide the tooltip. */
function pointHandler(tooltip, figure, state) {
  return (kind, p, el) => {
    if (kind === "open") {
      location.hash = `#/jobs/${p.job_id}`;
      return;
    }
    if (kind === "leave") {
      tooltip.hidden = true;
      return;
    }
    if (kind === "select") toggleSelected(p.job_id);
    mount(tooltip, tooltipContent(p, state.xAxis));
    tooltip.hidden = false;
    placeTooltip(tooltip, el, figure);
  };
}

/** Selected markers get a ring, so the selection shows on the plot. */
function markSelected(holder) {
  const ids = new Set(selectedJobs().map(String));
  for (const g of holder.querySelectorAll(".point")) {
    const on = ids.has(g.dataset.jobId);
    g.classList.toggle("selected", on);
    g.setAttribute("aria-pressed", String(on));
  }
}

/** The frontier figure; `draw()` redraws it when its data, settings or width changed. */
function headlinePlot(root, state) {
  const tooltip = h("div", { class: "tooltip", role: "tooltip", id: "plot-tooltip", hidden: true });
  const plotHolder = h("div", { class: "plot-holder" });
  const figure = h("figure", { class: "chart-card headline", id: "headline-plot", dataset: { points: "[]" } }, plotHolder, tooltip);
  const summary = h("p", { class: "muted", id: "plot-summary", "aria-live": "polite" });
  const onPoint = pointHandler(tooltip, figure, state);
  let signature = "";
  function draw(meta) {
    const exp = state.exp;
    const width = fitWidth(Math.min(root.clientWidth, 900), 320, 760);
    const next = JSON.stringify([exp.points, exp.baseline_acc, exp.name, state.accuracy, state.xAxis, state.labels, state.brushes, width]);
    if (next === signature) return; // unchanged: keep the markers (and a hover) in place
    signature = next;
    tooltip.hidden = true;
    const height = Math.round(Math.max(320, Math.min(460, width * 0.62)));
    const axes = buildAxes(exp.points || []);
    const svg = frontierPlot({
      points: exp.points || [],
      xAxis: state.xAxis,
      accuracy: state.accuracy,
      isActive: (p) => inBrushes(p, state.brushes, axes),
      title: exp.name || `Experiment ${exp.id}`,
      baseline: exp.baseline_acc ?? null,
      labels: state.labels,
      inactiveNote: "outside brush",
      onPoint,
      width,
      height,
    });
    svg.id = "headline-svg";
    const focusedJob = document.activeElement?.closest?.("#headline-plot [data-job-id]")?.dataset.jobId;
    mount(plotHolder, svg);
    markSelected(plotHolder);
    if (focusedJob) plotHolder.querySelector(`[data-job-id="${CSS.escape(focusedJob)}"]`)?.focus({ preventScroll: true });
    const pts = JSON.parse(svg.getAttribute("data-points"));
    figure.dataset.points = JSON.stringify(pts);
    figure.dataset.xAxis = state.xAxis;
    figure.dataset.baseline = exp.baseline_acc === null || exp.baseline_acc === undefined ? "" : String(exp.baseline_acc);
    const out = pts.filter((p) => !p.active).length;
    const brushNote = out ? ` ${out} outside the brushed ranges: grey, left out of the frontiers.` : "";
    summary.textContent = plotSummary(pts.length, exp.jobs || [], exp.baseline_acc, meta) + brushNote;
  }
  return { figure, summary, svg: () => plotHolder.querySelector("svg"), draw, markSelected: () => markSelected(plotHolder) };
}

function accuracySelect(state, onChange) {
  return h(
    "select",
    { id: "plot-accuracy", onchange: (e) => onChange({ accuracy: e.target.value }) },
    Object.entries(ACCURACY).map(([k, v]) => h("option", { value: k, selected: k === state.accuracy }, v.label)),
  );
}

/** The x-axis switch: a radio group (arrow keys move between the choices, as radios do). */
function xAxisSwitch(state, onChange) {
  return h(
    "fieldset",
    { class: "x-switch", id: "plot-x" },
    h("legend", {}, "x axis"),
    Object.entries(X_AXES).map(([key, spec]) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name: "plot-x",
          id: `plot-x-${key}`,
          value: key,
          checked: key === state.xAxis,
          onchange: (e) => e.target.checked && onChange({ xAxis: key }),
        }),
        ` ${spec.short}`,
      ),
    ),
  );
}

function labelsToggle(state, onChange) {
  return h(
    "div",
    { class: "filter check" },
    h("input", { type: "checkbox", id: "plot-labels", checked: state.labels, onchange: (e) => onChange({ labels: e.target.checked }) }),
    h("label", { for: "plot-labels" }, "λ labels"),
  );
}

const fileBase = (exp, what) => `experiment-${exp.id}-${(exp.name || what).replace(/[^\w.-]+/g, "_")}${what === "plot" ? "" : `-${what}`}`;

/** PNG / SVG / CSV buttons; `current()` gives {exp, svg, rows, columns} at click time. */
function exportButtons(prefix, what, current) {
  const ids = prefix
    ? { png: `${prefix}-save-png`, svg: `${prefix}-save-svg`, csv: `${prefix}-save-csv` }
    : { png: "save-png", svg: "save-svg", csv: "save-csv" };
  const save = (id, label, action) => h("button", { type: "button", id, onclick: () => action(current()) }, label);
  return h(
    "div",
    { class: "actions" },
    save(ids.png, "Save PNG", ({ exp, svg }) => savePng(svg, `${fileBase(exp, what)}.png`)),
    save(ids.svg, "Save SVG", ({ exp, svg }) => saveSvg(svg, `${fileBase(exp, what)}.svg`)),
    save(ids.csv, "Download CSV", ({ exp, rows, columns }) => saveCsv(rows, columns, `${fileBase(exp, what)}.csv`)),
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
    ". Each method's line joins its frontier: the jobs no other job of that method beats on both accuracy and the x axis; dominated markers are faded. " +
      "A hollow red marker ran at chance accuracy; a marker with ↓ lies below the axis and is drawn at its bottom edge. " +
      "The dashed line is the baseline's accuracy. Hover or focus a marker for details; click or press Enter to open the job, shift+click or press S to select it for comparison.",
  );
}

// ---------------------------------------------------------------- organise

/**
 * The title, with an inline rename: "Rename" turns it into a box; Enter saves, Escape cancels.
 * `current()` is the experiment as last polled; `onSaved(name)` after the server took the name.
 */
function titleEditor(current, onSaved) {
  const holder = h("div", { class: "exp-title" });
  const status = h("span", { class: "organise-status", id: "rename-status", role: "status", "aria-live": "polite" });
  function show(focus = false) {
    const exp = current();
    const button = h("button", { type: "button", id: "rename", class: "link-button", onclick: edit }, "Rename");
    mount(holder, h("h1", { id: "experiment-name" }, exp.name || `Experiment #${shortId(exp.id)}`), button, status);
    if (focus) button.focus();
  }
  function edit() {
    const exp = current();
    const input = h("input", { id: "rename-input", type: "text", value: exp.name || "", "aria-label": "Experiment name", maxlength: 200 });
    const save = async () => {
      status.textContent = "Saving…";
      status.classList.remove("field-error");
      try {
        const saved = await patchExperiment(exp.id, { name: input.value.trim() });
        onSaved(saved?.name ?? input.value.trim());
        show(true);
        status.textContent = "Renamed";
      } catch (err) {
        status.textContent = errorText(err);
        status.classList.add("field-error");
      }
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        save();
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        show(true);
      }
    });
    mount(
      holder,
      h(
        "form",
        {
          class: "rename-form",
          onsubmit: (ev) => {
            ev.preventDefault();
            save();
          },
        },
        input,
        h("button", { type: "submit", id: "rename-save" }, "Save"),
        h("button", { type: "button", id: "rename-cancel", onclick: () => show(true) }, "Cancel"),
      ),
      status,
    );
    input.focus();
    input.select();
  }
  show();
  holder.isEditing = () => Boolean(holder.querySelector("#rename-input"));
  return holder;
}

/** "Cancel all" (queued and running): POST /api/experiments/{id}/cancel. */
function cancelAllButton(exp, onDone) {
  const status = h("span", { class: "organise-status", id: "cancel-all-status", role: "status", "aria-live": "polite" });
  const live = (exp.jobs || []).filter((j) => j.status === "queued" || j.status === "running").length;
  const button = h(
    "button",
    {
      type: "button",
      id: "cancel-all",
      disabled: live === 0,
      title: live ? `Cancel the ${live} queued and running job(s)` : "No job is queued or running",
      onclick: async () => {
        button.disabled = true;
        try {
          const out = await api.cancelExperiment(exp.id);
          status.textContent = `Cancelled ${out?.cancelled?.length ?? 0} job(s)`;
          onDone();
        } catch (err) {
          status.textContent = errorText(err);
          button.disabled = false;
        }
      },
    },
    `Cancel all${live ? ` (${live})` : ""}`,
  );
  return h("span", { class: "organise-action" }, button, status);
}

function organiseSection(exp, onChanged) {
  const id = exp.id;
  const tags = tagEditor({
    tags: exp.tags || [],
    id: "exp-tags",
    onSave: (next) => patchExperiment(id, { tags: next }).then((x) => x.tags),
  });
  const note = noteEditor({ note: exp.note || "", id: "exp-note", onSave: (text) => patchExperiment(id, { note: text }) });
  const actions = h(
    "div",
    { class: "exp-actions" },
    h("a", { class: "button", id: "add-jobs", href: `#/sweep?experiment=${encodeURIComponent(id)}` }, "Add jobs"),
    cancelAllButton(exp, onChanged),
    archiveButton({
      archived: Boolean(exp.archived_at),
      id: "exp-archive",
      onToggle: (archived) => patchExperiment(id, { archived }).then(onChanged),
    }),
    deleteButton({
      what: `experiment “${exp.name || id}”, its ${(exp.jobs || []).length} job(s) and their model files`,
      id: "exp-delete",
      onDelete: async () => {
        await deleteExperiment(id);
        flash(`Experiment “${exp.name || id}” deleted.`);
        location.hash = "#/experiments";
      },
    }),
  );
  const summary =
    exp.tags?.length || exp.note ? `Tags and note (${(exp.tags || []).length} tag(s)${exp.note ? ", a note" : ""})` : "Tags and note";
  const fields = h(
    "details",
    { id: "exp-organise-details", open: Boolean(exp.tags?.length || exp.note) },
    h("summary", {}, summary),
    h("div", { class: "organise-fields" }, tags, note),
  );
  return {
    node: h("section", { class: "organise", id: "experiment-organise", "aria-label": "Organise" }, actions, fields),
    tags,
    note,
  };
}

// ---------------------------------------------------------------- parallel coordinates

function parcoordsSection(root, state, onBrush) {
  const holder = h("div", { class: "plot-holder pc-holder" });
  const figure = h("figure", { class: "chart-card parcoords", id: "parcoords" }, holder);
  const clear = h("button", { type: "button", id: "clear-brushes", onclick: () => onBrush(null, null) }, "Clear brushes");
  const current = () => {
    const axes = buildAxes(state.exp.points || []);
    const rows = parcoordsRows(state.exp.points || [], axes, state.brushes);
    return { exp: state.exp, svg: holder.querySelector("svg"), rows, columns: csvColumns(rows, ["job_id", "method"]) };
  };
  const toolbar = h("div", { class: "plot-toolbar" }, h("div", { class: "filter" }, clear), exportButtons("pc", "parcoords", current));
  let signature = "";
  function draw() {
    const exp = state.exp;
    const points = exp.points || [];
    const width = Math.max(fitWidth(Math.min(root.clientWidth, 1100), 360, 1080), 150 + 90 * buildAxes(points).length);
    const next = JSON.stringify([points, state.brushes, width, exp.name]);
    if (next === signature) return;
    signature = next;
    const axes = buildAxes(points);
    const focused = document.activeElement?.closest?.("#parcoords [data-axis]")?.dataset.axis;
    const svg = parcoordsChart({
      points,
      axes,
      brushes: state.brushes,
      onBrush,
      title: `${exp.name || `Experiment ${exp.id}`}: parameters and results`,
      width,
      height: 360,
    });
    svg.id = "parcoords-svg";
    mount(holder, svg);
    figure.dataset.axes = JSON.stringify(
      axes.map((a) => ({ key: a.key, label: a.label, kind: a.kind, domain: a.domain, brush: state.brushes[a.key] || null })),
    );
    clear.disabled = !Object.keys(state.brushes).length;
    if (focused) holder.querySelector(`[data-axis="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
  }
  const node = h(
    "section",
    { id: "parcoords-section" },
    h("h2", {}, "Parameters and results"),
    h(
      "p",
      { class: "muted small" },
      "One line per finished job, one axis per swept field that varies and per result. Drag along an axis to keep the jobs in that range (a click clears it); " +
        "or focus an axis (Tab), then ↑/↓ move a range, Shift+↑/↓ resize it, Escape clears it, ←/→ go to the next axis. " +
        "Jobs outside the ranges turn grey here and on the plot above, and are left out of its frontiers. The ranges are kept in the address.",
    ),
    toolbar,
    figure,
  );
  return { node, draw };
}

// ---------------------------------------------------------------- page

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
function experimentPage(root, meta, state, reload) {
  const plot = headlinePlot(root, state);
  let pc = null;
  const setState = (change) => {
    Object.assign(state, change);
    history.replaceState(null, "", pageHash(state.exp.id, state));
    plot.draw(meta);
    pc.draw();
  };
  const onBrush = (key, range) => {
    const brushes = key === null ? {} : { ...state.brushes };
    if (key !== null) {
      if (range) brushes[key] = range;
      else delete brushes[key];
    }
    setState({ brushes });
  };
  pc = parcoordsSection(root, state, onBrush);
  const plotCurrent = () => {
    const rows = frontierPoints(state.exp.points || [], { xAxis: state.xAxis, accuracy: state.accuracy }).map(
      ({ overlaps, warnings, ...p }) => ({
        ...p,
        warnings: (warnings || []).map((w) => w.code).join(" "),
      }),
    );
    return { exp: state.exp, svg: plot.svg(), rows, columns: csvColumns(rows, ["job_id", "method", "lam", "beta"]) };
  };
  const compare = compareLink("compare-selected");
  const toolbar = h(
    "div",
    { class: "plot-toolbar" },
    h("div", { class: "filter" }, h("label", { for: "plot-accuracy" }, "Accuracy"), accuracySelect(state, setState)),
    xAxisSwitch(state, setState),
    labelsToggle(state, setState),
    exportButtons("", "plot", plotCurrent),
  );
  const head = h("div", { class: "page-head" });
  const title = titleEditor(
    () => state.exp,
    (name) => {
      state.exp.name = name;
      plot.draw(meta);
      pc.draw();
    },
  );
  const lead = h("p", { class: "lead" });
  const organiseHolder = h("div");
  const searchHolder = h("div");
  const jobsHolder = h("div", { id: "experiment-jobs" });
  let organise = null;
  let organiseSignature = "";
  let mounted = false;
  let lastJobs = "";
  const stopSelection = onSelectionChange((ids) => {
    compare.update(ids);
    plot.markSelected();
    for (const box of jobsHolder.querySelectorAll("input.select-job"))
      box.checked = ids.includes(Number(box.dataset.selectJob ?? box.dataset.jobId));
  });
  function drawOrganise(exp) {
    const sig = JSON.stringify([exp.tags, exp.note, exp.archived_at, (exp.jobs || []).map((j) => j.status)]);
    if (sig === organiseSignature) return;
    if (organise && (organise.tags.isDirty() || organise.note.isDirty() || organiseHolder.contains(document.activeElement))) return;
    organiseSignature = sig;
    organise = organiseSection(exp, reload);
    mount(organiseHolder, organise.node);
  }
  function update(exp) {
    if (!mounted) {
      mounted = true;
      mount(head, h("div", {}, h("p", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments")), title, lead));
      const plotSection = h(
        "section",
        { id: "frontier-section" },
        h("h2", {}, "Accuracy against compression, with each method's frontier"),
        toolbar,
        plot.figure,
        h("div", { class: "plot-foot" }, plot.summary, compare.link),
        legendNote(),
      );
      mount(
        root,
        head,
        organiseHolder,
        searchHolder,
        plotSection,
        pc.node,
        h("section", {}, h("h2", {}, "Jobs"), jobsHolder),
        h("div", {}, specSection(exp)),
      );
    }
    if (!title.isEditing()) {
      const h1 = title.querySelector("h1");
      if (h1) h1.textContent = exp.name || `Experiment #${shortId(exp.id)}`;
    }
    mount(
      lead,
      `Created ${dateTime(exp.created_at)} · `,
      statusCounts(tallyStatuses(exp.jobs || [])),
      exp.archived_at ? h("span", { class: "badge archived" }, "archived") : null,
    );
    drawOrganise(exp);
    mount(searchHolder, searchSection(exp));
    plot.draw(meta);
    pc.draw();
    const jobsSignature = JSON.stringify(exp.jobs);
    if (jobsSignature === lastJobs) return;
    lastJobs = jobsSignature;
    const table = jobsTable(exp.jobs || [], { showExperiment: false, id: "experiment-jobs-table" });
    keepFocus(jobsHolder, () => mount(jobsHolder, h("div", { class: "table-wrap" }, table)));
  }
  const redraw = () => {
    plot.draw(meta);
    pc.draw();
  };
  return { update, redraw, stop: stopSelection };
}

export async function renderExperiment(root, params, id) {
  const onPage = routeGuard(root);
  mount(root, h("p", { class: "muted" }, "Loading experiment…"));
  const meta = await loadMeta();
  const state = { exp: null, ...pageState(params) };
  let page = null;
  let stopPoll = () => {};
  let stopped = false; // set by the cleanup: nothing is drawn or subscribed afterwards
  const left = () => stopped || !onPage();
  let asked = 0; // the latest fetch: an older answer arriving after it is dropped
  let shown = 0;
  const tick = async () => {
    if (left()) return false;
    const mine = ++asked;
    let exp;
    try {
      exp = await api.getExperiment(id);
    } catch (err) {
      if (left()) return false;
      // a 4xx is final (404: no such experiment; 422: an id that is not one); the rest may pass
      if (!(err.status >= 400 && err.status < 500)) throw err;
      if (err.status === 401) return false; // api.js has opened the sign-in page
      if (err.status === 404) experimentNotFound(root, id);
      else
        mount(
          root,
          h("h1", {}, "Experiment"),
          h("p", { class: "error-box", role: "alert" }, `Could not load experiment ${id}: ${errorText(err)}`),
        );
      return false;
    }
    if (left()) return false;
    if (mine < shown) return true; // a newer answer is already on the page
    shown = mine;
    // fields a method does not take (the baseline's λ of 0) are "n/a", not a value on an axis
    state.exp = { ...exp, points: withApplicableFields(exp.points || [], meta.method_fields) };
    if (!page) page = experimentPage(root, meta, state, () => restart());
    page.update(state.exp);
    if (state.exp.search_state?.status === "running") return true; // its next round comes
    return !(state.exp.jobs || []).every((j) => isFinished(meta, j.status));
  };
  // Live: job changes of this experiment arrive through GET /api/events and refetch it (debounced);
  // polling only when the stream cannot be opened; nothing while the tab is hidden.
  const restart = () => {
    stopPoll();
    if (left()) return;
    let timer = null;
    const soon = () => {
      clearTimeout(timer);
      timer = setTimeout(() => tick().catch((err) => console.warn("refresh failed:", err.message)), 250);
    };
    const stopLive = liveOrPoll({ experimentId: Number(id) }, { refresh: tick, onJob: soon, onDeleted: soon });
    stopPoll = () => {
      clearTimeout(timer);
      stopLive();
    };
  };
  // The first load is awaited, so an error other than a 4xx reaches main.js's error box ("Try again").
  await tick();
  if (left()) {
    page?.stop(); // left meanwhile: let go of the selection listener a late page took
    return () => {};
  }
  if (state.exp) restart(); // the stream also brings jobs added later, so it runs once all finished
  const onResize = () => state.exp && page?.redraw();
  window.addEventListener("resize", onResize);
  return () => {
    stopped = true;
    stopPoll();
    page?.stop();
    window.removeEventListener("resize", onResize);
  };
}

// Jobs list: status, method, λ, live progress with ETA, slim accuracy and pruned share.

import { api, loadMeta } from "../api.js";
import { h, keepFocus, mount } from "../dom.js";
import { waitingText } from "../fleet.js";
import { ago, DASH, methodLabel, modelLabel, num, pct, progressBar, shortId, statusBadge } from "../format.js";
import { poll } from "../poll.js";

const PAGE = 50;

/** The slimmed model's accuracy: fine-tuned when it was, else straight after pruning. */
export function finalAcc(result) {
  if (!result) return null;
  return result.acc_finetuned ?? result.acc_slim;
}

/** One table row per job; shared with the experiment page. */
export function jobRow(job, { showExperiment = true } = {}) {
  const r = job.result;
  const cfg = job.config || {};
  const cells = [
    ["Job", h("a", { href: `#/jobs/${job.id}`, class: "mono" }, shortId(job.id))],
    ["Status", [statusBadge(job.status), waitingText(job) ? h("div", { class: "waiting small muted" }, waitingText(job)) : null]],
    ["Method", methodLabel(cfg.method)],
    ["λ", num(cfg.lam)],
    ["Model", `${modelLabel(cfg, { withWidth: false })} · ${cfg.dataset ?? ""}`],
    ["Progress", progressBar(job)],
    ["Slim acc.", r ? pct(finalAcc(r)) : DASH],
    ["Pruned", r ? pct(r.pruned_fraction) : DASH],
    ["Created", ago(job.created_at)],
  ];
  if (showExperiment) {
    cells.splice(1, 0, [
      "Experiment",
      job.experiment_id ? h("a", { href: `#/experiments/${job.experiment_id}` }, `#${shortId(job.experiment_id)}`) : DASH,
    ]);
  }
  return h(
    "tr",
    { dataset: { jobId: String(job.id), status: job.status } },
    cells.map(([label, content]) => h("td", { "data-label": label }, content)),
  );
}

export function jobsTable(jobs, opts = {}) {
  const heads = ["Job", "Status", "Method", "λ", "Model", "Progress", "Slim acc.", "Pruned", "Created"];
  if (opts.showExperiment !== false) heads.splice(1, 0, "Experiment");
  return h(
    "table",
    { class: "data-table jobs-table", id: opts.id || null },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        heads.map((t) => h("th", { scope: "col", class: t === "λ" ? "keep-case" : null }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      jobs.map((j) => jobRow(j, opts)),
    ),
  );
}

function filterSelect(id, label, options, value, onChange) {
  const sel = h(
    "select",
    { id, onchange: onChange },
    h("option", { value: "" }, "all"),
    options.map(([v, text]) => h("option", { value: v, selected: String(v) === value }, text)),
  );
  return h("div", { class: "filter" }, h("label", { for: id }, label), sel);
}

const FILTERS = ["status", "method", "experiment_id"];

/** The list's state from the address: {status, method, experiment_id, offset}. */
export function jobsState(params) {
  const state = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  return { ...state, offset: Number(params.get("offset") || 0) };
}

/** The address of a list state: only the filters set, and the offset when past the first page. */
export function jobsHash(state) {
  const q = new URLSearchParams(Object.entries(state).filter(([k, v]) => v && !(k === "offset" && v === 0))).toString();
  return q ? `#/?${q}` : "#/";
}

/** GET /api/jobs's query for a list state: one page from its offset. */
export function jobsQuery(state) {
  return { status: state.status, method: state.method, experiment_id: state.experiment_id, limit: PAGE, offset: state.offset };
}

function filterBar(meta, experiments, state, setParam) {
  const select = (key, id, label, options) => filterSelect(id, label, options, state[key], (e) => setParam(key, e.target.value));
  return h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter jobs", onsubmit: (e) => e.preventDefault() },
    select(
      "status",
      "filter-status",
      "Status",
      (meta.statuses || []).map((st) => [st, st]),
    ),
    select(
      "method",
      "filter-method",
      "Method",
      (meta.methods || []).map((m) => [m, methodLabel(m)]),
    ),
    select(
      "experiment_id",
      "filter-experiment",
      "Experiment",
      experiments.items.map((x) => [String(x.id), x.name]),
    ),
  );
}

function jobsHead(countEl) {
  return h(
    "div",
    { class: "page-head" },
    h("h1", {}, "Jobs ", countEl),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button primary", href: "#/new" }, "New job"),
      h("a", { class: "button", href: "#/sweep" }, "New sweep"),
    ),
  );
}

/** No jobs on this page: a way out of the filters, or a first job to submit. */
function emptyJobs(anyFilter, clearFilters) {
  return h(
    "div",
    { class: "empty" },
    anyFilter
      ? [
          h("p", {}, "No jobs match these filters."),
          h("button", { type: "button", id: "clear-filters", onclick: clearFilters }, "Clear filters"),
        ]
      : [
          h("p", {}, "No jobs yet. Submit one to train, slim and measure a network."),
          h("a", { class: "button primary", href: "#/new" }, "New job"),
          " ",
          h("a", { class: "button", href: "#/sweep" }, "New sweep"),
        ],
  );
}

/** Newer/older buttons, only when the jobs fill more than one page. */
function pager(total, offset, setParam) {
  if (total <= PAGE) return null;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h(
      "button",
      { type: "button", id: "page-newer", disabled: offset === 0, onclick: () => setParam("offset", Math.max(0, offset - PAGE)) },
      "← Newer",
    ),
    h("span", {}, `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`),
    h(
      "button",
      { type: "button", id: "page-older", disabled: offset + PAGE >= total, onclick: () => setParam("offset", offset + PAGE) },
      "Older →",
    ),
  );
}

/** One poll of the list: redraws the body (and the count) only when the page changed. */
function jobsTicker({ state, body, countEl, clearFilters, setParam }) {
  let lastSignature = "";
  return async () => {
    const query = jobsQuery(state);
    const page = await api.listJobs(query);
    const signature = JSON.stringify([query, page]);
    if (signature === lastSignature) return true;
    lastSignature = signature;
    countEl.textContent = `(${page.total})`;
    const anyFilter = FILTERS.some((k) => state[k]);
    const content = page.items.length
      ? [h("div", { class: "table-wrap" }, jobsTable(page.items, { id: "jobs-table" })), pager(page.total, state.offset, setParam)]
      : [emptyJobs(anyFilter, clearFilters)];
    keepFocus(body, () => mount(body, ...content));
    return true;
  };
}

export async function renderJobs(root, params) {
  const state = jobsState(params);
  let stopPolling = () => {};
  const refreshNow = () => {
    stopPolling();
    stopPolling = poll(tick);
  };
  // Filters change the address without a hashchange, so the page (and keyboard focus) stays put.
  const setParam = (key, value) => {
    state[key] = key === "offset" ? Number(value) : value;
    if (key !== "offset") state.offset = 0;
    history.replaceState(null, "", jobsHash(state));
    refreshNow();
  };
  // The filters can do without these, except when signed out (401: the sign-in page opens instead).
  const orElse = (fallback) => (err) => {
    if (err.status === 401) throw err;
    return fallback;
  };
  const [meta, experiments] = await Promise.all([
    loadMeta().catch(orElse({ methods: [] })),
    api.listExperiments({ limit: 200 }).catch(orElse({ items: [] })),
  ]);
  const filters = filterBar(meta, experiments, state, setParam);
  const body = h("div", { id: "jobs-body" });
  const countEl = h("span", { class: "muted", id: "jobs-count" });
  mount(root, jobsHead(countEl), filters, body);
  const clearFilters = () => {
    for (const sel of filters.querySelectorAll("select")) sel.value = "";
    for (const k of FILTERS) state[k] = "";
    setParam("offset", 0);
  };
  const tick = jobsTicker({ state, body, countEl, clearFilters, setParam });
  refreshNow();
  return () => stopPolling();
}

// Jobs list: status, method, λ, live progress with ETA, slim accuracy and pruned share.

import { api, loadMeta } from "../api.js";
import { h, keepFocus, mount } from "../dom.js";
import { ago, DASH, methodLabel, num, pct, progressBar, shortId, statusBadge } from "../format.js";
import { poll } from "../poll.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
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
    ["Status", statusBadge(job.status)],
    ["Method", methodLabel(cfg.method)],
    ["λ", num(cfg.lam)],
    ["Model", `${cfg.arch ?? ""}${cfg.depth ?? ""} · ${cfg.dataset ?? ""}`],
    ["Progress", progressBar(job)],
    ["Slim acc.", r ? pct(finalAcc(r)) : DASH],
    ["Pruned", r ? pct(r.pruned_fraction) : DASH],
    ["Created", ago(job.created_at)],
  ];
  if (showExperiment) {
    cells.splice(1, 0, ["Experiment", job.experiment_id ? h("a", { href: `#/experiments/${job.experiment_id}` }, `#${shortId(job.experiment_id)}`) : DASH]);
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
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col", class: t === "λ" ? "keep-case" : null }, t)))),
    h("tbody", {}, jobs.map((j) => jobRow(j, opts))),
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

export async function renderJobs(root, params) {
  const state = {
    status: params.get("status") || "",
    method: params.get("method") || "",
    experiment_id: params.get("experiment_id") || "",
    offset: Number(params.get("offset") || 0),
  };
  let stopPolling = () => {};
  let refreshNow = () => {};
  // Filters change the address without a hashchange, so the page (and keyboard focus) stays put.
  const setParam = (key, value) => {
    state[key] = key === "offset" ? Number(value) : value;
    if (key !== "offset") state.offset = 0;
    const q = new URLSearchParams(Object.entries(state).filter(([k, v]) => v && !(k === "offset" && v === 0))).toString();
    history.replaceState(null, "", q ? `#/?${q}` : "#/");
    refreshNow();
  };

  const [meta, experiments] = await Promise.all([loadMeta().catch(() => ({ methods: [] })), api.listExperiments({ limit: 200 }).catch(() => ({ items: [] }))]);
  const filterBar = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter jobs", onsubmit: (e) => e.preventDefault() },
    filterSelect("filter-status", "Status", STATUSES.map((st) => [st, st]), state.status, (e) => setParam("status", e.target.value)),
    filterSelect("filter-method", "Method", (meta.methods || []).map((m) => [m, methodLabel(m)]), state.method, (e) => setParam("method", e.target.value)),
    filterSelect(
      "filter-experiment",
      "Experiment",
      experiments.items.map((x) => [String(x.id), x.name]),
      state.experiment_id,
      (e) => setParam("experiment_id", e.target.value),
    ),
  );
  const body = h("div", { id: "jobs-body" });
  const countEl = h("span", { class: "muted", id: "jobs-count" });
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Jobs ", countEl), h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/new" }, "New job"), h("a", { class: "button", href: "#/sweep" }, "New sweep"))),
    filterBar,
    body,
  );

  const clearFilters = () => {
    for (const sel of filterBar.querySelectorAll("select")) sel.value = "";
    state.status = state.method = state.experiment_id = "";
    setParam("offset", 0);
  };

  let lastSignature = "";
  const tick = async () => {
    const query = { status: state.status, method: state.method, experiment_id: state.experiment_id, limit: PAGE, offset: state.offset };
    const page = await api.listJobs(query);
    const signature = JSON.stringify([query, page]);
    if (signature === lastSignature) return true;
    lastSignature = signature;
    countEl.textContent = `(${page.total})`;
    const anyFilter = Boolean(state.status || state.method || state.experiment_id);
    if (!page.items.length) {
      keepFocus(body, () =>
        mount(
          body,
          h(
            "div",
            { class: "empty" },
            anyFilter
              ? [h("p", {}, "No jobs match these filters."), h("button", { type: "button", id: "clear-filters", onclick: clearFilters }, "Clear filters")]
              : [h("p", {}, "No jobs yet. Submit one to train, slim and measure a network."), h("a", { class: "button primary", href: "#/new" }, "New job"), " ", h("a", { class: "button", href: "#/sweep" }, "New sweep")],
          ),
        ),
      );
      return true;
    }
    const offset = state.offset;
    const pager = page.total > PAGE
      ? h(
          "nav",
          { class: "pager", "aria-label": "Pages" },
          h("button", { type: "button", id: "page-newer", disabled: offset === 0, onclick: () => setParam("offset", Math.max(0, offset - PAGE)) }, "← Newer"),
          h("span", {}, `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${page.total}`),
          h("button", { type: "button", id: "page-older", disabled: offset + PAGE >= page.total, onclick: () => setParam("offset", offset + PAGE) }, "Older →"),
        )
      : null;
    keepFocus(body, () => mount(body, h("div", { class: "table-wrap" }, jobsTable(page.items, { id: "jobs-table" })), pager));
    return true;
  };
  refreshNow = () => {
    stopPolling();
    stopPolling = poll(tick);
  };
  refreshNow();
  return () => stopPolling();
}

// Jobs list: a filter expression (validated by the server), sorting on any column, paging, tags and
// notes search, archived jobs on request, live progress, and a checkbox per job to compare them.

import { ApiError, api, loadMeta } from "../api.js";
import { h, keepFocus, mount, routeGuard } from "../dom.js";
import { waitingText } from "../fleet.js";
import { ago, DASH, epochsLabel, methodLabel, modelLabel, num, pct, progressBar, shortId, statusCell, tagChips } from "../format.js";
import { finalAcc } from "../frontier.js";
import { liveOrPoll } from "../live.js";
import { errorText, takeFlash } from "../organise.js";
import { compareLink, isSelected, onChange, toggle } from "../selection.js";

const PAGE = 50;
export const DEFAULT_SORT = "-id";

export { finalAcc }; // frontier.js's: the tests and other views import it from here too

const val = (v) => (v === null || v === undefined ? DASH : num(v));

/**
 * The table's columns: header label (also each cell's data-label), the API's sort key (a field of the
 * filter language; null: not sortable) and the cell. One label, one number: "Acc. slim" is acc_slim
 * (straight after pruning) and "Acc. fine-tuned" acc_finetuned, never one standing in for the other.
 */
export const COLUMNS = [
  {
    label: "Job",
    sort: "id",
    // one element per cell: on phones each cell is a two-column grid (label, content)
    cell: (job, opts) =>
      h(
        "div",
        { class: "cell-stack" },
        h("a", { href: `#/jobs/${job.id}`, class: "mono" }, shortId(job.id)),
        tagChips(job.tags, opts.onTag, { idPrefix: `tag-${job.id}` }),
        job.archived_at ? h("span", { class: "badge badge-archived" }, "archived") : null,
      ),
  },
  {
    label: "Experiment",
    sort: "experiment_id",
    experiment: true,
    cell: (job) => (job.experiment_id ? h("a", { href: `#/experiments/${job.experiment_id}` }, `#${shortId(job.experiment_id)}`) : DASH),
  },
  {
    label: "Status",
    sort: "status",
    cell: (job) =>
      h(
        "div",
        { class: "cell-stack" },
        statusCell(job),
        waitingText(job) ? h("div", { class: "waiting small muted" }, waitingText(job)) : null,
      ),
  },
  { label: "Method", sort: "method", cell: (job) => methodLabel(job.config?.method) },
  { label: "λ", sort: "lam", keepCase: true, cell: (job) => val(job.config?.lam) },
  { label: "β", sort: "beta", keepCase: true, cell: (job) => val(job.config?.beta) },
  { label: "Model", sort: "arch", cell: (job) => `${modelLabel(job.config || {}, { withWidth: false })} · ${job.config?.dataset ?? ""}` },
  { label: "Width", sort: "width", cell: (job) => val(job.config?.width) },
  { label: "Prune ratio", sort: "prune_ratio", cell: (job) => val(job.config?.prune_ratio) },
  { label: "Seed", sort: "seed", cell: (job) => val(job.config?.seed) },
  { label: "Epochs", sort: "epochs", title: "training epochs + fine-tuning epochs", cell: (job) => epochsLabel(job.config) },
  { label: "Progress", sort: null, cell: (job) => progressBar(job) },
  {
    label: "Acc. slim",
    sort: "acc_slim",
    title: "test accuracy of the slim network straight after pruning",
    cell: (job) => (job.result ? pct(job.result.acc_slim) : DASH),
  },
  {
    label: "Acc. fine-tuned",
    sort: "acc_finetuned",
    title: "test accuracy of the slim network after fine-tuning (— without fine-tuning)",
    cell: (job) => (job.result ? pct(job.result.acc_finetuned) : DASH),
  },
  {
    label: "Pruned",
    sort: "pruned_fraction",
    title: "share of channels pruned",
    cell: (job) => (job.result ? pct(job.result.pruned_fraction) : DASH),
  },
  { label: "Created", sort: "created_at", cell: (job) => ago(job.created_at) },
];

/** The columns a table shows: all, or all but Experiment on an experiment's own page. */
function columnsFor(opts) {
  return COLUMNS.filter((c) => !c.experiment || opts.showExperiment !== false);
}

/** The checkbox that adds a job to (or drops it from) the comparison selection. */
function selectBox(job) {
  return h("input", {
    type: "checkbox",
    class: "select-job",
    id: `select-job-${job.id}`,
    checked: isSelected(job.id),
    "aria-label": `Select job ${job.id} for comparison`,
    dataset: { jobId: String(job.id) },
    onchange: () => toggle(job.id),
  });
}

/** One table row per job; shared with the experiment page. */
export function jobRow(job, opts = {}) {
  const { showExperiment = true, selectable = true } = opts;
  const cells = columnsFor({ showExperiment }).map((c) => h("td", { "data-label": c.label }, c.cell(job, opts)));
  if (selectable) cells.unshift(h("td", { "data-label": "Compare", class: "select-cell" }, selectBox(job)));
  return h("tr", { dataset: { jobId: String(job.id), status: job.status } }, cells);
}

/** {key, desc} of a sort parameter ("-lam": lam, descending). */
export function parseSort(sort) {
  const s = sort || DEFAULT_SORT;
  return s.startsWith("-") ? { key: s.slice(1), desc: true } : { key: s, desc: false };
}

/** The sort after clicking `key`'s header: ascending first, then it flips. */
export function nextSort(current, key) {
  const { key: k, desc } = parseSort(current);
  if (k !== key) return key;
  return desc ? key : `-${key}`;
}

/** A header cell: a sort button when `onSort` is given (click or Enter), with aria-sort on the sorted one. */
function headCell(col, { sort, onSort }) {
  const attrs = { scope: "col", class: col.keepCase ? "keep-case" : null, title: col.title || null };
  if (!onSort || !col.sort) return h("th", attrs, col.label);
  const { key, desc } = parseSort(sort);
  const active = key === col.sort;
  return h(
    "th",
    { ...attrs, "aria-sort": active ? (desc ? "descending" : "ascending") : null, dataset: { sort: col.sort } },
    h(
      "button",
      {
        type: "button",
        class: "sort-button",
        id: `sort-${col.sort}`,
        "aria-label": `Sort by ${col.label}${active ? (desc ? ", sorted descending" : ", sorted ascending") : ""}`,
        onclick: () => onSort(nextSort(sort, col.sort)),
      },
      col.label,
      h("span", { class: active ? "sort-arrow" : "sort-arrow idle", "aria-hidden": "true" }, active ? (desc ? " ▼" : " ▲") : " ↕"),
    ),
  );
}

/** The jobs table; `opts.sort`/`opts.onSort` make the headers sort buttons, `opts.onTag` the tags filters. */
export function jobsTable(jobs, opts = {}) {
  const cols = columnsFor(opts);
  const heads = cols.map((c) => headCell(c, opts));
  if (opts.selectable !== false)
    heads.unshift(h("th", { scope: "col", class: "select-cell" }, h("span", { class: "visually-hidden" }, "Compare")));
  return h(
    "table",
    { class: "data-table jobs-table", id: opts.id || null },
    h("thead", {}, h("tr", {}, heads)),
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

const SELECTS = ["status", "method", "experiment_id"];
const TEXTS = ["where", "q", "tag"];
const FILTERS = [...SELECTS, ...TEXTS, "archived"];

/** The list's state from the address: the filters, the sort, and the offset. */
export function jobsState(params) {
  const state = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  return { ...state, sort: params.get("sort") || "", offset: toOffset(params.get("offset")) };
}

/** An offset from the address or a button: a non-negative integer (`?offset=abc` is 0, not NaN). */
export function toOffset(value) {
  const n = Math.floor(Number(value));
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** The address of a list state: only what is set, and the offset when past the first page. */
export function jobsHash(state) {
  const q = new URLSearchParams(Object.entries(state).filter(([k, v]) => v && !(k === "offset" && v === 0))).toString();
  return q ? `#/?${q}` : "#/";
}

/** GET /api/jobs's query for a list state: one page from its offset (empty values are left out). */
export function jobsQuery(state) {
  const q = Object.fromEntries([...FILTERS, "sort"].map((k) => [k, state[k] || ""]));
  return { ...q, limit: PAGE, offset: state.offset || 0 };
}

/** The 422 entry about `where` or `sort` in an API error, or null. */
export function filterProblem(err) {
  if (!(err instanceof ApiError) || err.status !== 422 || !Array.isArray(err.detail)) return null;
  return err.detail.find((d) => Array.isArray(d.loc) && (d.loc.includes("where") || d.loc.includes("sort"))) || null;
}

/**
 * `expr` cut around the part a 422 points at (`ctx.position`, `ctx.length`): {before, part, after}.
 * A position at the end (an expression cut short) gives an empty part.
 */
export function markWhere(expr, ctx) {
  const text = String(expr || "");
  const pos = Math.max(0, Math.min(text.length, Number(ctx?.position ?? text.length)));
  const len = Math.max(0, Math.min(text.length - pos, Number(ctx?.length ?? 0)));
  return { before: text.slice(0, pos), part: text.slice(pos, pos + len), after: text.slice(pos + len) };
}

/** The filter expression box with its example, its fields (from GET /api/meta) and its error line. */
function whereBox(meta, state) {
  const fields = meta.filter?.fields || [];
  return h(
    "div",
    { class: "filter filter-where" },
    h("label", { for: "filter-where" }, "Filter expression"),
    h("input", {
      id: "filter-where",
      name: "where",
      type: "text",
      value: state.where,
      spellcheck: "false",
      autocomplete: "off",
      placeholder: "method = proxns and lam >= 0.1 and acc_slim > 0.95",
      "aria-describedby": "filter-where-error filter-where-help",
    }),
    h("p", { class: "where-mark mono", id: "filter-where-mark", hidden: true, "aria-hidden": "true" }),
    h("p", { class: "field-error", id: "filter-where-error", role: "alert" }),
    h(
      "p",
      { class: "hint", id: "filter-where-help" },
      "Press Enter to apply. Compare with = != < <= > >=, combine with and, or, not, parentheses; ",
      h("code", {}, "lam in (0.1, 0.5)"),
      ", ",
      h("code", {}, "tag = 'best'"),
      ", ",
      h("code", {}, "acc_finetuned is null"),
      ". Accuracies are fractions (0.95).",
    ),
    fields.length
      ? h(
          "details",
          { class: "where-fields", id: "filter-fields" },
          h("summary", {}, `Fields (${fields.length})`),
          h("p", { class: "small mono" }, fields.map((f) => f.name).join(", ")),
        )
      : null,
  );
}

function textFilter(id, key, label, state, placeholder) {
  return h(
    "div",
    { class: "filter" },
    h("label", { for: id }, label),
    h("input", { id, name: key, type: "text", value: state[key], placeholder, autocomplete: "off" }),
  );
}

/** Sorting where the table has no headers (phones): every sortable column, either way. */
function sortSelect(state, setParams) {
  const current = state.sort || DEFAULT_SORT;
  const options = COLUMNS.filter((c) => c.sort).flatMap((c) => [
    [c.sort, `${c.label} ↑`],
    [`-${c.sort}`, `${c.label} ↓`],
  ]);
  return h(
    "div",
    { class: "filter sort-select" },
    h("label", { for: "sort-select" }, "Sort by"),
    h(
      "select",
      { id: "sort-select", name: "sort", onchange: (e) => setParams({ sort: e.target.value === DEFAULT_SORT ? "" : e.target.value }) },
      options.map(([v, text]) => h("option", { value: v, selected: v === current }, text)),
    ),
  );
}

function filterBar(meta, experiments, state, setParams) {
  const select = (key, id, label, options) => filterSelect(id, label, options, state[key], (e) => setParams({ [key]: e.target.value }));
  const form = h(
    "form",
    {
      class: "filters jobs-filters",
      role: "search",
      "aria-label": "Filter jobs",
      onsubmit: (e) => {
        e.preventDefault();
        const el = e.currentTarget.elements;
        setParams({ where: el.where.value.trim(), q: el.q.value.trim(), tag: el.tag.value.trim() });
      },
    },
    whereBox(meta, state),
    h(
      "div",
      { class: "filters-row" },
      textFilter("filter-q", "q", "Search notes and tags", state, "text"),
      textFilter("filter-tag", "tag", "Tag", state, "exact tag"),
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
      h(
        "div",
        { class: "check filter-archived" },
        h("input", {
          type: "checkbox",
          id: "filter-archived",
          checked: state.archived === "all" || state.archived === "true",
          onchange: (e) => setParams({ archived: e.target.checked ? "all" : "" }),
        }),
        h("label", { for: "filter-archived" }, "Show archived"),
      ),
      sortSelect(state, setParams),
      h("button", { type: "submit", id: "filter-apply" }, "Apply"),
    ),
  );
  return form;
}

/** Show (or clear, with null) the server's complaint about the expression beside the box. */
function showFilterProblem(form, state, problem) {
  const input = form.querySelector("#filter-where");
  const error = form.querySelector("#filter-where-error");
  const mark = form.querySelector("#filter-where-mark");
  if (!problem) {
    input.removeAttribute("aria-invalid");
    error.textContent = "";
    mark.hidden = true;
    return;
  }
  const onSort = problem.loc.includes("sort");
  error.textContent = onSort ? `sort: ${problem.msg}` : problem.msg;
  if (onSort) return;
  input.setAttribute("aria-invalid", "true");
  const { before, part, after } = markWhere(state.where, problem.ctx);
  mount(mark, before, h("mark", { class: part ? null : "at-end", title: "here" }, part || " "), after);
  mark.hidden = false;
  if (document.activeElement === input) input.setSelectionRange(before.length, before.length + part.length);
}

function jobsHead(countEl, compare) {
  return h(
    "div",
    { class: "page-head" },
    h("h1", {}, "Jobs ", countEl),
    h(
      "div",
      { class: "actions" },
      compare.link,
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
function pager(total, offset, setParams) {
  if (total <= PAGE) return null;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h(
      "button",
      { type: "button", id: "page-newer", disabled: offset === 0, onclick: () => setParams({ offset: Math.max(0, offset - PAGE) }) },
      "← Previous",
    ),
    h("span", {}, `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`),
    h(
      "button",
      { type: "button", id: "page-older", disabled: offset + PAGE >= total, onclick: () => setParams({ offset: offset + PAGE }) },
      "Next →",
    ),
  );
}

/**
 * One refresh of the list: redraws the body (and the count) only when the page changed. A tick's
 * answer is dropped when a newer tick began meanwhile (a filter changed while a poll was on its way),
 * so an older query never overwrites the newer one's page, nor its filter problem.
 */
function jobsTicker({ state, body, form, countEl, clearFilters, setParams }) {
  let lastSignature = "";
  let asked = 0;
  return async () => {
    if (state.problem) return true; // a bad expression stays bad until it is edited
    const mine = ++asked;
    const query = jobsQuery(state);
    let page;
    try {
      page = await api.listJobs(query);
    } catch (err) {
      if (mine !== asked) return true;
      const problem = filterProblem(err);
      if (!problem) {
        // another refusal of the address (e.g. ?archived=x: a 422 about another parameter) is final
        // until the address changes: say so in the body instead of leaving it blank
        if (!(err instanceof ApiError) || err.status < 400 || err.status >= 500 || err.status === 401) throw err;
        lastSignature = "";
        countEl.textContent = "";
        mount(body, h("p", { class: "error-box", role: "alert", id: "jobs-error" }, `Could not list the jobs: ${errorText(err)}`));
        return true;
      }
      state.problem = problem;
      lastSignature = "";
      showFilterProblem(form, state, problem);
      countEl.textContent = "";
      mount(body, h("p", { class: "muted", id: "jobs-invalid" }, "Fix the filter to list jobs."));
      return true;
    }
    if (mine !== asked) return true;
    showFilterProblem(form, state, null);
    const signature = JSON.stringify([query, page]);
    if (signature === lastSignature) return true;
    lastSignature = signature;
    countEl.textContent = `(${page.total})`;
    const anyFilter = FILTERS.some((k) => state[k] && k !== "archived");
    const table = jobsTable(page.items, {
      id: "jobs-table",
      sort: state.sort || DEFAULT_SORT,
      onSort: (sort) => setParams({ sort: sort === DEFAULT_SORT ? "" : sort }),
      onTag: (tag) => setParams({ tag }),
    });
    const content = page.items.length
      ? [h("div", { class: "table-wrap" }, table), pager(page.total, state.offset, setParams)]
      : [emptyJobs(anyFilter, clearFilters)];
    keepFocus(body, () => mount(body, ...content));
    return true;
  };
}

/** `fn` at most once per `ms`, trailing: a burst of job events is one refresh. */
function debounce(fn, ms) {
  let timer = null;
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}

export async function renderJobs(root, params) {
  const onPage = routeGuard(root);
  const state = jobsState(params);
  // The filters can do without these, except when signed out (401: the sign-in page opens instead).
  const orElse = (fallback) => (err) => {
    if (err.status === 401) throw err;
    return fallback;
  };
  const [meta, experiments] = await Promise.all([
    loadMeta().catch(orElse({ methods: [] })),
    api.listExperiments({ limit: 200 }).catch(orElse({ items: [] })),
  ]);
  if (!onPage()) return () => {}; // left while these loaded
  let tick = async () => true;
  const refresh = debounce(() => tick().catch((err) => console.warn("refresh failed:", err.message)), 250);
  // Filters change the address without a hashchange, so the page (and keyboard focus) stays put.
  const setParams = (changes) => {
    for (const [key, value] of Object.entries(changes)) state[key] = key === "offset" ? toOffset(value) : value;
    if (!("offset" in changes)) state.offset = 0;
    if ("where" in changes || "sort" in changes) state.problem = null;
    history.replaceState(null, "", jobsHash(Object.fromEntries(Object.entries(state).filter(([k]) => k !== "problem"))));
    syncForm(changes);
    refresh.cancel();
    tick().catch((err) => console.warn("refresh failed:", err.message));
  };
  const form = filterBar(meta, experiments, state, setParams);
  // Only the boxes `changes` names are rewritten: text typed in another one but not applied yet stays.
  const syncForm = (changes) => {
    for (const k of TEXTS) if (k in changes) form.elements[k].value = state[k];
    if ("sort" in changes) form.elements.sort.value = state.sort || DEFAULT_SORT;
  };
  const body = h("div", { id: "jobs-body" });
  const countEl = h("span", { class: "muted", id: "jobs-count" });
  const compare = compareLink();
  const message = takeFlash();
  mount(root, jobsHead(countEl, compare), message ? h("p", { class: "notice", id: "flash", role: "status" }, message) : null, form, body);
  const clearFilters = () => {
    for (const sel of form.querySelectorAll("select")) sel.value = "";
    setParams(Object.fromEntries(FILTERS.filter((k) => k !== "archived").map((k) => [k, ""])));
  };
  tick = jobsTicker({ state, body, form, countEl, clearFilters, setParams });
  const stopSelection = onChange((ids) => {
    compare.update(ids);
    for (const box of body.querySelectorAll("input.select-job")) box.checked = ids.includes(Number(box.dataset.jobId));
  });
  // Job events (any of the user's jobs changed, or went) redraw the page, a burst of them once.
  const stopLive = liveOrPoll({}, { refresh: () => tick(), onJob: refresh, onDeleted: refresh });
  return () => {
    stopLive();
    refresh.cancel();
    stopSelection();
  };
}

// The sweep form's pure parts: reading value lists, building the `sweep` body (with per-method
// lists, `by_method`), wording the server's dry-run answer, and the debounced dry run itself.
// No DOM: the job count is the server's (POST …?dry_run=true), never computed here.

/** A list typed in one box: "0.01, 0.05; 1e-3" -> [0.01, 0.05, 0.001]; non-numbers stay text. */
export function parseList(raw) {
  return String(raw)
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((t) => (Number.isNaN(Number(t)) ? t : Number(t)));
}

/** Only the lists with values: an empty list means "not swept". */
function nonEmpty(lists) {
  return Object.fromEntries(Object.entries(lists || {}).filter(([, values]) => Array.isArray(values) && values.length));
}

/**
 * The `sweep` of POST /api/experiments (CONTRACT: `sweep.by_method`). `methods` are the checked
 * methods (sent as the method list), `shared` the lists every job takes (e.g. seed), `byMethod`
 * {method: {field: values}} each method's own lists. A method's list for a field it does not take
 * (meta.method_fields, `methodFields`) and the lists of unchecked methods are left out, as are
 * empty lists; so is an empty `by_method`.
 */
export function buildSweep({ methods = [], shared = {}, byMethod = {} }, methodFields = null) {
  const sweep = {};
  if (methods.length) sweep.method = [...methods];
  Object.assign(sweep, nonEmpty(shared));
  const perMethod = {};
  for (const method of methods) {
    const takes = methodFields?.[method];
    const lists = nonEmpty(byMethod[method]);
    const kept = Object.fromEntries(Object.entries(lists).filter(([field]) => !takes || takes.includes(field)));
    if (Object.keys(kept).length) perMethod[method] = kept;
  }
  if (Object.keys(perMethod).length) sweep.by_method = perMethod;
  return sweep;
}

/**
 * {base, sweep} to send: for several checked methods, buildSweep's method list and `by_method`;
 * for one, a plain sweep: the method in the base and its lists as the sweep's own (stored as
 * `{lam: [...]}`, as before per-method lists existed, and no "(in the sweep combination …)" in the
 * server's messages about the base).
 */
export function sweepBody({ base = {}, methods = [], shared = {}, byMethod = {} }, methodFields = null) {
  const sweep = buildSweep({ methods, shared, byMethod }, methodFields);
  if (methods.length !== 1) return { base: { ...base }, sweep };
  const { method: _one, by_method: own = {}, ...lists } = sweep;
  return { base: { ...base, method: methods[0] }, sweep: { ...lists, ...own[methods[0]] } };
}

/** The fields some checked method sweeps (its own list) or every job sweeps (a shared list). */
export function sweptFields(sweep) {
  const swept = new Set(Object.keys(sweep || {}).filter((k) => k !== "by_method"));
  for (const lists of Object.values(sweep?.by_method ?? {})) for (const field of Object.keys(lists)) swept.add(field);
  return swept;
}

/** Jobs per method in a dry run's `jobs` (resolved configs), in `order` (meta.methods) first. */
export function methodCounts(jobs, order = []) {
  const counts = new Map(order.map((m) => [m, 0]));
  for (const job of jobs || []) counts.set(job.method, (counts.get(job.method) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 0);
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/**
 * A dry run's answer ({jobs, count, skipped_duplicates}) in words:
 * "5 jobs (ns: 2, proxns: 3)", then "; 1 duplicate skipped" when the server dropped some.
 */
export function countSummary(answer, order = []) {
  const count = answer?.count ?? answer?.jobs?.length ?? 0;
  const parts = methodCounts(answer?.jobs, order).map(([m, n]) => `${m}: ${n}`);
  let text = plural(count, "job", "jobs");
  if (parts.length) text += ` (${parts.join(", ")})`;
  const skipped = answer?.skipped_duplicates ?? 0;
  if (skipped) text += `; ${plural(skipped, "duplicate", "duplicates")} skipped`;
  return text;
}

/** The submit button's words for a known count: "Submit 1 job", "Submit 5 jobs". */
export function submitLabel(count) {
  return `Submit ${plural(count, "job", "jobs")}`;
}

/**
 * A debounced dry run: `schedule(body)` waits `delay` ms of quiet, then calls `send(body, signal)`;
 * a newer schedule or `stop()` aborts the request in flight, so only the latest answer is reported.
 * `onState` gets {state: "pending"} at once, then {state: "ready", answer} |
 * {state: "invalid", detail} (a 422) | {state: "error", message, status}. The same body as the last
 * one asks nothing again (a text box's change event after its input events), unless that one failed.
 */
export function createDryRun({ send, onState, delay = 300, timers = globalThis }) {
  let timer = null;
  let controller = null;
  let latest = 0;
  let lastKey = null;
  let lastState = null;
  const report = (s) => {
    lastState = s.state;
    onState(s);
  };

  function cancel() {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
    if (controller) controller.abort();
    controller = null;
  }

  async function run(body, mine) {
    controller = new AbortController();
    const { signal } = controller;
    try {
      const answer = await send(body, signal);
      if (mine === latest && !signal.aborted) report({ state: "ready", answer });
    } catch (err) {
      if (mine !== latest || signal.aborted || err?.name === "AbortError") return;
      if (err?.status === 422) report({ state: "invalid", detail: err.detail });
      else report({ state: "error", message: err?.message || String(err), status: err?.status ?? 0 });
    }
  }

  return {
    schedule(body) {
      const key = JSON.stringify(body);
      if (key === lastKey && lastState !== "error") return;
      lastKey = key;
      cancel();
      const mine = ++latest;
      report({ state: "pending" });
      timer = timers.setTimeout(() => {
        timer = null;
        run(body, mine);
      }, delay);
    },
    stop() {
      latest++;
      lastKey = null;
      cancel();
    },
  };
}

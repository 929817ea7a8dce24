// The set of jobs picked for comparison, from any list: kept in sessionStorage so it survives a
// reload of the tab and is the tab's own (two tabs can compare different sets), and announced to
// listeners on every change. Importing this touches no DOM (compareLink builds its link when called).

import { h } from "./dom.js";

export const SELECTION_KEY = "proxns-selection";

const listeners = new Set();
/** The ids, while sessionStorage is missing or refuses writes: the selection then lasts the page's life. */
let fallback = null;

/** The tab's sessionStorage, or null where there is none (node, a sandboxed frame). */
function storage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** Job ids as positive integers, first occurrence kept, order kept; anything else dropped. */
export function normaliseIds(ids) {
  const out = [];
  const seen = new Set();
  for (const raw of ids || []) {
    const id = typeof raw === "number" ? raw : Number(String(raw).trim());
    if (!Number.isInteger(id) || id <= 0 || seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

/** "1,2,3" (an address's `jobs` parameter) as ids; junk between commas is skipped. */
export function parseIds(text) {
  return normaliseIds(String(text || "").split(","));
}

/** The selected job ids, in the order they were picked. */
export function selectedJobs() {
  if (fallback) return [...fallback];
  try {
    const raw = storage()?.getItem(SELECTION_KEY);
    return raw ? normaliseIds(JSON.parse(raw)) : [];
  } catch {
    return []; // unreadable or not JSON: an empty selection, not a broken page
  }
}

function notify(ids) {
  for (const cb of [...listeners]) {
    try {
      cb(ids);
    } catch (err) {
      // one broken listener must not keep the others from hearing about the change
      console.warn("selection listener failed", err);
    }
  }
}

/** Store `ids` (normalised) and tell the listeners, when it changes anything. */
function write(ids) {
  const next = normaliseIds(ids);
  const before = selectedJobs();
  if (next.length === before.length && next.every((id, i) => id === before[i])) return next;
  try {
    const store = storage();
    if (!store) throw new Error("no sessionStorage");
    if (next.length) store.setItem(SELECTION_KEY, JSON.stringify(next));
    else store.removeItem(SELECTION_KEY);
    fallback = null;
  } catch {
    fallback = next; // storage missing, full or blocked: keep the ids in memory instead
  }
  notify(next);
  return next;
}

export function isSelected(id) {
  return selectedJobs().includes(Number(id));
}

/** Select `id` when it is not selected, else drop it; returns whether it is selected now. */
export function toggle(id) {
  const n = Number(id);
  const ids = selectedJobs();
  if (ids.includes(n)) {
    write(ids.filter((x) => x !== n));
    return false;
  }
  return write([...ids, n]).includes(n);
}

/** Add `ids` (those not yet selected, at the end). */
export function add(ids) {
  return write([...selectedJobs(), ...normaliseIds(ids)]);
}

export function remove(id) {
  const n = Number(id);
  return write(selectedJobs().filter((x) => x !== n));
}

/** Make `ids` the selection, as it is (opening a compare address does this). */
export function replace(ids) {
  return write(ids);
}

export function clear() {
  return write([]);
}

/** Call `cb(ids)` after every change of the selection (here or in another tab); returns unsubscribe. */
export function onChange(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

/** The compare page's address for `ids` (default: the selection), e.g. "#/compare?jobs=1,2,3". */
export function compareHash(ids = selectedJobs(), { all = false } = {}) {
  const list = normaliseIds(ids);
  return `#/compare?jobs=${list.join(",")}${all ? "&all=1" : ""}`;
}

// Browsers fire `storage` for sessionStorage only between documents of the same tab (frames);
// listening costs nothing and keeps those in step. Separate tabs keep separate selections by design.
if (typeof window !== "undefined" && typeof window.addEventListener === "function") {
  window.addEventListener("storage", (ev) => {
    if (ev.key === SELECTION_KEY || ev.key === null) notify(selectedJobs());
  });
}

/**
 * "Compare selected (n)": a link to the compare page for the selection, `aria-disabled` and inert
 * (a click does not navigate) while fewer than two jobs are selected. `update(ids)` redraws it;
 * `id` is the element's id (the jobs list's "compare-link", the experiment page's "compare-selected").
 */
export function compareLink(id = "compare-link") {
  const link = h("a", { class: "button", id });
  const update = (ids = selectedJobs()) => {
    link.textContent = `Compare selected (${ids.length})`;
    link.setAttribute("href", compareHash(ids));
    if (ids.length < 2) {
      link.setAttribute("aria-disabled", "true");
      link.title = "Tick two or more jobs to compare them";
    } else {
      link.removeAttribute("aria-disabled");
      link.title = "";
    }
  };
  link.addEventListener("click", (ev) => {
    if (selectedJobs().length < 2) ev.preventDefault();
  });
  update();
  return { link, update };
}

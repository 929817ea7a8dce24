// Number and time formatting shared by every view.

import { h } from "./dom.js";

export const DASH = "—";

/** Fraction 0..1 as a percentage: 0.9312 -> "93.1 %". */
export function pct(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return `${(value * 100).toFixed(digits)} %`;
}

/** A plain number with up to `digits` significant digits: 0.0045 -> "0.0045", 1e-5 -> "1e-5". */
export function num(value, digits = 4) {
  if (value === null || value === undefined) return DASH;
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-3 || abs >= 1e6)
    return value
      .toExponential(Math.max(0, digits - 2))
      .replace(/\.?0+e/, "e")
      .replace("e+", "e");
  return String(Number(value.toPrecision(digits)));
}

/** Big counts with SI suffixes: 20040000 -> "20.0 M". */
export function si(value) {
  if (value === null || value === undefined) return DASH;
  const abs = Math.abs(value);
  for (const [limit, suffix] of [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ]) {
    if (abs >= limit) return `${(value / limit).toFixed(abs / limit >= 100 ? 0 : abs / limit >= 10 ? 1 : 2)} ${suffix}`;
  }
  return String(value);
}

export function bytes(n) {
  if (n === null || n === undefined) return DASH;
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function ms(value) {
  if (value === null || value === undefined) return DASH;
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(2)} ms`;
}

/** Seconds as "1 h 02 min", "3 min 05 s" or "12 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

export function dateTime(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "3 min ago" style time, with the full date in the title. */
export function ago(iso) {
  if (!iso) return h("span", {}, DASH);
  const d = new Date(iso);
  const secs = (Date.now() - d.getTime()) / 1000;
  let text;
  if (secs < 45) text = "just now";
  else if (secs < 3600) text = `${Math.round(secs / 60)} min ago`;
  else if (secs < 86400) text = `${Math.round(secs / 3600)} h ago`;
  else text = d.toLocaleDateString();
  return h("time", { datetime: iso, title: dateTime(iso) }, text);
}

export function shortId(id) {
  const str = String(id);
  return str.length > 8 ? str.slice(0, 8) : str;
}

export const METHOD_LABELS = { baseline: "Baseline", ns: "NS", proxns: "ProxNS" };

export function methodLabel(method) {
  return METHOD_LABELS[method] || method;
}

/** Status as a coloured badge (text carries the meaning; colour only helps). */
export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

/** Progress bar with percentage and ETA; `data-progress` carries the raw fraction for tests. */
export function progressBar(job) {
  const frac = Math.max(0, Math.min(1, job.progress || 0));
  const label = frac > 0 && frac < 0.1 ? `${(frac * 100).toFixed(1)} %` : `${Math.floor(frac * 100 + 1e-9)} %`;
  const running = job.status === "running";
  const eta = running && job.eta_seconds !== null && job.eta_seconds !== undefined ? `ETA ${duration(job.eta_seconds)}` : "";
  return h(
    "div",
    { class: `progress status-${job.status}`, dataset: { progress: String(frac), status: job.status } },
    h(
      "div",
      {
        class: "progress-track",
        role: "progressbar",
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": String(Math.round(frac * 100)),
        "aria-label": `progress of job ${job.id}`,
      },
      h("div", { class: "progress-fill", style: `width: ${(frac * 100).toFixed(1)}%` }),
    ),
    h("span", { class: "progress-text" }, label, eta ? h("span", { class: "eta" }, ` · ${eta}`) : null),
  );
}

/**
 * A network's name as people read it: "vgg-11 ×0.25" for the paper's networks (built from a depth and
 * a width), "resnet18" for a torchvision one (no depth). `withWidth: false` drops the width.
 */
export function modelLabel(cfg, { withWidth = true } = {}) {
  if (!cfg?.arch) return DASH;
  if (cfg.depth === null || cfg.depth === undefined) return cfg.arch;
  const width = withWidth && cfg.width !== null && cfg.width !== undefined ? ` ×${cfg.width}` : "";
  return `${cfg.arch}-${cfg.depth}${width}`;
}

/** The job's warning of `code` (e.g. "chance_accuracy"), from the API's `warnings`, or null. */
export function jobWarning(job, code) {
  return (job?.warnings || []).find((w) => w.code === code) || null;
}

/**
 * The status badge, and beside a succeeded job whose accuracy is at chance level a warning badge
 * carrying the API's message: such a run learnt nothing and must not read as a plain success.
 */
export function statusCell(job) {
  const chance = jobWarning(job, "chance_accuracy");
  if (!chance) return statusBadge(job.status);
  return h(
    "span",
    { class: "status-cell" },
    statusBadge(job.status),
    " ",
    h(
      "span",
      {
        class: "badge badge-warning",
        title: chance.message,
        "aria-label": `warning: ${chance.message}`,
        dataset: { warning: chance.code },
      },
      "⚠ chance",
    ),
  );
}

/** A job's epochs: "160", or "160 + 20" with fine-tuning epochs after the training ones. */
export function epochsLabel(cfg) {
  if (!cfg || cfg.epochs === null || cfg.epochs === undefined) return DASH;
  return cfg.finetune_epochs ? `${cfg.epochs} + ${cfg.finetune_epochs}` : String(cfg.epochs);
}

/**
 * Tags as chips (null without tags); `onPick(tag)` makes each a button (e.g. filter the list by it).
 * `idPrefix` gives the buttons stable ids (`${idPrefix}-${index}`, e.g. "tag-12-0"), so keepFocus puts
 * focus back on the same chip after a redraw; `wrapClass`/`chipClass` style them for where they sit.
 */
export function tagChips(tags, onPick, { idPrefix = null, wrapClass = "tag-chips", chipClass = "tag-chip" } = {}) {
  if (!tags?.length) return null;
  return h(
    "span",
    { class: wrapClass },
    tags.map((t, i) =>
      onPick
        ? h(
            "button",
            {
              type: "button",
              class: chipClass,
              id: idPrefix ? `${idPrefix}-${i}` : null,
              dataset: { tag: t },
              title: `Show jobs tagged ${t}`,
              onclick: () => onPick(t),
            },
            t,
          )
        : h("span", { class: chipClass, dataset: { tag: t } }, t),
    ),
  );
}

/** A share as a percentage for a chart's value labels: 0.9312 → "93.1 %". */
export const pctFmt = (v) => `${Math.round(v * 1000) / 10} %`;
/** The same on a chart's axis ticks, where the axis title holds the "%": 0.9312 → "93.1". */
export const pctTick = (v) => `${Math.round(v * 1000) / 10}`;

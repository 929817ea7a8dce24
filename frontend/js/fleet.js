// What the workers can run, as GET /api/meta's `fleet` states it: which data sets and devices the
// form offers, the fleet's summary above the form, and where a job ran. Pure functions: no DOM, no fetch.

import { bytes, DASH } from "./format.js";

const DEFAULT_DEVICES = ["auto", "cpu", "cuda", "cuda:0", "cuda:1"];

/** Whether some worker is live (with none, the server accepts every job and it waits). */
export function hasLiveWorkers(fleet) {
  return (fleet?.live_workers ?? 0) > 0;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * The data set choices: [{name, available, reason}] from meta.datasets (what this server's disk
 * holds), overruled by the fleet when a worker is live: then a data set is available exactly when a
 * live worker offers it.
 */
export function datasetChoices(meta) {
  const fleet = meta?.fleet;
  const datasets = meta?.datasets ?? [];
  if (!hasLiveWorkers(fleet)) return datasets.map((d) => ({ name: d.name, available: d.available, reason: d.reason }));
  const offered = new Set(fleet.datasets ?? []);
  return datasets.map((d) => ({
    name: d.name,
    available: offered.has(d.name),
    reason: offered.has(d.name) ? "on a live worker" : "no live worker has it",
  }));
}

/** Device suggestions: auto and cpu, then cuda and cuda:0..N-1 up to the most cards one live worker has. */
export function deviceChoices(fleet) {
  if (!hasLiveWorkers(fleet)) return DEFAULT_DEVICES;
  const cards = fleet.max_cuda_devices ?? 0;
  const out = ["auto", "cpu"];
  if (cards > 0) out.push("cuda", ...Array.from({ length: cards }, (_, i) => `cuda:${i}`));
  return out;
}

/** One kind of device: "NVIDIA H100 80GB HBM3 (cuda, 80.0 GiB, bf16) ×2". */
export function deviceLabel(d) {
  const details = [d.type];
  if (d.type === "cuda" && d.memory_bytes) details.push(bytes(d.memory_bytes));
  if (d.type === "cuda" && d.bf16) details.push("bf16");
  const count = d.count > 1 ? ` ×${d.count}` : "";
  return `${d.name || d.type} (${details.join(", ")})${count}`;
}

/**
 * The fleet in a few lines: {state: "none" | "stale" | "live", title, devices, datasets}, where
 * devices and datasets are lists of words (empty without live workers).
 */
export function fleetSummary(fleet) {
  if (!fleet) return { state: "none", title: "This server does not report its workers.", devices: [], datasets: [] };
  if (!hasLiveWorkers(fleet)) {
    return {
      state: fleet.registered_workers ? "stale" : "none",
      title: `Jobs are accepted but wait: ${fleet.waiting_reason || "no live worker"}.`,
      devices: [],
      datasets: [],
    };
  }
  return {
    state: "live",
    title: `${plural(fleet.live_workers, "live worker")} can take jobs.`,
    devices: (fleet.devices ?? []).map(deviceLabel),
    datasets: fleet.datasets ?? [],
  };
}

/** Where a job ran, from its result (and the job while it runs): "cuda:0 · NVIDIA H100 … · bf16 · channels-last". */
export function ranOn(job) {
  const r = job?.result;
  const device = r?.device || job?.device;
  if (!device) return DASH;
  const parts = [device];
  if (r?.device_name) parts.push(r.device_name);
  if (r?.precision) parts.push(r.precision);
  if (r?.channels_last === true) parts.push("channels-last");
  return parts.join(" · ");
}

/** The reason a queued job waits, or "" (the API's `waiting_reason`, only while queued). */
export function waitingText(job) {
  return job?.status === "queued" && job.waiting_reason ? job.waiting_reason : "";
}

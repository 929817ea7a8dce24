import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { datasetChoices, deviceChoices, deviceLabel, fleetSummary, hasLiveWorkers, ranOn, waitingText } from "../js/fleet.js";

const H100 = { type: "cuda", name: "NVIDIA H100 80GB HBM3", memory_bytes: 80 * 2 ** 30, bf16: true, count: 2, workers: 2 };
const CPU = { type: "cpu", name: "AMD EPYC", memory_bytes: 2 ** 34, bf16: true, count: 2, workers: 2 };
const LIVE = {
  live_workers: 2,
  registered_workers: 3,
  waiting_reason: null,
  devices: [CPU, H100],
  max_cuda_devices: 1,
  datasets: ["digits", "svhn", "synthetic"],
};
const DATASETS = [
  { name: "cifar10", available: true, reason: "found" },
  { name: "svhn", available: false, reason: "missing train_32x32.mat under the data root" },
  { name: "digits", available: true, reason: "bundled" },
];

describe("datasetChoices", () => {
  test("with live workers, a data set is available exactly when one of them offers it", () => {
    assert.deepEqual(
      datasetChoices({ datasets: DATASETS, fleet: LIVE }).map((d) => [d.name, d.available, d.reason]),
      [
        ["cifar10", false, "no live worker has it"],
        ["svhn", true, "on a live worker"],
        ["digits", true, "on a live worker"],
      ],
    );
  });
  test("without a live worker, this server's disk decides (jobs are accepted and wait)", () => {
    const none = { live_workers: 0, registered_workers: 0, waiting_reason: "no worker is registered yet", datasets: [] };
    assert.deepEqual(
      datasetChoices({ datasets: DATASETS, fleet: none }).map((d) => d.available),
      [true, false, true],
    );
    assert.deepEqual(
      datasetChoices({ datasets: DATASETS }).map((d) => d.available),
      [true, false, true],
    );
  });
});

describe("deviceChoices", () => {
  test("cuda and one cuda:N per card of the best-equipped live worker", () => {
    assert.deepEqual(deviceChoices({ ...LIVE, max_cuda_devices: 2 }), ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]);
  });
  test("a CPU-only fleet offers auto and cpu only", () => {
    assert.deepEqual(deviceChoices({ ...LIVE, max_cuda_devices: 0, devices: [CPU] }), ["auto", "cpu"]);
  });
  test("no live worker: the usual suggestions", () => {
    assert.deepEqual(deviceChoices({ live_workers: 0 }), ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]);
    assert.equal(hasLiveWorkers(undefined), false);
  });
});

describe("deviceLabel and fleetSummary", () => {
  test("a card with its memory, bf16 and count; a CPU by its name", () => {
    assert.equal(deviceLabel(H100), "NVIDIA H100 80GB HBM3 (cuda, 80.0 GiB, bf16) ×2");
    assert.equal(deviceLabel({ ...CPU, count: 1 }), "AMD EPYC (cpu)");
  });
  test("live, stale and empty fleets", () => {
    const live = fleetSummary(LIVE);
    assert.equal(live.state, "live");
    assert.equal(live.title, "2 live workers can take jobs.");
    assert.deepEqual(live.devices, ["AMD EPYC (cpu) ×2", "NVIDIA H100 80GB HBM3 (cuda, 80.0 GiB, bf16) ×2"]);
    assert.deepEqual(live.datasets, ["digits", "svhn", "synthetic"]);
    const none = fleetSummary({ live_workers: 0, registered_workers: 0, waiting_reason: "no worker is registered yet" });
    assert.equal(none.state, "none");
    assert.equal(none.title, "Jobs are accepted but wait: no worker is registered yet.");
    assert.equal(fleetSummary({ live_workers: 0, registered_workers: 2, waiting_reason: "x" }).state, "stale");
    assert.equal(fleetSummary(undefined).state, "none");
  });
});

describe("ranOn and waitingText", () => {
  test("the result's device, card name, precision and layout", () => {
    const job = {
      device: "cuda",
      result: { device: "cuda:0", device_name: "NVIDIA H100 80GB HBM3", precision: "bf16", channels_last: true },
    };
    assert.equal(ranOn(job), "cuda:0 · NVIDIA H100 80GB HBM3 · bf16 · channels-last");
    assert.equal(ranOn({ device: "cpu", result: null }), "cpu");
    assert.equal(ranOn({ device: null, result: null }), "—");
  });
  test("a queued job's reason; nothing once it left the queue", () => {
    assert.equal(waitingText({ status: "queued", waiting_reason: "no worker is registered yet" }), "no worker is registered yet");
    assert.equal(waitingText({ status: "running", waiting_reason: "stale" }), "");
    assert.equal(waitingText({ status: "queued", waiting_reason: null }), "");
  });
});

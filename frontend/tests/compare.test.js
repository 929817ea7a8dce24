// The compare page's pure helpers and the selection store (with a fake sessionStorage).
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import { frontierPoints } from "../js/frontier.js";
import * as selection from "../js/selection.js";
import {
  compareAddress,
  comparePlotPoints,
  compareState,
  configKeys,
  configText,
  curveSeries,
  differingFields,
  diffText,
  diffTone,
  jobLabel,
  layerSeries,
  RESULT_FIELDS,
  resultRows,
  resultValue,
} from "../js/views/compare.js";

const BASE = {
  dataset: "digits",
  arch: "vgg",
  depth: 11,
  width: 0.25,
  method: "proxns",
  lam: 0.5,
  beta: 100,
  lr_milestones: null,
  epochs: 3,
};

describe("differingFields", () => {
  test("only the keys whose values differ, in the first config's key order", () => {
    const a = { ...BASE };
    const b = { ...BASE, width: 0.5, lam: 1 };
    const c = { ...BASE, lam: 0.25 };
    // the spec's order (the configs' key order) puts width before lam
    assert.deepEqual(differingFields([a, b, c]), ["width", "lam"]);
  });
  test("lists compare by content: equal lists agree, a changed element or length differs", () => {
    const same = [
      { ...BASE, lr_milestones: [1, 2] },
      { ...BASE, lr_milestones: [1, 2] },
    ];
    assert.deepEqual(differingFields(same), []);
    assert.deepEqual(
      differingFields([
        { ...BASE, lr_milestones: [1, 2] },
        { ...BASE, lr_milestones: [1, 3] },
      ]),
      ["lr_milestones"],
    );
    assert.deepEqual(
      differingFields([
        { ...BASE, lr_milestones: [1, 2] },
        { ...BASE, lr_milestones: [1, 2, 3] },
      ]),
      ["lr_milestones"],
    );
  });
  test("null against a value differs; null against a missing key does not", () => {
    assert.deepEqual(differingFields([BASE, { ...BASE, beta: null }]), ["beta"]);
    assert.deepEqual(
      differingFields([
        { ...BASE, lr_milestones: null },
        { ...BASE, lr_milestones: [2] },
      ]),
      ["lr_milestones"],
    );
    const { lr_milestones: _drop, ...without } = BASE;
    assert.deepEqual(differingFields([BASE, without]), []);
  });
  test("a field only one config has is listed (at the end, after the first config's keys)", () => {
    assert.deepEqual(differingFields([BASE, { ...BASE, penalty: "l0" }]), ["penalty"]);
    assert.deepEqual(configKeys([BASE, { ...BASE, penalty: "l0" }]).at(-1), "penalty");
  });
  test("a difference only in the third config still counts; fewer than two configs: nothing differs", () => {
    assert.deepEqual(differingFields([BASE, BASE, { ...BASE, epochs: 4 }]), ["epochs"]);
    assert.deepEqual(differingFields([BASE]), []);
    assert.deepEqual(differingFields([]), []);
  });
  test("0 and null differ; 1 and 1.0 do not", () => {
    assert.deepEqual(differingFields([{ lam: 0 }, { lam: null }]), ["lam"]);
    assert.deepEqual(differingFields([{ lam: 1 }, { lam: 1.0 }]), []);
  });
});

describe("config values as shown", () => {
  test("lists in brackets, null as a dash, numbers without float noise", () => {
    assert.equal(configText([80, 120]), "[80, 120]");
    assert.equal(configText(null), "—");
    assert.equal(configText(0.1 + 0.2), "0.3");
    assert.equal(configText(true), "true");
    assert.equal(configText("vgg"), "vgg");
  });
});

const R1 = {
  acc_full: 0.98,
  acc_slim: 0.95,
  acc_finetuned: null,
  pruned_fraction: 0.5,
  params_full: 100_000,
  params_slim: 25_000,
  flops_full: 5_000_000,
  flops_slim: 1_250_000,
  latency_slim_ms: 0.5,
};
const R2 = { ...R1, acc_slim: 0.9612, pruned_fraction: 0.75, params_slim: 6_250, flops_slim: 312_500, latency_slim_ms: 0.25 };

describe("the results table's numbers", () => {
  test("derived shares: FLOPs and parameters removed are 1 − slim/full", () => {
    assert.equal(resultValue(R1, "flops_removed"), 0.75);
    assert.equal(resultValue(R1, "params_removed"), 0.75);
    assert.equal(resultValue(R2, "flops_removed"), 0.9375);
    assert.equal(resultValue({ ...R1, flops_full: 0 }, "flops_removed"), null);
    assert.equal(resultValue(null, "acc_slim"), null);
  });
  test("differences to the reference: accuracies and shares in points, counts in their unit", () => {
    const rows = Object.fromEntries(resultRows([R1, R2], 0).map((r) => [r.key, r]));
    assert.deepEqual(
      rows.acc_slim.values.map((v) => v),
      [0.95, 0.9612],
    );
    assert.equal(rows.acc_slim.diffs[0], null); // the reference itself
    assert.ok(Math.abs(rows.acc_slim.diffs[1] - 1.12) < 1e-9);
    assert.ok(Math.abs(rows.pruned_fraction.diffs[1] - 25) < 1e-9);
    assert.equal(rows.params_slim.diffs[1], -18_750);
    assert.equal(rows.latency_slim_ms.diffs[1], -0.25);
    assert.ok(Math.abs(rows.flops_removed.diffs[1] - 18.75) < 1e-9);
    assert.equal(rows.acc_finetuned.diffs[1], null); // unknown on both sides
  });
  test("another reference turns the signs round", () => {
    const rows = Object.fromEntries(resultRows([R1, R2], 1).map((r) => [r.key, r]));
    assert.equal(rows.params_slim.diffs[0], 18_750);
    assert.equal(rows.params_slim.diffs[1], null);
    assert.ok(Math.abs(rows.acc_slim.diffs[0] + 1.12) < 1e-9);
  });
  test("a job with no result yet has no values and no differences", () => {
    const rows = resultRows([R1, null], 0);
    assert.equal(rows.length, RESULT_FIELDS.length);
    for (const r of rows) {
      assert.equal(r.values[1], null);
      assert.equal(r.diffs[1], null);
    }
  });
  test("the rows follow the brief's order", () => {
    assert.deepEqual(
      RESULT_FIELDS.map((f) => f.key),
      [
        "acc_full",
        "acc_slim",
        "acc_finetuned",
        "pruned_fraction",
        "params_slim",
        "flops_slim",
        "latency_slim_ms",
        "flops_removed",
        "params_removed",
      ],
    );
  });
  test("difference texts: points with two decimals, counts with SI and the relative change", () => {
    assert.equal(diffText(1.12, "share", 0.95), "+1.12 pts");
    assert.equal(diffText(-0.5, "share", 0.95), "−0.50 pts");
    assert.equal(diffText(0, "share", 0.95), "±0.00 pts");
    assert.equal(diffText(-18_750, "count", 25_000), "−18.8 k (−75.0 %)");
    assert.equal(diffText(-0.25, "ms", 0.5), "−0.25 ms (−50.0 %)");
    assert.equal(diffText(null, "share", 1), "—");
  });
  test("tone: higher accuracy is better, more parameters worse", () => {
    assert.equal(diffTone(1.1, 1), "better");
    assert.equal(diffTone(-1.1, 1), "worse");
    assert.equal(diffTone(100, -1), "worse");
    assert.equal(diffTone(0, 1), "same");
    assert.equal(diffTone(null, 1), "same");
  });
});

const entry = (id, method, lam, extra = {}) => ({
  job: { id, config: { method, lam }, status: "succeeded", result: extra.result ?? null },
  metrics: extra.metrics ?? [],
  style: { color: `c${id}`, dash: null },
  label: `#${id}`,
});

describe("chart data", () => {
  test("curve series: one per job, by epoch, fine-tune epochs kept as numbered, nulls dropped", () => {
    const metrics = [
      { epoch: 2, phase: "train", test_acc: 0.6 },
      { epoch: 1, phase: "train", test_acc: 0.5 },
      { epoch: 3, phase: "finetune", test_acc: 0.7 },
      { epoch: 4, phase: "finetune", test_acc: null },
    ];
    const series = curveSeries([entry(1, "ns", 0.01, { metrics }), entry(2, "proxns", 0.5)], "test_acc");
    assert.equal(series.length, 2);
    assert.deepEqual(
      series[0].points.map((p) => [p.x, p.y]),
      [
        [1, 0.5],
        [2, 0.6],
        [3, 0.7],
      ],
    );
    assert.deepEqual(series[1].points, []);
    assert.equal(series[0].color, "c1");
  });
  test("layer series: each job's kept and total channels by 1-based layer index", () => {
    const layers = [
      { name: "a", total: 64, kept: 10 },
      { name: "b", total: 128, kept: 7 },
    ];
    const [one, two] = layerSeries([entry(1, "ns", 0.01, { result: { layers } }), entry(2, "ns", 0.01)]);
    assert.deepEqual(one.layers, [
      { index: 1, name: "a", kept: 10, total: 64 },
      { index: 2, name: "b", kept: 7, total: 128 },
    ]);
    assert.deepEqual(two.layers, []);
  });
  test("plot points: the API's plot-point fields from each job with a result, for frontier.js", () => {
    const result = {
      pruned_fraction: 0.5,
      acc_full: 0.98,
      acc_slim: 0.9,
      acc_finetuned: 0.95,
      params_full: 10,
      params_slim: 4,
      flops_full: 100,
      flops_slim: 30,
      layers: [],
    };
    const e1 = entry(1, "proxns", 0.5, { result });
    e1.job.config = { method: "proxns", lam: 0.5, beta: 100, seed: 3, width: 0.25 };
    e1.job.warnings = [{ code: "chance_accuracy", message: "m" }];
    const pts = comparePlotPoints([e1, entry(2, "ns", 0.01)]);
    assert.equal(pts.length, 1); // job 2 has no result yet
    assert.deepEqual(pts[0], {
      job_id: 1,
      experiment_id: null,
      method: "proxns",
      lam: 0.5,
      beta: 100,
      seed: 3,
      width: 0.25,
      prune_ratio: null,
      epochs: null,
      finetune_epochs: null,
      penalty: null,
      pruned_fraction: 0.5,
      acc_full: 0.98,
      acc_slim: 0.9,
      acc_finetuned: 0.95,
      params_full: 10,
      params_slim: 4,
      flops_full: 100,
      flops_slim: 30,
      num_classes: null,
      warnings: [{ code: "chance_accuracy", message: "m" }],
    });
  });
  test("plot points feed frontier.js: the dominated job of a method is off its frontier", () => {
    const res = (pruned, acc) => ({ result: { pruned_fraction: pruned, acc_slim: acc, flops_full: 100, flops_slim: 100 * (1 - pruned) } });
    const pts = frontierPoints(
      comparePlotPoints([entry(1, "proxns", 1, res(0.5, 0.9)), entry(2, "proxns", 1, res(0.6, 0.95)), entry(3, "ns", 1, res(0.4, 0.5))]),
    );
    assert.deepEqual(
      pts.map((p) => [p.job_id, p.frontier]),
      [
        [1, false],
        [2, true],
        [3, true],
      ],
    );
  });
  test("job labels name the id, method and λ", () => {
    assert.equal(jobLabel({ id: 12, config: { method: "proxns", lam: 0.5 } }), "#12 ProxNS λ 0.5");
    assert.equal(jobLabel({ id: 3, config: { method: "baseline", lam: null } }), "#3 Baseline");
  });
});

describe("the compare address", () => {
  test("reads jobs, all and ref; junk ids, repeats and a ref not compared are dropped", () => {
    const st = compareState(new URLSearchParams("jobs=3,x,1,3,-2,1.5,7&all=1&ref=1&x=flops"));
    assert.deepEqual(st, { ids: [3, 1, 7], all: true, ref: 1, x: "flops" });
    assert.deepEqual(compareState(new URLSearchParams("jobs=3,1&ref=9&x=bogus")), { ids: [3, 1], all: false, ref: null, x: "pruned" });
    assert.deepEqual(compareState(new URLSearchParams("")), { ids: [], all: false, ref: null, x: "pruned" });
  });
  test("writes ref only when it is not the first job, all only when on, x only when not the default", () => {
    assert.equal(compareAddress({ ids: [3, 1], x: "params" }), "#/compare?jobs=3,1&x=params");
    assert.equal(compareAddress({ ids: [3, 1], x: "pruned" }), "#/compare?jobs=3,1");
    assert.equal(compareAddress({ ids: [3, 1], all: false, ref: null }), "#/compare?jobs=3,1");
    assert.equal(compareAddress({ ids: [3, 1], all: true, ref: 3 }), "#/compare?jobs=3,1&all=1");
    assert.equal(compareAddress({ ids: [3, 1], all: false, ref: 1 }), "#/compare?jobs=3,1&ref=1");
    assert.equal(compareAddress({ ids: [3, 1], all: false, ref: 5 }), "#/compare?jobs=3,1");
  });
  test("round trip: state → address → state", () => {
    const st = { ids: [5, 2, 9], all: true, ref: 9, x: "flops" };
    const back = compareState(new URLSearchParams(compareAddress(st).split("?")[1]));
    assert.deepEqual(back, st);
  });
});

/** A sessionStorage stand-in: a Map behind the Storage methods the module uses. */
function fakeStorage() {
  const data = new Map();
  return {
    data,
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
}

describe("selection", () => {
  let store;
  beforeEach(() => {
    store = fakeStorage();
    globalThis.sessionStorage = store;
    selection.clear();
  });
  afterEach(() => {
    delete globalThis.sessionStorage;
  });

  test("toggle adds then removes; the order of picking is kept; stored as JSON under proxns-selection", () => {
    assert.equal(selection.toggle(5), true);
    assert.equal(selection.toggle("2"), true);
    assert.deepEqual(selection.selectedJobs(), [5, 2]);
    assert.equal(store.data.get("proxns-selection"), "[5,2]");
    assert.equal(selection.toggle(5), false);
    assert.deepEqual(selection.selectedJobs(), [2]);
    assert.equal(selection.isSelected(2), true);
    assert.equal(selection.isSelected(5), false);
  });
  test("add skips ids already selected and junk; remove and clear", () => {
    selection.add([3, 1]);
    selection.add([1, 4, "x", 0, -1, 2.5, 4]);
    assert.deepEqual(selection.selectedJobs(), [3, 1, 4]);
    selection.remove(1);
    assert.deepEqual(selection.selectedJobs(), [3, 4]);
    selection.clear();
    assert.deepEqual(selection.selectedJobs(), []);
    assert.equal(store.data.has("proxns-selection"), false);
  });
  test("listeners hear each change once, with the new ids, and not a no-op; unsubscribe stops them", () => {
    const heard = [];
    const off = selection.onChange((ids) => heard.push(ids));
    selection.toggle(7);
    selection.add([7]); // nothing new
    selection.add([8]);
    selection.replace([8, 7]);
    off();
    selection.clear();
    assert.deepEqual(heard, [[7], [7, 8], [8, 7]]);
  });
  test("one failing listener does not stop the others", () => {
    const heard = [];
    const warn = console.warn;
    console.warn = () => {};
    const offBad = selection.onChange(() => {
      throw new Error("boom");
    });
    const offGood = selection.onChange((ids) => heard.push(ids));
    try {
      selection.toggle(1);
    } finally {
      console.warn = warn;
      offBad();
      offGood();
    }
    assert.deepEqual(heard, [[1]]);
  });
  test("unreadable storage reads as an empty selection; no storage at all works for the page's life", () => {
    store.data.set("proxns-selection", "{not json");
    assert.deepEqual(selection.selectedJobs(), []);
    store.data.set("proxns-selection", JSON.stringify([2, "3", null, 2]));
    assert.deepEqual(selection.selectedJobs(), [2, 3]);
    delete globalThis.sessionStorage;
    assert.deepEqual(selection.selectedJobs(), []);
    assert.equal(selection.toggle(1), true); // kept in memory instead
    assert.deepEqual(selection.selectedJobs(), [1]);
  });
  test("a storage that refuses writes: the selection is kept in memory and still announced", () => {
    store.setItem = () => {
      throw new Error("QuotaExceededError");
    };
    const heard = [];
    const off = selection.onChange((ids) => heard.push(ids));
    selection.add([6, 2]);
    off();
    assert.deepEqual(selection.selectedJobs(), [6, 2]);
    assert.deepEqual(heard, [[6, 2]]);
  });
  test("compareHash: the selection's address, or the given ids'", () => {
    selection.add([4, 9]);
    assert.equal(selection.compareHash(), "#/compare?jobs=4,9");
    assert.equal(selection.compareHash([1, 2, 2, "x"]), "#/compare?jobs=1,2");
    assert.equal(selection.compareHash([1, 2], { all: true }), "#/compare?jobs=1,2&all=1");
    assert.deepEqual(selection.parseIds("1, 2,,x,3"), [1, 2, 3]);
  });
});

// Pure helpers of the view modules: importing them must not touch the DOM.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cleanMessage, controlValue, fieldGroups, weightsChoices } from "../js/form.js";
import { exposedPoints, plotPoints, plotSummary, tallyStatuses } from "../js/views/experiments.js";
import { finalAcc, jobsHash, jobsQuery, jobsState } from "../js/views/jobs.js";
import { sweepAxisLabel } from "../js/views/submit.js";

const META = { finished_statuses: ["succeeded", "failed", "cancelled"] };
const POINTS = [
  {
    job_id: 1,
    method: "proxns",
    lam: 0.01,
    beta: 100,
    seed: 0,
    pruned_fraction: 0.5,
    acc_full: 0.98,
    acc_slim: 0.9,
    acc_finetuned: 0.95,
    params_slim: 10,
    flops_slim: 20,
  },
  {
    job_id: 2,
    method: "ns",
    lam: 0.001,
    beta: null,
    seed: 0,
    pruned_fraction: 0.5,
    acc_full: 0.97,
    acc_slim: 0.95,
    acc_finetuned: null,
    params_slim: 11,
    flops_slim: 21,
  },
  {
    job_id: 3,
    method: "baseline",
    lam: null,
    beta: null,
    seed: 0,
    pruned_fraction: null,
    acc_full: 0.99,
    acc_slim: null,
    acc_finetuned: null,
    params_slim: 12,
    flops_slim: 22,
  },
];

describe("plotPoints", () => {
  test("final accuracy: fine-tuned where run, else slim; jobs without a result are left out", () => {
    const pts = plotPoints(POINTS, "final");
    assert.deepEqual(
      pts.map((p) => [p.job_id, p.x, p.y]),
      [
        [1, 0.5, 0.95],
        [2, 0.5, 0.95],
      ],
    );
  });
  test("markers on the same spot name each other", () => {
    const pts = plotPoints(POINTS, "final");
    assert.deepEqual(
      pts.map((p) => p.overlaps),
      [[2], [1]],
    );
    assert.deepEqual(
      plotPoints(POINTS, "slim").map((p) => p.overlaps),
      [[], []],
    );
  });
  test("the fine-tuned axis keeps only fine-tuned jobs", () => {
    assert.deepEqual(
      plotPoints(POINTS, "finetuned").map((p) => p.job_id),
      [1],
    );
  });
});

describe("exposedPoints", () => {
  test("the fields data-points documents, in order", () => {
    const [first] = exposedPoints(plotPoints(POINTS, "full"));
    assert.deepEqual(first, {
      job_id: 1,
      method: "proxns",
      lam: 0.01,
      beta: 100,
      seed: 0,
      x: 0.5,
      y: 0.98,
      params_slim: 10,
      flops_slim: 20,
      frontier: true,
      active: true,
      flagged: false,
    });
  });
});

describe("plotSummary and tallyStatuses", () => {
  const jobs = [{ status: "succeeded" }, { status: "running" }, { status: "failed" }, { status: "succeeded" }];
  test("counts the finished jobs meta names", () => {
    assert.equal(plotSummary(2, jobs, 0.97, META), "2 point(s) plotted; 3 of 4 job(s) finished.");
    assert.equal(
      plotSummary(0, [], null, META),
      "0 point(s) plotted; 0 of 0 job(s) finished. No baseline job finished yet, so no reference line.",
    );
  });
  test("jobs per status", () => assert.deepEqual(tallyStatuses(jobs), { succeeded: 2, running: 1, failed: 1 }));
});

describe("form helpers", () => {
  test("fieldGroups: known fields in their fieldsets, the schema's others under Other", () => {
    const props = { lam: {}, dataset: {}, epochs: {}, mystery: {}, arch: {}, precision: {}, device: {}, input_size: {} };
    assert.deepEqual(fieldGroups(props), [
      ["Data", ["dataset", "input_size"]],
      ["Model", ["arch"]],
      ["Sparsity", ["lam"]],
      ["Training", ["epochs"]],
      ["Hardware", ["device", "precision"]],
      ["Other", ["mystery"]],
    ]);
  });
  test("controlValue: an auto/on/off select sends true or false; lists and numbers parse", () => {
    const tristate = (value) => ({ value, type: "select-one", dataset: { kind: "tristate" } });
    assert.equal(controlValue("channels_last", tristate("true")), true);
    assert.equal(controlValue("cuda_graphs", tristate("false")), false);
    assert.deepEqual(controlValue("mean", { value: "0.5, 0.4,0.3", type: "text", dataset: { kind: "list" } }), [0.5, 0.4, 0.3]);
    assert.equal(controlValue("input_size", { value: " 64 ", type: "number", dataset: {} }), 64);
  });
  test("weightsChoices: none first, then the uploads by ref; a copied job's unknown ref kept", () => {
    const upload = { ref: "weights:3", name: "mine", arch: "vgg", depth: 11, width: 0.25, num_classes: 10 };
    assert.deepEqual(weightsChoices([upload]), [
      { value: "", label: "none (random start)" },
      { value: "weights:3", label: "mine: vgg-11 ×0.25, 10 classes (weights:3)" },
    ]);
    assert.deepEqual(weightsChoices(undefined, "weights:9").at(-1), { value: "weights:9", label: "weights:9" });
    assert.equal(weightsChoices([upload], "weights:3").length, 2);
  });
  test("cleanMessage drops pydantic's prefix", () => {
    assert.equal(cleanMessage("Value error, depth must be 11, 13"), "depth must be 11, 13");
    assert.equal(cleanMessage("Input should be greater than 0"), "Input should be greater than 0");
  });
  test("finalAcc: fine-tuned when it was, else slim", () => {
    assert.equal(finalAcc({ acc_slim: 0.9, acc_finetuned: 0.95 }), 0.95);
    assert.equal(finalAcc({ acc_slim: 0.9, acc_finetuned: null }), 0.9);
    assert.equal(finalAcc(null), null);
  });
});

describe("jobs list state", () => {
  const EMPTY = { status: "", method: "", experiment_id: "", where: "", q: "", tag: "", archived: "", sort: "", offset: 0 };
  test("jobsState reads the filters, sort and offset from the address", () => {
    assert.deepEqual(jobsState(new URLSearchParams("status=running&offset=50&other=x")), { ...EMPTY, status: "running", offset: 50 });
    assert.deepEqual(jobsState(new URLSearchParams("")), EMPTY);
  });
  test("jobsHash keeps only the filters set and an offset past the first page", () => {
    assert.equal(jobsHash(EMPTY), "#/");
    assert.equal(jobsHash({ ...EMPTY, status: "failed", method: "ns" }), "#/?status=failed&method=ns");
    assert.equal(jobsHash({ ...EMPTY, experiment_id: "7", offset: 50 }), "#/?experiment_id=7&offset=50");
  });
  test("jobsHash and jobsState round-trip", () => {
    const state = { ...EMPTY, status: "queued", method: "proxns", experiment_id: "3", where: "lam > 0.1", sort: "lam", offset: 100 };
    assert.deepEqual(jobsState(new URLSearchParams(jobsHash(state).slice(3))), state);
  });
  test("jobsQuery asks for one page from the offset", () => {
    assert.deepEqual(jobsQuery({ ...EMPTY, status: "failed", offset: 50 }), {
      status: "failed",
      method: "",
      experiment_id: "",
      where: "",
      q: "",
      tag: "",
      archived: "",
      sort: "",
      limit: 50,
      offset: 50,
    });
  });
});

describe("sweepAxisLabel", () => {
  const meta = { method_fields: { baseline: [], ns: ["lam", "prune_ratio"], proxns: ["lam", "beta"] } };
  test("names the methods a method-specific axis applies to, from meta.method_fields", () => {
    assert.equal(sweepAxisLabel(meta, "beta", "β values"), "β values (proxns)");
    assert.equal(sweepAxisLabel(meta, "prune_ratio", "Prune ratios"), "Prune ratios (ns)");
    assert.equal(sweepAxisLabel(meta, "lam", "λ values"), "λ values (not baseline)");
  });
  test("no note for an axis every job takes", () => assert.equal(sweepAxisLabel(meta, "seed", "Seeds"), "Seeds"));
});

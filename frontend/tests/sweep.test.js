// The sweep and job forms' pure parts (issue 13): per-method lists (`sweep.by_method`), the
// server's dry-run count in words, the debounced dry run, field labels and per-dataset suggestions.
import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";

import { fieldLabel, SUGGESTED_FIELDS, suggestedArch, suggestedValues, useDatasetSuggestions } from "../js/form.js";
import { buildSweep, countSummary, createDryRun, methodCounts, parseList, submitLabel, sweepBody, sweptFields } from "../js/sweep.js";

const METHOD_FIELDS = { baseline: [], ns: ["lam", "prune_ratio", "penalty", "penalty_a"], proxns: ["lam", "beta", "penalty", "penalty_a"] };
const METHODS = ["baseline", "ns", "proxns"];

describe("parseList", () => {
  test("commas, semicolons and spaces separate; numbers become numbers", () => {
    assert.deepEqual(parseList("0.01, 0.05;1e-3  2"), [0.01, 0.05, 0.001, 2]);
  });
  test("non-numbers stay text", () => assert.deepEqual(parseList("ns, proxns, 3"), ["ns", "proxns", 3]));
  test("blank gives an empty list", () => {
    assert.deepEqual(parseList(""), []);
    assert.deepEqual(parseList(" , ; "), []);
  });
});

describe("buildSweep: per-method lists as sweep.by_method", () => {
  test("the issue's example: ns and proxns on their own λ scales, seeds shared", () => {
    const sweep = buildSweep(
      {
        methods: ["ns", "proxns"],
        shared: { seed: [0, 1] },
        byMethod: { ns: { lam: [0.01, 0.02], prune_ratio: [] }, proxns: { lam: [0.25, 0.5, 1], beta: [] } },
      },
      METHOD_FIELDS,
    );
    assert.deepEqual(sweep, {
      method: ["ns", "proxns"],
      seed: [0, 1],
      by_method: { ns: { lam: [0.01, 0.02] }, proxns: { lam: [0.25, 0.5, 1] } },
    });
  });
  test("an unchecked method's lists and a field the method does not take are not sent", () => {
    const sweep = buildSweep(
      { methods: ["proxns"], byMethod: { ns: { lam: [0.02] }, proxns: { lam: [0.5], prune_ratio: [0.7], beta: [10, 100] } } },
      METHOD_FIELDS,
    );
    assert.deepEqual(sweep, { method: ["proxns"], by_method: { proxns: { lam: [0.5], beta: [10, 100] } } });
  });
  test("no lists at all: only the methods; no empty by_method", () => {
    assert.deepEqual(buildSweep({ methods: ["baseline", "ns"], shared: { seed: [] }, byMethod: { ns: { lam: [] } } }, METHOD_FIELDS), {
      method: ["baseline", "ns"],
    });
    assert.deepEqual(buildSweep({}), {});
  });
  test("sweepBody: one method goes in the base with its lists (a plain sweep), several in the sweep's method list", () => {
    const byMethod = { ns: { lam: [0.01, 0.02] }, proxns: { lam: [0.25, 0.5] } };
    assert.deepEqual(sweepBody({ base: { epochs: 1 }, methods: ["proxns"], shared: { seed: [0, 1] }, byMethod }, METHOD_FIELDS), {
      base: { epochs: 1, method: "proxns" },
      sweep: { seed: [0, 1], lam: [0.25, 0.5] },
    });
    assert.deepEqual(sweepBody({ methods: ["baseline"], byMethod }, METHOD_FIELDS), { base: { method: "baseline" }, sweep: {} });
    assert.deepEqual(sweepBody({ base: { epochs: 1 }, methods: ["ns", "proxns"], byMethod }, METHOD_FIELDS), {
      base: { epochs: 1 },
      sweep: { method: ["ns", "proxns"], by_method: byMethod },
    });
  });
  test("sweptFields: shared lists and every method's own lists", () => {
    const swept = sweptFields({ method: ["ns", "proxns"], seed: [0], by_method: { ns: { prune_ratio: [0.5] }, proxns: { lam: [1] } } });
    assert.deepEqual([...swept].sort(), ["lam", "method", "prune_ratio", "seed"]);
    assert.deepEqual([...sweptFields({})], []);
  });
});

describe("the server's count in words", () => {
  const jobs = [{ method: "proxns" }, { method: "ns" }, { method: "proxns" }, { method: "baseline" }, { method: "proxns" }];
  test("per method, in meta's order, methods without jobs left out", () => {
    assert.deepEqual(methodCounts(jobs, METHODS), [
      ["baseline", 1],
      ["ns", 1],
      ["proxns", 3],
    ]);
    assert.deepEqual(methodCounts(jobs.slice(0, 1), METHODS), [["proxns", 1]]);
  });
  test("N jobs (method: n, ...); duplicates the server skipped", () => {
    assert.equal(countSummary({ jobs, count: 5, skipped_duplicates: 0 }, METHODS), "5 jobs (baseline: 1, ns: 1, proxns: 3)");
    assert.equal(
      countSummary({ jobs: jobs.slice(0, 1), count: 1, skipped_duplicates: 1 }, METHODS),
      "1 job (proxns: 1); 1 duplicate skipped",
    );
    assert.equal(countSummary({ jobs: [], count: 0, skipped_duplicates: 4 }, METHODS), "0 jobs; 4 duplicates skipped");
  });
  test("the submit button says how many", () => {
    assert.equal(submitLabel(1), "Submit 1 job");
    assert.equal(submitLabel(14), "Submit 14 jobs");
  });
});

/** A dry run on node's mocked timers; `send` answers when the test resolves it. */
function dryRunHarness() {
  mock.timers.enable({ apis: ["setTimeout"] });
  const calls = [];
  const states = [];
  const send = (body, signal) =>
    new Promise((resolve, reject) => {
      calls.push({ body, signal, resolve, reject });
      signal.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })));
    });
  const dry = createDryRun({ send, onState: (s) => states.push(s), delay: 300 });
  return { calls, states, dry };
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("createDryRun: debounced, latest wins, aborted", () => {
  test("typing within 300 ms sends once, the last body; pending is reported at once", async (t) => {
    const { calls, states, dry } = dryRunHarness();
    t.after(() => mock.timers.reset());
    dry.schedule({ n: 1 });
    mock.timers.tick(200);
    dry.schedule({ n: 2 });
    mock.timers.tick(299);
    assert.equal(calls.length, 0);
    assert.deepEqual(states.at(-1), { state: "pending" });
    mock.timers.tick(1);
    assert.deepEqual(
      calls.map((c) => c.body),
      [{ n: 2 }],
    );
    calls[0].resolve({ count: 3, jobs: [] });
    await settle();
    assert.deepEqual(states.at(-1), { state: "ready", answer: { count: 3, jobs: [] } });
  });
  test("a newer change aborts the request in flight; its late answer is never shown", async (t) => {
    const { calls, states, dry } = dryRunHarness();
    t.after(() => mock.timers.reset());
    dry.schedule({ n: 1 });
    mock.timers.tick(300);
    dry.schedule({ n: 2 });
    assert.equal(calls[0].signal.aborted, true);
    calls[0].resolve({ count: 99 });
    mock.timers.tick(300);
    calls[1].resolve({ count: 2 });
    await settle();
    const ready = states.filter((s) => s.state === "ready");
    assert.deepEqual(
      ready.map((s) => s.answer.count),
      [2],
    );
  });
  test("stop (navigating away) aborts and reports nothing more", async (t) => {
    const { calls, states, dry } = dryRunHarness();
    t.after(() => mock.timers.reset());
    dry.schedule({ n: 1 });
    mock.timers.tick(300);
    const before = states.length;
    dry.stop();
    assert.equal(calls[0].signal.aborted, true);
    dry.schedule({ n: 2 });
    dry.stop();
    mock.timers.tick(1000);
    await settle();
    assert.equal(calls.length, 1);
    assert.equal(states.length, before + 1); // the second schedule's "pending" only
  });
  test("a 422 is invalid with the server's detail; a network failure is an error with its message", async (t) => {
    const { calls, states, dry } = dryRunHarness();
    t.after(() => mock.timers.reset());
    const detail = [{ loc: ["body", "sweep", "by_method", "ns", "beta"], msg: "ns does not take beta" }];
    dry.schedule({ lam: [20] });
    mock.timers.tick(300);
    calls[0].reject(Object.assign(new Error("422"), { status: 422, detail }));
    await settle();
    assert.deepEqual(states.at(-1), { state: "invalid", detail });
    dry.schedule({ lam: [0.2] });
    mock.timers.tick(300);
    calls[1].reject(Object.assign(new Error("cannot reach the server (Failed to fetch)"), { status: 0 }));
    await settle();
    assert.deepEqual(states.at(-1), { state: "error", message: "cannot reach the server (Failed to fetch)", status: 0 });
    dry.schedule({ lam: [0.2] }); // the same body again: asked again, since it failed
    mock.timers.tick(300);
    assert.equal(calls.length, 3);
  });
  test("the same body as the last answered one asks nothing (a change event after the input events)", async (t) => {
    const { calls, states, dry } = dryRunHarness();
    t.after(() => mock.timers.reset());
    dry.schedule({ seed: [0, 1] });
    mock.timers.tick(300);
    calls[0].resolve({ count: 2, jobs: [] });
    await settle();
    const before = states.length;
    dry.schedule({ seed: [0, 1] });
    mock.timers.tick(300);
    assert.equal(calls.length, 1);
    assert.equal(states.length, before);
    assert.equal(states.at(-1).state, "ready");
  });
});

describe("field labels", () => {
  test("the fields that read 'Channel Multiple' and 'Precise Bn' say what they do", () => {
    assert.equal(fieldLabel("channel_multiple"), "Round kept channels to a multiple of");
    assert.equal(fieldLabel("precise_bn"), "Re-estimate BN statistics before testing");
    assert.equal(fieldLabel("penalty"), "Sparsity penalty");
    assert.equal(fieldLabel("penalty_a"), "Penalty shape parameter a");
    assert.equal(fieldLabel("lam"), "λ (ℓ1 weight)");
  });
  test("a field without wording: sentence case, acronyms kept, never pydantic's Title Case", () => {
    assert.equal(fieldLabel("swa_bn_epochs"), "Swa BN epochs");
    assert.equal(fieldLabel("flops_budget"), "FLOPs budget");
    assert.equal(fieldLabel("bn_momentum"), "BN momentum");
    assert.equal(fieldLabel("lr_warmup"), "LR warmup");
    assert.equal(fieldLabel("lam_max"), "λ max");
  });
});

describe("per-dataset suggestions", () => {
  // the table as GET /api/meta serves it (proxns_core.spec.DATASET_SUGGESTIONS; tests/service/test_contract.py checks it)
  useDatasetSuggestions({
    digits: { arch: "vgg", depth: 11, width: 0.25, epochs: 20, batch_size: 64, lam: { proxns: 0.5, ns: 0.02 } },
    synthetic: { arch: "vgg", depth: 11, width: 0.125, epochs: 10, batch_size: 64 },
  });
  test("digits: VGG-11 ×0.25 for 20 epochs, λ on each method's scale", () => {
    assert.deepEqual(suggestedValues("digits", "vgg", "proxns"), {
      depth: "11",
      width: "0.25",
      epochs: "20",
      batch_size: "64",
      lam: "0.5",
    });
    assert.equal(suggestedValues("digits", "vgg", "ns").lam, "0.02");
    assert.equal(suggestedValues("digits", "vgg", "baseline").lam, "");
    assert.equal(suggestedArch("digits", "vgg"), "vgg");
  });
  test("another arch than the suggested one: its depth, width and λ stay the server's", () => {
    assert.deepEqual(suggestedValues("digits", "resnet18", "proxns"), { depth: "", width: "", epochs: "20", batch_size: "64", lam: "" });
  });
  test("a data set without suggestions (CIFAR-10) empties every field: the server's defaults", () => {
    assert.deepEqual(suggestedValues("cifar10", "vgg", "proxns"), { depth: "", width: "", epochs: "", batch_size: "", lam: "" });
    assert.equal(suggestedArch("cifar10", "vgg"), "vgg");
  });
  test("a value the user typed is never overwritten: touched fields are left out", () => {
    const touched = new Set(["epochs", "width"]);
    assert.deepEqual(suggestedValues("digits", "vgg", "proxns", SUGGESTED_FIELDS, touched), {
      depth: "11",
      batch_size: "64",
      lam: "0.5",
    });
    assert.deepEqual(suggestedValues("cifar10", "vgg", "proxns", SUGGESTED_FIELDS, touched), { depth: "", batch_size: "", lam: "" });
  });
  test("the sweep form's base leaves λ to the per-method lists", () => {
    const names = SUGGESTED_FIELDS.filter((n) => n !== "lam");
    assert.equal("lam" in suggestedValues("digits", "vgg", "proxns", names), false);
  });
});

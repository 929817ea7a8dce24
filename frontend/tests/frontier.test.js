// The frontier's pure parts: Pareto fronts (checked against a brute-force definition on random
// sets with ties), the x-axis values and the points the plot draws.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  exposedPoints,
  finalAcc,
  finite,
  frontierPoints,
  markFrontiers,
  paretoFront,
  pointFromJob,
  removedShare,
  X_AXES,
  xAxisOrDefault,
  xValue,
} from "../js/frontier.js";
import { listHash, listState, pageHash, pageState, tooltipRows } from "../js/views/experiments.js";

/** The definition, O(n²): p is dominated when some q has x ≥ and y ≥, one strictly. */
function bruteForce(points) {
  const ok = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  return ok.filter((p) => !ok.some((q) => q !== p && q.x >= p.x && q.y >= p.y && (q.x > p.x || q.y > p.y)));
}

/** A small seeded generator, so a failure can be replayed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("paretoFront", () => {
  test("a hand-made set: the staircase, sorted by x", () => {
    const pts = [
      { id: "a", x: 0.1, y: 0.99 },
      { id: "b", x: 0.5, y: 0.97 },
      { id: "c", x: 0.4, y: 0.96 }, // dominated by b
      { id: "d", x: 0.8, y: 0.9 },
      { id: "e", x: 0.8, y: 0.85 }, // same x as d, lower: dominated
      { id: "f", x: 0.05, y: 0.99 }, // same y as a, smaller x: dominated
    ];
    assert.deepEqual(
      paretoFront(pts).map((p) => p.id),
      ["a", "b", "d"],
    );
  });
  test("exact duplicates dominate neither each other: both stay, in input order", () => {
    const pts = [
      { id: 1, x: 0.5, y: 0.9 },
      { id: 2, x: 0.2, y: 0.95 },
      { id: 3, x: 0.5, y: 0.9 },
    ];
    assert.deepEqual(
      paretoFront(pts).map((p) => p.id),
      [2, 1, 3],
    );
  });
  test("non-finite coordinates are never on the front; other keys can be named", () => {
    const pts = [
      { a: Number.NaN, b: 1 },
      { a: 0.2, b: null },
      { a: 0.3, b: 0.5 },
    ];
    assert.deepEqual(paretoFront(pts, "a", "b"), [{ a: 0.3, b: 0.5 }]);
    assert.deepEqual(paretoFront([]), []);
  });
  test("matches the brute-force definition on 300 random sets with many ties", () => {
    const next = rng(13);
    for (let round = 0; round < 300; round += 1) {
      const n = 1 + Math.floor(next() * 40);
      const grid = 2 + Math.floor(next() * 8); // coarse grids give ties in x, in y and exact duplicates
      const pts = Array.from({ length: n }, (_, id) => ({ id, x: Math.floor(next() * grid) / grid, y: Math.floor(next() * grid) / grid }));
      const got = paretoFront(pts);
      const want = bruteForce(pts);
      assert.deepEqual(new Set(got.map((p) => p.id)), new Set(want.map((p) => p.id)), `round ${round}: ${JSON.stringify(pts)}`);
      assert.equal(got.length, want.length);
      for (let i = 1; i < got.length; i += 1) {
        assert.ok(got[i - 1].x <= got[i].x, "sorted by x");
        if (got[i - 1].x === got[i].x) assert.ok(got[i - 1].y === got[i].y, "equal x on the front only for duplicates");
        else assert.ok(got[i - 1].y > got[i].y, "y falls as x grows");
      }
      // deterministic: shuffling the input gives the same set in the same order of coordinates
      const shuffled = [...pts].sort(() => next() - 0.5);
      assert.deepEqual(
        paretoFront(shuffled).map((p) => [p.x, p.y]),
        got.map((p) => [p.x, p.y]),
      );
    }
  });
});

describe("xValue", () => {
  const p = { pruned_fraction: 0.5, flops_slim: 1_250_000, flops_full: 5_000_000, params_slim: 40_000, params_full: 100_000 };
  test("pruned: the pruned share; flops and params: 1 − slim/full", () => {
    assert.equal(xValue(p, "pruned"), 0.5);
    assert.equal(xValue(p, "flops"), 0.75);
    assert.equal(xValue(p, "params"), 0.6);
  });
  test("missing or zero counts give null, not NaN or Infinity", () => {
    assert.equal(xValue({ flops_slim: 10, flops_full: 0 }, "flops"), null);
    assert.equal(xValue({ params_slim: null, params_full: 10 }, "params"), null);
    assert.equal(xValue({}, "pruned"), null);
  });
  test("an unknown axis is an error naming the axes; the address falls back to pruned", () => {
    assert.throws(() => xValue(p, "latency"), /unknown x axis 'latency'; axes: pruned, flops, params/);
    assert.equal(xAxisOrDefault("flops"), "flops");
    assert.equal(xAxisOrDefault("toString"), "pruned");
    assert.equal(xAxisOrDefault(null), "pruned");
    assert.deepEqual(Object.keys(X_AXES), ["pruned", "flops", "params"]);
  });
});

const API_POINTS = [
  {
    job_id: 1,
    method: "proxns",
    lam: 0.25,
    pruned_fraction: 0.3,
    acc_slim: 0.98,
    acc_finetuned: null,
    flops_slim: 30,
    flops_full: 100,
    params_slim: 50,
    params_full: 100,
    warnings: [],
  },
  {
    job_id: 2,
    method: "proxns",
    lam: 0.5,
    pruned_fraction: 0.5,
    acc_slim: 0.97,
    acc_finetuned: null,
    flops_slim: 60,
    flops_full: 100,
    params_slim: 20,
    params_full: 100,
    warnings: [],
  },
  {
    job_id: 3,
    method: "proxns",
    lam: 1,
    pruned_fraction: 0.4,
    acc_slim: 0.96,
    acc_finetuned: 0.975,
    flops_slim: 20,
    flops_full: 100,
    params_slim: 30,
    params_full: 100,
    warnings: [],
  },
  {
    job_id: 4,
    method: "ns",
    lam: 0.02,
    pruned_fraction: 0.6,
    acc_slim: 0.1,
    acc_finetuned: null,
    flops_slim: 10,
    flops_full: 100,
    params_slim: 10,
    params_full: 100,
    warnings: [{ code: "chance_accuracy", message: "accuracy 10.0 % is at chance level" }],
  },
  {
    job_id: 5,
    method: "baseline",
    lam: null,
    pruned_fraction: 0,
    acc_slim: 0.99,
    acc_finetuned: null,
    flops_slim: 100,
    flops_full: 100,
    params_slim: 100,
    params_full: 100,
    warnings: [],
  },
];

describe("frontierPoints", () => {
  test("per method, on the pruned share: jobs 2 (0.5, 0.97) and 3 (0.4, 0.975) beat neither each other", () => {
    const pts = frontierPoints(API_POINTS, { xAxis: "pruned", accuracy: "final" });
    assert.deepEqual(
      pts.map((p) => [p.job_id, p.x, p.y, p.frontier]),
      [
        [1, 0.3, 0.98, true],
        [2, 0.5, 0.97, true],
        [3, 0.4, 0.975, true],
        [4, 0.6, 0.1, true],
        [5, 0, 0.99, true],
      ],
    );
  });
  test("switching to FLOPs removed changes the frontier: job 2 (40 % removed, 0.97) is beaten by jobs 1 (70 %, 0.98) and 3 (80 %, 0.975)", () => {
    const pts = frontierPoints(API_POINTS, { xAxis: "flops", accuracy: "final" });
    assert.deepEqual(
      pts.filter((p) => p.method === "proxns").map((p) => [p.job_id, Number(p.x.toFixed(2)), p.frontier]),
      [
        [1, 0.7, true],
        [2, 0.4, false],
        [3, 0.8, true],
      ],
    );
  });
  test("slim accuracy: job 3's 0.96 at 0.4 pruned is dominated by job 2", () => {
    const pts = frontierPoints(API_POINTS, { xAxis: "pruned", accuracy: "slim" });
    assert.equal(pts.find((p) => p.job_id === 3).frontier, false);
  });
  test("inactive points (outside a brush) are left out of the frontier computation", () => {
    const pts = frontierPoints(API_POINTS, { xAxis: "flops", isActive: (p) => p.job_id !== 1 && p.job_id !== 3 });
    const byId = Object.fromEntries(pts.map((p) => [p.job_id, p]));
    assert.deepEqual([byId[1].active, byId[3].active, byId[2].active], [false, false, true]);
    assert.deepEqual([byId[1].frontier, byId[3].frontier], [false, false]);
    assert.equal(byId[2].frontier, true, "with jobs 1 and 3 out, job 2 is no longer dominated");
  });
  test("chance accuracy is flagged; exposedPoints carries frontier, active and flagged", () => {
    const pts = frontierPoints(API_POINTS);
    const exposed = exposedPoints(pts);
    assert.deepEqual(
      exposed.find((p) => p.job_id === 4),
      {
        job_id: 4,
        method: "ns",
        lam: 0.02,
        beta: undefined,
        seed: undefined,
        x: 0.6,
        y: 0.1,
        params_slim: 10,
        flops_slim: 10,
        frontier: true,
        active: true,
        flagged: true,
      },
    );
  });
  test("markFrontiers returns each method's front in x order", () => {
    const pts = [
      { method: "a", x: 0.2, y: 0.9 },
      { method: "a", x: 0.1, y: 0.95 },
      { method: "b", x: 0.3, y: 0.5 },
      { method: "a", x: 0.15, y: 0.8 },
    ];
    const fronts = markFrontiers(pts);
    assert.deepEqual(
      fronts.a.map((p) => p.x),
      [0.1, 0.2],
    );
    assert.deepEqual(
      pts.map((p) => p.frontier),
      [true, true, true, false],
    );
  });
});

describe("pointFromJob", () => {
  test("a job's config and result as the experiment's plot-point fields", () => {
    const job = {
      id: 7,
      experiment_id: 2,
      config: { method: "proxns", lam: 0.5, beta: 100, seed: 1, width: 0.25, epochs: 4, finetune_epochs: 0, penalty: "l1", arch: "vgg" },
      result: {
        pruned_fraction: 0.6,
        acc_full: 0.99,
        acc_slim: 0.97,
        acc_finetuned: null,
        params_full: 10,
        params_slim: 4,
        flops_full: 20,
        flops_slim: 5,
        num_classes: 10,
        layers: [],
      },
      warnings: [],
    };
    const p = pointFromJob(job);
    assert.deepEqual(p, {
      job_id: 7,
      experiment_id: 2,
      method: "proxns",
      lam: 0.5,
      beta: 100,
      seed: 1,
      width: 0.25,
      prune_ratio: null,
      epochs: 4,
      finetune_epochs: 0,
      penalty: "l1",
      pruned_fraction: 0.6,
      acc_full: 0.99,
      acc_slim: 0.97,
      acc_finetuned: null,
      params_full: 10,
      params_slim: 4,
      flops_full: 20,
      flops_slim: 5,
      num_classes: 10,
      warnings: [],
    });
    assert.equal(xValue(p, "flops"), 0.75);
    assert.equal(frontierPoints([p])[0].frontier, true);
  });
  test("a job without a result gives null", () => assert.equal(pointFromJob({ id: 1, config: {}, result: null }), null));
});

describe("the experiment page's address", () => {
  test("defaults are left out; settings round-trip", () => {
    assert.equal(pageHash(5, pageState(new URLSearchParams(""))), "#/experiments/5");
    const hash = pageHash(5, { xAxis: "flops", accuracy: "slim", labels: false, brushes: { lam: [0.01, 1], acc_final: [0.9, 0.99] } });
    assert.equal(hash, "#/experiments/5?x=flops&acc=slim&labels=0&brush=lam:0.01:1,acc_final:0.9:0.99");
    assert.deepEqual(pageState(new URLSearchParams(hash.split("?")[1])), {
      xAxis: "flops",
      accuracy: "slim",
      labels: false,
      brushes: { lam: [0.01, 1], acc_final: [0.9, 0.99] },
    });
  });
  test("unknown values fall back to the defaults", () => {
    assert.deepEqual(pageState(new URLSearchParams("x=latency&acc=best&brush=lam:a:b")), {
      xAxis: "pruned",
      accuracy: "final",
      labels: true,
      brushes: {},
    });
  });
  test("the list's search and archived switch", () => {
    assert.equal(listHash({ q: "", archived: "false" }), "#/experiments");
    assert.equal(listHash({ q: "paper 1", archived: "all" }), "#/experiments?q=paper+1&archived=all");
    assert.deepEqual(listState(new URLSearchParams("q=%20paper%20&archived=all")), { q: "paper", archived: "all" });
    assert.deepEqual(listState(new URLSearchParams("archived=yes")), { q: "", archived: "false" });
  });
  test("the tooltip names width, β, prune ratio, seed and epochs", () => {
    const rows = Object.fromEntries(
      tooltipRows(
        { ...API_POINTS[1], y: 0.97, beta: 100, width: 0.25, prune_ratio: null, seed: 1, epochs: 4, finetune_epochs: 2, penalty: "l1" },
        "flops",
      ),
    );
    assert.equal(rows.Width, "0.25");
    assert.equal(rows.β, "100");
    assert.equal(rows["Prune ratio"], "—");
    assert.equal(rows.Seed, "1");
    assert.equal(rows.Epochs, "4 + 2 fine-tune");
    assert.equal(rows["FLOPs removed"], "40.0 %");
    assert.equal(rows.Accuracy, "97.00 %");
  });
});

describe("shared result helpers", () => {
  test("finite, removedShare(slim, full) and finalAcc", () => {
    assert.equal(finite(0.5), 0.5);
    assert.equal(finite(Number.NaN), null);
    assert.equal(finite("1"), null);
    assert.equal(removedShare(30, 100), 0.7);
    assert.equal(removedShare(30, 0), null);
    assert.equal(removedShare(null, 100), null);
    assert.equal(finalAcc({ acc_slim: 0.8, acc_finetuned: 0.9 }), 0.9);
    assert.equal(finalAcc({ acc_slim: 0.8, acc_finetuned: null }), 0.8);
    assert.equal(finalAcc(null), null);
  });
});

// Parallel coordinates' pure parts: which axes, scales, brushes (address form, filtering, keys).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  axisValue,
  buildAxes,
  formatBrushes,
  fractionsOfRange,
  fromFraction,
  inBrushes,
  KEY_STEP,
  keyBrush,
  parcoordsRows,
  parseBrushes,
  rangeFromFractions,
  toFraction,
  varyingFields,
  withApplicableFields,
} from "../js/parcoords.js";

const P = [
  {
    job_id: 1,
    method: "ns",
    lam: 0.01,
    beta: null,
    seed: 0,
    width: 0.25,
    epochs: 10,
    penalty: "l1",
    acc_slim: 0.97,
    acc_finetuned: null,
    pruned_fraction: 0.3,
    flops_slim: 50,
    flops_full: 100,
    params_slim: 40,
    params_full: 100,
  },
  {
    job_id: 2,
    method: "proxns",
    lam: 0.5,
    beta: 100,
    seed: 0,
    width: 0.25,
    epochs: 10,
    penalty: "l1",
    acc_slim: 0.95,
    acc_finetuned: 0.96,
    pruned_fraction: 0.6,
    flops_slim: 20,
    flops_full: 100,
    params_slim: 10,
    params_full: 100,
  },
  {
    job_id: 3,
    method: "proxns",
    lam: 1,
    beta: 100,
    seed: 1,
    width: 0.25,
    epochs: 10,
    penalty: "l1",
    acc_slim: 0.9,
    acc_finetuned: null,
    pruned_fraction: 0.8,
    flops_slim: 5,
    flops_full: 100,
    params_slim: 4,
    params_full: 100,
  },
];

describe("axes", () => {
  test("only the config fields that vary get an axis; the four results always do", () => {
    assert.deepEqual(varyingFields(P), ["lam", "seed"]);
    assert.deepEqual(
      buildAxes(P).map((a) => a.key),
      ["lam", "seed", "acc_final", "pruned_fraction", "flops_removed", "params_removed"],
    );
  });
  test("β with one value besides nulls does not vary; a string field is a category axis", () => {
    const pts = [...P, { ...P[0], job_id: 4, penalty: "l0" }];
    const axes = buildAxes(pts);
    assert.equal(
      axes.find((a) => a.key === "beta"),
      undefined,
    );
    assert.deepEqual(
      axes.find((a) => a.key === "penalty"),
      { key: "penalty", label: "penalty", kind: "category", domain: ["l0", "l1"] },
    );
  });
  test("λ spanning 100× gets a log scale; derived values are shares", () => {
    const lam = buildAxes(P)[0];
    assert.equal(lam.kind, "log");
    assert.deepEqual(lam.domain, [0.01, 1]);
    assert.ok(Math.abs(toFraction(lam, 0.1) - 0.5) < 1e-12);
    assert.equal(axisValue(P[1], "acc_final"), 0.96);
    assert.equal(axisValue(P[0], "flops_removed"), 0.5);
    assert.equal(axisValue(P[2], "params_removed"), 0.96);
    assert.equal(axisValue({ flops_slim: 1, flops_full: 0 }, "flops_removed"), null);
  });
  test("fromFraction inverts toFraction; the ends are the domain's exact ends", () => {
    const acc = buildAxes(P).find((a) => a.key === "acc_final");
    assert.deepEqual(acc.domain, [0.9, 0.97]);
    assert.equal(fromFraction(acc, 1), 0.97);
    assert.equal(fromFraction(acc, 0), 0.9);
    assert.ok(Math.abs(fromFraction(acc, toFraction(acc, 0.95)) - 0.95) < 1e-6);
    const flat = buildAxes([P[0], { ...P[0], job_id: 9 }]).find((a) => a.key === "acc_final");
    assert.ok(flat.domain[0] < 0.97 && flat.domain[1] > 0.97, "a constant axis is padded");
  });
});

describe("brushes", () => {
  const axes = buildAxes(P);
  test("a point is kept when inside every brush, bounds included", () => {
    assert.deepEqual(
      P.filter((p) => inBrushes(p, { lam: [0.4, 1] }, axes)).map((p) => p.job_id),
      [2, 3],
    );
    assert.deepEqual(
      P.filter((p) => inBrushes(p, { lam: [0.4, 1], acc_final: [0.955, 1] }, axes)).map((p) => p.job_id),
      [2],
    );
    assert.deepEqual(
      P.filter((p) => inBrushes(p, { nothere: [0, 0] }, axes)).map((p) => p.job_id),
      [1, 2, 3],
      "a brush on an axis that is not drawn is ignored",
    );
  });
  test("a missing value is outside a brush on its axis", () => {
    const withBeta = buildAxes([...P, { ...P[1], job_id: 5, beta: 10 }]);
    assert.equal(inBrushes(P[0], { beta: [0, 1000] }, withBeta), false);
  });
  test("category brushes compare the category's index", () => {
    const pts = [...P, { ...P[0], job_id: 4, penalty: "l0" }];
    const cat = buildAxes(pts);
    assert.deepEqual(
      pts.filter((p) => inBrushes(p, { penalty: [0, 0.4] }, cat)).map((p) => p.job_id),
      [4],
    );
  });
  test("address form round-trips; junk parts are dropped; reversed bounds are ordered", () => {
    const b = { lam: [0.1, 0.5], acc_final: [0.9, 1] };
    assert.equal(formatBrushes(b), "lam:0.1:0.5,acc_final:0.9:1");
    assert.deepEqual(parseBrushes(formatBrushes(b)), b);
    assert.deepEqual(parseBrushes("lam:0.5:0.1,bad,x:1:y,:1:2,seed::1"), { lam: [0.1, 0.5] });
    assert.deepEqual(parseBrushes(null), {});
    assert.equal(formatBrushes({}), "");
  });
  test("rows for CSV: axis values and whether inside the brushes", () => {
    const rows = parcoordsRows(P, axes, { lam: [0.4, 1] });
    assert.deepEqual(rows[0], {
      job_id: 1,
      method: "ns",
      lam: 0.01,
      seed: 0,
      acc_final: 0.97,
      pruned_fraction: 0.3,
      flops_removed: 0.5,
      params_removed: 0.6,
      in_brush: false,
    });
    assert.deepEqual(
      rows.map((r) => r.in_brush),
      [false, true, true],
    );
  });
});

describe("keyboard brushing", () => {
  test("an arrow starts a brush over the top quarter; Escape clears; other keys are ignored", () => {
    assert.deepEqual(keyBrush(null, "ArrowDown", false), [0.75, 1]);
    assert.equal(keyBrush([0.2, 0.4], "Escape", false), null);
    assert.equal(keyBrush([0.2, 0.4], "a", false), undefined);
  });
  test("arrows move the brush by a step, kept inside the axis", () => {
    const [lo, hi] = keyBrush([0.75, 1], "ArrowDown", false);
    assert.ok(Math.abs(lo - (0.75 - KEY_STEP)) < 1e-12 && Math.abs(hi - (1 - KEY_STEP)) < 1e-12);
    assert.deepEqual(keyBrush([0.75, 1], "ArrowUp", false), [0.75, 1]);
    assert.deepEqual(keyBrush([0, 0.2], "ArrowDown", false), [0, 0.2]);
  });
  test("shift+arrows move the lower edge: down grows, up shrinks, never past the top edge", () => {
    const grown = keyBrush([0.75, 1], "ArrowDown", true);
    assert.ok(Math.abs(grown[0] - 0.7) < 1e-12 && grown[1] === 1);
    const shrunk = keyBrush([0.9, 1], "ArrowUp", true);
    assert.ok(Math.abs(shrunk[0] - 0.95) < 1e-12);
    assert.ok(keyBrush([0.97, 1], "ArrowUp", true)[0] <= 0.98 + 1e-12);
  });
  test("fractions ↔ value ranges on a log axis", () => {
    const lam = buildAxes(P)[0];
    assert.deepEqual(rangeFromFractions(lam, [0.5, 1]), [0.1, 1]);
    const [a, b] = fractionsOfRange(lam, [0.1, 1]);
    assert.ok(Math.abs(a - 0.5) < 1e-9 && b === 1);
  });
});

describe("withApplicableFields", () => {
  const fields = { baseline: [], ns: ["lam", "prune_ratio"], proxns: ["lam", "beta"] };
  test("fields a method does not take become null; the others stay", () => {
    const pts = [
      { method: "baseline", lam: 0, beta: null, seed: 0 },
      { method: "ns", lam: 0.01, beta: 100, prune_ratio: 0.5 },
      { method: "proxns", lam: 0.5, beta: 100, prune_ratio: 0.7 },
    ];
    assert.deepEqual(withApplicableFields(pts, fields), [
      { method: "baseline", lam: null, beta: null, seed: 0 },
      { method: "ns", lam: 0.01, beta: null, prune_ratio: 0.5 },
      { method: "proxns", lam: 0.5, beta: 100, prune_ratio: null },
    ]);
  });
  test("no meta, or a method meta does not know: unchanged", () => {
    const pts = [{ method: "other", lam: 1 }];
    assert.equal(withApplicableFields(pts, undefined), pts);
    assert.deepEqual(withApplicableFields(pts, fields), pts);
  });
});

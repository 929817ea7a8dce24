import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { fitWidth, lineYRange, niceTicks, scatterYRange } from "../js/charts.js";

describe("niceTicks", () => {
  test("round steps covering the range", () => {
    assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(0, 10, 6), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(1, 47, 5), [0, 10, 20, 30, 40, 50]);
    assert.deepEqual(niceTicks(1, 20, 6), [0, 5, 10, 15, 20]);
    assert.deepEqual(niceTicks(-3, 7), [-4, -2, 0, 2, 4, 6, 8]);
  });
  test("a narrow accuracy range gets fine steps without float noise", () => {
    assert.deepEqual(niceTicks(0.93, 0.99), [0.92, 0.94, 0.96, 0.98, 1]);
    assert.deepEqual(niceTicks(0, 0.105, 6), [0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12]);
  });
  test("an empty range is widened around the value", () => {
    assert.deepEqual(niceTicks(5, 5), [2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(niceTicks(0, 0), [-0.6, -0.4, -0.2, 0, 0.2, 0.4, 0.6]);
  });
  test("non-finite bounds give [0, 1]", () => {
    assert.deepEqual(niceTicks(Number.NaN, 1), [0, 1]);
    assert.deepEqual(niceTicks(0, Number.POSITIVE_INFINITY), [0, 1]);
  });
  test("the last tick reaches the top of the range", () => {
    for (const [lo, hi] of [
      [0.1, 0.77],
      [3, 1234],
      [-0.5, 0.05],
    ]) {
      const ticks = niceTicks(lo, hi);
      assert.ok(ticks[0] <= lo && ticks.at(-1) >= hi, `${ticks} for [${lo}, ${hi}]`);
    }
  });
});

describe("fitWidth", () => {
  test("the available width less a 20 px margin, within [min, max]", () => {
    assert.equal(fitWidth(500, 320, 720), 480);
    assert.equal(fitWidth(1000, 320, 720), 720);
    assert.equal(fitWidth(200, 320, 720), 320);
  });
  test("rounded to whole pixels", () => assert.equal(fitWidth(400.6, 300, 640), 381));
  test("no measurement (0 or undefined) means the maximum less the margin", () => {
    assert.equal(fitWidth(0, 320, 720), 700);
    assert.equal(fitWidth(undefined, 300, 640), 620);
  });
});

describe("lineYRange", () => {
  test("the values' range, or the bounds given", () => {
    assert.deepEqual(lineYRange([0.2, 0.9, 0.5]), [0.2, 0.9]);
    assert.deepEqual(lineYRange([0.2, 0.9], { yMin: 0 }), [0, 0.9]);
    assert.deepEqual(lineYRange([0.2, 0.9], { yMax: 1 }), [0.2, 1]);
  });
  test("a flat curve is widened around its value to the minimum span", () => {
    assert.deepEqual(lineYRange([0.5, 0.5], { yMinSpan: 0.1 }), [0.45, 0.55]);
  });
  test("with a lower bound the span grows upwards from it", () => {
    assert.deepEqual(lineYRange([0, 0], { yMin: 0, yMinSpan: 0.1 }), [0, 0.1]);
  });
});

describe("scatterYRange", () => {
  test("the accuracies and the baseline, padded by 15 % of their range", () => {
    const [lo, hi] = scatterYRange([{ y: 0.8 }, { y: 0.9 }], 0.7);
    assert.ok(Math.abs(lo - 0.67) < 1e-12 && Math.abs(hi - 0.93) < 1e-12, `${lo}, ${hi}`);
  });
  test("at least 0.01 of padding, kept within [0, 1]", () => {
    assert.deepEqual(scatterYRange([{ y: 0.995 }], null), [0.985, 1]);
    assert.deepEqual(scatterYRange([{ y: 0.001 }], undefined), [0, 0.011]);
  });
  test("no points and no baseline: the whole [0, 1]", () => assert.deepEqual(scatterYRange([], null), [0, 1]));
});

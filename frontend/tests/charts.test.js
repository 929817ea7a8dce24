import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bulkPoints, fitWidth, lamLabel, lineYRange, niceTicks, placeLabels, scatterYAxis, scatterYRange } from "../js/charts.js";

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

describe("scatterYAxis: one collapsed run does not squash the rest (issue 13, item 9)", () => {
  const good = [0.962, 0.971, 0.978, 0.983, 0.985, 0.99].map((y, i) => ({ job_id: i + 1, y }));
  test("a point flagged at chance accuracy is left out of the range and pinned below it", () => {
    const points = [...good, { job_id: 99, y: 0.102, flagged: true }];
    const { yTicks, below } = scatterYAxis(points, 0.991);
    assert.ok(yTicks[0] >= 0.9, `axis starts at ${yTicks[0]}, not near 0`);
    assert.ok(yTicks.at(-1) <= 1 && yTicks.at(-1) >= 0.991);
    assert.deepEqual([...below], [99]);
  });
  test("an unflagged run far below the rest (more than 3 IQR under the lower quartile) is pinned too", () => {
    const points = [...good, { job_id: 50, y: 0.31 }];
    assert.deepEqual(
      bulkPoints(points).map((p) => p.job_id),
      [1, 2, 3, 4, 5, 6],
    );
    const { yTicks, below } = scatterYAxis(points, null);
    assert.ok(yTicks[0] >= 0.9, String(yTicks));
    assert.deepEqual([...below], [50]);
  });
  test("a spread-out sweep keeps every point in range", () => {
    const points = [0.4, 0.55, 0.7, 0.85, 0.95].map((y, i) => ({ job_id: i, y }));
    const { yTicks, below } = scatterYAxis(points, null);
    assert.equal(below.size, 0);
    assert.ok(yTicks[0] <= 0.4);
  });
  test("when every point is flagged they all set the range", () => {
    const points = [
      { job_id: 1, y: 0.1, flagged: true },
      { job_id: 2, y: 0.11, flagged: true },
    ];
    assert.equal(bulkPoints(points).length, 2);
    assert.equal(scatterYAxis(points, null).below.size, 0);
  });
});

describe("placeLabels", () => {
  const bounds = { x0: 0, x1: 400, y0: 0, y1: 300 };
  test("to the right of the marker when there is room", () => {
    assert.deepEqual(placeLabels([{ x: 100, y: 100, text: "λ 0.5" }], { bounds }), [{ x: 109, y: 103.5, anchor: "start" }]);
  });
  test("two markers side by side: the labels go to the outer sides, over neither marker", () => {
    const spots = placeLabels(
      [
        { x: 100, y: 100, text: "λ 0.5" },
        { x: 118, y: 100, text: "λ 1" },
      ],
      { bounds },
    );
    assert.deepEqual(spots, [
      { x: 91, y: 103.5, anchor: "end" },
      { x: 127, y: 103.5, anchor: "start" },
    ]);
  });
  test("near the right edge: the label flips to the left", () => {
    assert.equal(placeLabels([{ x: 395, y: 100, text: "λ 0.25" }], { bounds })[0].anchor, "end");
  });
  test("a marker boxed in on all four sides gets no label", () => {
    const ring = [
      { x: 100, y: 100, text: "λ 1" },
      { x: 112, y: 100, text: "" },
      { x: 88, y: 100, text: "" },
      { x: 100, y: 86, text: "" },
      { x: 100, y: 114, text: "" },
    ];
    assert.equal(placeLabels(ring, { bounds })[0], null);
  });
  test("no two placed labels overlap in a dense cloud", () => {
    const anchors = Array.from({ length: 40 }, (_, i) => ({ x: 50 + (i % 8) * 20, y: 50 + Math.floor(i / 8) * 14, text: `λ ${i}` }));
    const boxes = placeLabels(anchors, { bounds })
      .map((spot, i) => {
        if (!spot) return null;
        const w = anchors[i].text.length * 6;
        const x0 = spot.anchor === "start" ? spot.x : spot.anchor === "end" ? spot.x - w : spot.x - w / 2;
        return { x0, x1: x0 + w, y0: spot.y - 9, y1: spot.y };
      })
      .filter(Boolean);
    assert.ok(boxes.length > 0);
    for (let i = 0; i < boxes.length; i += 1)
      for (let j = i + 1; j < boxes.length; j += 1) {
        const [a, b] = [boxes[i], boxes[j]];
        assert.ok(!(a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1), `labels ${i} and ${j} overlap`);
      }
  });
  test("lamLabel: three significant digits, none for a baseline", () => {
    assert.equal(lamLabel({ lam: 0.5 }), "λ 0.5");
    assert.equal(lamLabel({ lam: 0.012345 }), "λ 0.0123");
    assert.equal(lamLabel({ lam: null }), "");
  });
});

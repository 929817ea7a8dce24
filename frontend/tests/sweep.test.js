import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseList, sweepCombinations, sweepJobCount, sweepRequested } from "../js/sweep.js";

const METHOD_FIELDS = { baseline: [], ns: ["lam", "prune_ratio"], proxns: ["lam", "beta"] };

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

describe("sweepRequested", () => {
  test("the product of the list lengths", () => {
    assert.equal(sweepRequested({ method: ["baseline", "ns", "proxns"], lam: [0.001, 0.01, 0.05], seed: [0, 1] }), 18);
  });
  test("empty lists are not axes; no sweep is one job", () => {
    assert.equal(sweepRequested({ lam: [0.1, 0.2], beta: [] }), 2);
    assert.equal(sweepRequested({}), 1);
    assert.equal(sweepRequested(undefined), 1);
  });
});

describe("sweepCombinations", () => {
  test("one object per combination, first axis slowest", () => {
    assert.deepEqual(sweepCombinations({ lam: [1, 2], seed: [0, 1], beta: [] }), [
      { lam: 1, seed: 0 },
      { lam: 1, seed: 1 },
      { lam: 2, seed: 0 },
      { lam: 2, seed: 1 },
    ]);
  });
});

describe("sweepJobCount", () => {
  test("a λ sweep of a proxns base: one job per value", () => {
    assert.equal(sweepJobCount({ lam: [0.01, 0.05] }, { baseMethod: "proxns", methodFields: METHOD_FIELDS }), 2);
  });
  test("the product of the list lengths when every value applies", () => {
    const sweep = { lam: [0.001, 0.01, 0.05], beta: [10, 100], seed: [0, 1] };
    assert.equal(sweepJobCount(sweep, { baseMethod: "proxns", methodFields: METHOD_FIELDS }), 12);
  });
  test("no sweep, or only empty lists, is one job", () => {
    assert.equal(sweepJobCount({}, { baseMethod: "proxns", methodFields: METHOD_FIELDS }), 1);
    assert.equal(sweepJobCount({ lam: [], seed: [] }, { baseMethod: "ns", methodFields: METHOD_FIELDS }), 1);
  });
  test("the README's example: 3 methods × 3 λ × 2 seeds asks for 18 and makes 14", () => {
    const sweep = { method: ["baseline", "ns", "proxns"], lam: [0.001, 0.01, 0.05], seed: [0, 1] };
    assert.equal(sweepJobCount(sweep, { baseMethod: "proxns", methodFields: METHOD_FIELDS }), 14);
  });
  test("values the base method does not take collapse into one job", () => {
    assert.equal(sweepJobCount({ lam: [0.01, 0.05] }, { baseMethod: "baseline", methodFields: METHOD_FIELDS }), 1);
    const sweep = { beta: [10, 100], prune_ratio: [0.5, 0.7] };
    assert.equal(sweepJobCount(sweep, { baseMethod: "ns", methodFields: METHOD_FIELDS }), 2);
    assert.equal(sweepJobCount(sweep, { baseMethod: "proxns", methodFields: METHOD_FIELDS }), 2);
  });
  test("repeated values (also 0.01 and 1e-2) count once", () => {
    assert.equal(
      sweepJobCount({ lam: parseList("0.01, 1e-2, 0.05"), seed: [1, 1] }, { baseMethod: "proxns", methodFields: METHOD_FIELDS }),
      2,
    );
  });
  test("without method_fields nothing is dropped: the distinct product", () => {
    assert.equal(sweepJobCount({ lam: [0.01, 0.05], beta: [1, 2, 2] }), 4);
    assert.equal(sweepJobCount({ lam: [0.01, 0.05] }, { baseMethod: "baseline" }), 2);
  });
  test("a method method_fields does not know keeps every value", () => {
    assert.equal(sweepJobCount({ lam: [1, 2], beta: [3, 4] }, { baseMethod: "future", methodFields: METHOD_FIELDS }), 4);
  });
  test("huge sweeps are counted, not enumerated", () => {
    const many = Array.from({ length: 200 }, (_, i) => i);
    assert.equal(sweepJobCount({ lam: many, seed: many }, { baseMethod: "baseline", methodFields: METHOD_FIELDS }), 40000);
  });
});

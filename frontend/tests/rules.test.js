import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { isFinished, methodFieldDefaults, methodFieldVisibility, methodScope, methodSpecificFields, methodsTaking } from "../js/rules.js";

const META = {
  statuses: ["queued", "running", "succeeded", "failed", "cancelled"],
  finished_statuses: ["succeeded", "failed", "cancelled"],
  method_fields: { baseline: [], ns: ["lam", "prune_ratio"], proxns: ["lam", "beta"] },
};

describe("isFinished", () => {
  test("the statuses meta lists as finished", () => {
    assert.deepEqual(
      META.statuses.map((st) => isFinished(META, st)),
      [false, false, true, true, true],
    );
  });
  test("nothing is finished while meta lacks the list", () => {
    assert.equal(isFinished({}, "succeeded"), false);
    assert.equal(isFinished(null, "failed"), false);
  });
});

describe("methodSpecificFields", () => {
  test("the union of the methods' lists, first seen first", () => {
    assert.deepEqual(methodSpecificFields(META), ["lam", "prune_ratio", "beta"]);
  });
  test("none without method_fields", () => assert.deepEqual(methodSpecificFields({}), []));
});

describe("methodFieldVisibility", () => {
  test("a field is shown only when the method's list names it", () => {
    assert.deepEqual(methodFieldVisibility(META, "baseline"), { lam: false, prune_ratio: false, beta: false });
    assert.deepEqual(methodFieldVisibility(META, "ns"), { lam: true, prune_ratio: true, beta: false });
    assert.deepEqual(methodFieldVisibility(META, "proxns"), { lam: true, prune_ratio: false, beta: true });
  });
  test("an unknown method takes none of them", () => {
    assert.deepEqual(methodFieldVisibility(META, "other"), { lam: false, prune_ratio: false, beta: false });
  });
});

describe("methodsTaking and methodScope", () => {
  test("the methods whose list names the field, in meta's order", () => {
    assert.deepEqual(methodsTaking(META, "lam"), ["ns", "proxns"]);
    assert.deepEqual(methodsTaking(META, "beta"), ["proxns"]);
    assert.deepEqual(methodsTaking(META, "seed"), []);
    assert.deepEqual(methodsTaking({}, "lam"), []);
  });
  test("in words: the takers, or 'not' the others when that names fewer", () => {
    assert.equal(methodScope(META, "beta"), "proxns");
    assert.equal(methodScope(META, "prune_ratio"), "ns");
    assert.equal(methodScope(META, "lam"), "not baseline");
  });
  test("nothing to say for a field no method or every method takes", () => {
    assert.equal(methodScope(META, "seed"), "");
    assert.equal(methodScope({ method_fields: { a: ["x"], b: ["x"] } }, "x"), "");
    assert.equal(methodScope({}, "lam"), "");
  });
  test("a tie names the takers", () => {
    assert.equal(methodScope({ method_fields: { a: ["x"], b: ["x"], c: [], d: [] } }, "x"), "a, b");
  });
});

describe("methodFieldDefaults", () => {
  const meta = {
    ...META,
    defaults: {
      fields: { lam: null, epochs: 160 },
      depth: { vgg: 19 },
      lam: { proxns: { vgg: 0.0045, resnet: 0.002 }, ns: { vgg: 0.0001 }, baseline: { vgg: 0 } },
      beta: { vgg: 100, resnet: 0.25 },
      prune_ratio: { vgg: 0.7 },
    },
  };
  test("a table keyed by method then arch, or by arch, read by its shape", () => {
    assert.deepEqual(methodFieldDefaults(meta, "vgg", "proxns"), { lam: 0.0045, prune_ratio: 0.7, beta: 100 });
    assert.deepEqual(methodFieldDefaults(meta, "resnet", "ns"), { beta: 0.25 });
  });
  test("a per-arch table can become per-method without the form changing", () => {
    const perMethodBeta = { ...meta, defaults: { ...meta.defaults, beta: { proxns: { vgg: 50 } } } };
    assert.deepEqual(methodFieldDefaults(perMethodBeta, "vgg", "proxns"), { lam: 0.0045, prune_ratio: 0.7, beta: 50 });
  });
  test("only method-specific fields; none without defaults", () => {
    assert.equal("epochs" in methodFieldDefaults(meta, "vgg", "proxns"), false);
    assert.deepEqual(methodFieldDefaults({ method_fields: META.method_fields }, "vgg", "ns"), {});
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { csvColumns, toCsv } from "../js/export.js";

describe("toCsv", () => {
  test("a header row, then one line per row in column order", () => {
    assert.equal(
      toCsv(
        [
          { a: 1, b: 2.5 },
          { b: "x", a: 0 },
        ],
        ["a", "b"],
      ),
      "a,b\n1,2.5\n0,x\n",
    );
  });
  test("null, undefined and missing keys are empty cells", () => {
    assert.equal(toCsv([{ a: null, b: undefined }, {}], ["a", "b"]), "a,b\n,\n,\n");
  });
  test("commas, quotes and line breaks are quoted; quotes doubled", () => {
    assert.equal(toCsv([{ a: "x,y" }], ["a"]), 'a\n"x,y"\n');
    assert.equal(toCsv([{ a: 'say "hi"' }], ["a"]), 'a\n"say ""hi"""\n');
    assert.equal(toCsv([{ a: "l1\nl2" }], ["a"]), 'a\n"l1\nl2"\n');
    assert.equal(toCsv([{ a: "l1\r\nl2" }], ["a"]), 'a\n"l1\r\nl2"\n');
    assert.equal(toCsv([{ a: "plain text" }], ["a"]), "a\nplain text\n");
  });
  test("no rows: the header alone", () => assert.equal(toCsv([], ["job_id", "lam"]), "job_id,lam\n"));
});

describe("csvColumns", () => {
  const points = [
    { method: "proxns", job_id: 7, lam: 0.01, beta: 100 },
    { job_id: 8, method: "ns", lam: 0.001, beta: null, prune_ratio: 0.5 },
  ];
  test("the first keys, then every key in the order the rows have them", () => {
    assert.deepEqual(csvColumns(points, ["job_id"]), ["job_id", "method", "lam", "beta", "prune_ratio"]);
  });
  test("without first keys: the rows' own order", () => {
    assert.deepEqual(csvColumns(points), ["method", "job_id", "lam", "beta", "prune_ratio"]);
  });
  test("no rows: only the first keys", () => assert.deepEqual(csvColumns([], ["job_id"]), ["job_id"]));
  test("feeds toCsv", () => {
    assert.equal(
      toCsv(points, csvColumns(points, ["job_id"])),
      "job_id,method,lam,beta,prune_ratio\n7,proxns,0.01,100,\n8,ns,0.001,,0.5\n",
    );
  });
});

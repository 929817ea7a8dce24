import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { bytes, DASH, duration, methodLabel, ms, num, pct, shortId, si } from "../js/format.js";

describe("pct", () => {
  test("a fraction as a percentage with one decimal", () => {
    assert.equal(pct(0.9312), "93.1 %");
    assert.equal(pct(1), "100.0 %");
    assert.equal(pct(0), "0.0 %");
  });
  test("more digits on request", () => assert.equal(pct(0.5, 2), "50.00 %"));
  test("missing values are a dash", () => {
    assert.equal(pct(null), DASH);
    assert.equal(pct(undefined), DASH);
    assert.equal(pct(Number.NaN), DASH);
  });
});

describe("num", () => {
  test("up to four significant digits", () => {
    assert.equal(num(0.0045), "0.0045");
    assert.equal(num(123.456), "123.5");
    assert.equal(num(0.1 + 0.2), "0.3");
    assert.equal(num(4.56789, 2), "4.6");
  });
  test("tiny and huge values in short exponent form", () => {
    assert.equal(num(1e-5), "1e-5");
    assert.equal(num(-0.00012, 3), "-1.2e-4");
    assert.equal(num(2500000), "2.5e6");
    assert.equal(num(1234567), "1.23e6");
  });
  test("zero and missing", () => {
    assert.equal(num(0), "0");
    assert.equal(num(null), DASH);
  });
});

describe("si", () => {
  test("SI suffixes with three significant digits", () => {
    assert.equal(si(20040000), "20.0 M");
    assert.equal(si(1500), "1.50 k");
    assert.equal(si(12345), "12.3 k");
    assert.equal(si(123456), "123 k");
    assert.equal(si(2.5e9), "2.50 G");
    assert.equal(si(3e12), "3.00 T");
  });
  test("small counts as they are", () => {
    assert.equal(si(999), "999");
    assert.equal(si(0), "0");
    assert.equal(si(null), DASH);
  });
});

describe("bytes", () => {
  test("binary units", () => {
    assert.equal(bytes(0), "0 B");
    assert.equal(bytes(512), "512 B");
    assert.equal(bytes(1024), "1.0 KiB");
    assert.equal(bytes(1536), "1.5 KiB");
    assert.equal(bytes(585484), "572 KiB");
    assert.equal(bytes(150 * 1024 * 1024), "150 MiB");
  });
  test("GiB is the largest unit", () => assert.equal(bytes(5 * 1024 ** 4), "5120 GiB"));
  test("missing", () => assert.equal(bytes(null), DASH));
});

describe("ms", () => {
  test("two decimals below 100 ms, none above", () => {
    assert.equal(ms(0.5), "0.50 ms");
    assert.equal(ms(12.345), "12.35 ms");
    assert.equal(ms(100), "100 ms");
    assert.equal(ms(1234.5), "1235 ms");
  });
  test("missing", () => assert.equal(ms(undefined), DASH));
});

describe("duration", () => {
  test("seconds, minutes and hours", () => {
    assert.equal(duration(0), "0 s");
    assert.equal(duration(12.4), "12 s");
    assert.equal(duration(59.6), "1 min 00 s");
    assert.equal(duration(185), "3 min 05 s");
    assert.equal(duration(3600), "1 h 00 min");
    assert.equal(duration(3725), "1 h 02 min");
  });
  test("negative clamps to zero; missing or infinite is a dash", () => {
    assert.equal(duration(-5), "0 s");
    assert.equal(duration(null), DASH);
    assert.equal(duration(Number.POSITIVE_INFINITY), DASH);
  });
});

describe("shortId and methodLabel", () => {
  test("ids longer than 8 characters are cut", () => {
    assert.equal(shortId(42), "42");
    assert.equal(shortId("12345678"), "12345678");
    assert.equal(shortId("abcdef0123456789"), "abcdef01");
  });
  test("known methods get their display name, others stay", () => {
    assert.equal(methodLabel("proxns"), "ProxNS");
    assert.equal(methodLabel("ns"), "NS");
    assert.equal(methodLabel("baseline"), "Baseline");
    assert.equal(methodLabel("other"), "other");
  });
});

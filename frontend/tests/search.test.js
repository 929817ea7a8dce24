import assert from "node:assert/strict";
import { test } from "node:test";
import { searchSummary } from "../js/views/experiments.js";

test("an experiment without a search has no search summary", () => {
  assert.equal(searchSummary({ id: 1, sweep: {}, search: null, search_state: null }), null);
  assert.equal(searchSummary({ id: 1, sweep: {} }), null);
});

test("a search summary gives the budget, the outcome, the best job and every point", () => {
  const s = searchSummary({
    search: { target: "pruned_fraction", value: 0.7, tolerance: 0.02, max_jobs: 8, parallel: 2 },
    search_state: {
      status: "met",
      reason: "λ 0.4 removes 70.5 % (target 70.0 % ± 2.0 %)",
      best_job_id: 12,
      default_lam: 0.25,
      points: [
        { job_id: 11, lam: 0.125, value: 0.1, status: "succeeded" },
        { job_id: 12, lam: 0.4, value: 0.705, status: "succeeded" },
        { job_id: 13, lam: 0.5, value: null, status: "failed" },
      ],
    },
  });
  assert.equal(s.budget, "70.0 % ± 2.0 % of the channels pruned");
  assert.equal(s.status, "met");
  assert.equal(s.bestJobId, 12);
  assert.match(s.reason, /70.5 %/);
  assert.deepEqual(
    s.points.map((p) => p.jobId),
    [11, 12, 13],
  );
  assert.match(s.points[1].text, /→ 70.5 %/);
  assert.match(s.points[2].text, /→ —|→ –/);
});

test("a search just created is running, with no best job yet", () => {
  const s = searchSummary({ search: { target: "flops_fraction", value: 0.75, tolerance: 0.05, max_jobs: 4, parallel: 1 } });
  assert.equal(s.status, "running");
  assert.equal(s.bestJobId, null);
  assert.match(s.budget, /of the FLOPs removed/);
  assert.deepEqual(s.points, []);
});

// The jobs list and the job page's pure helpers: curves, which charts show, the accuracy columns,
// the heatmap and the histograms, the filter box's error marking, sorting, the organise helpers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ApiError } from "../js/api.js";
import { epochsLabel, jobWarning } from "../js/format.js";
import { cellText, HEAT_STOPS, heatColor, heatmapData, heatmapRows, histogramBins, histogramCounts, moveCursor } from "../js/heatmap.js";
import { editTags, errorText, parseTags } from "../js/organise.js";
import { chartKinds, curvePoints, histogramChoice, mergeEpoch, mergeMetrics, noCurvesText, notOlder } from "../js/views/job.js";
import { COLUMNS, filterProblem, jobsHash, jobsQuery, jobsState, markWhere, nextSort, parseSort, toOffset } from "../js/views/jobs.js";

/** Epoch rows as the API numbers them: 3 training epochs, then 2 fine-tune epochs numbered 4 and 5. */
function epochs({ train = 3, finetune = 2 } = {}) {
  const rows = [];
  for (let e = 1; e <= train + finetune; e += 1) {
    const ft = e > train;
    rows.push({
      phase: ft ? "finetune" : "train",
      epoch: e,
      epochs: train + finetune,
      test_acc: 0.5 + e / 100,
      train_loss: 1 / e,
      zero_fraction: ft ? null : e / 10,
      layers: ft
        ? null
        : [
            { name: "features.1", total: 8, zeros: e, hist: [e, 8 - e, 0] },
            { name: "features.4", total: 16, zeros: 2 * e, hist: [2 * e, 0, 16 - 2 * e] },
          ],
    });
  }
  return rows;
}

describe("curvePoints", () => {
  test("fine-tune epochs keep the API's numbers: x = epoch, after the training ones", () => {
    const pts = curvePoints(epochs(), "test_acc");
    assert.deepEqual(
      pts.map((p) => [p.phase, p.x]),
      [
        ["train", 1],
        ["train", 2],
        ["train", 3],
        ["finetune", 4],
        ["finetune", 5],
      ],
    );
    // the chart's x axis ends at epochs + finetune_epochs = 5: every point lies on it
    assert.ok(pts.every((p) => p.x >= 1 && p.x <= 5));
    assert.equal(pts[4].y, 0.55);
  });
  test("epochs without the value are left out", () => {
    assert.deepEqual(
      curvePoints(epochs(), "zero_fraction").map((p) => p.x),
      [1, 2, 3],
    );
  });
  test("mergeEpoch keeps epoch order and replaces a repeated epoch", () => {
    const rows = epochs().slice(0, 3);
    const merged = mergeEpoch(mergeEpoch(rows, { epoch: 5, test_acc: 0.9 }), { epoch: 2, test_acc: 0.1 });
    assert.deepEqual(
      merged.map((m) => [m.epoch, m.test_acc]),
      [
        [1, 0.51],
        [2, 0.1],
        [3, 0.53],
        [5, 0.9],
      ],
    );
  });
});

describe("which charts the job page draws", () => {
  const job = (method, status = "succeeded") => ({ status, config: { method, epochs: 3 } });
  test("ξ = 0 only for proxns: NS and the baseline never zero γ exactly in training", () => {
    assert.deepEqual(chartKinds(job("proxns"), epochs()), ["accuracy", "loss", "zero"]);
    assert.deepEqual(chartKinds(job("ns"), epochs()), ["accuracy", "loss"]);
    assert.deepEqual(chartKinds(job("baseline"), epochs()), ["accuracy", "loss"]);
  });
  test("no epochs: no charts, and a note saying why", () => {
    assert.deepEqual(chartKinds(job("proxns", "failed"), []), []);
    assert.match(noCurvesText(job("proxns", "failed")), /failed before finishing an epoch/);
    assert.match(noCurvesText(job("proxns", "queued")), /Waiting for a worker/);
    assert.match(noCurvesText(job("proxns", "cancelled")), /cancelled/);
  });
});

describe("jobs list columns", () => {
  const cell = (label, job) => COLUMNS.find((c) => c.label === label).cell(job, {});
  // job 33 of the issue: acc_slim 98.3 %, fine-tuned 96.7 %
  const job33 = {
    id: 33,
    config: { method: "ns", epochs: 160, finetune_epochs: 20 },
    result: { acc_slim: 0.983, acc_finetuned: 0.967, pruned_fraction: 0.5 },
  };
  test("one label, one number: Acc. slim is acc_slim, Acc. fine-tuned is acc_finetuned", () => {
    assert.equal(cell("Acc. slim", job33), "98.3 %");
    assert.equal(cell("Acc. fine-tuned", job33), "96.7 %");
    assert.equal(cell("Acc. fine-tuned", { ...job33, result: { ...job33.result, acc_finetuned: null } }), "—");
    assert.equal(COLUMNS.find((c) => c.label === "Acc. slim").sort, "acc_slim");
    assert.equal(COLUMNS.find((c) => c.label === "Acc. fine-tuned").sort, "acc_finetuned");
    assert.equal(
      COLUMNS.some((c) => c.label === "Slim acc."),
      false,
    );
  });
  test("width, β, prune ratio, seed and epochs have their own columns", () => {
    const job = {
      id: 1,
      config: { method: "proxns", lam: 0.5, beta: 100, width: 0.25, prune_ratio: null, seed: 3, epochs: 160, finetune_epochs: 20 },
    };
    assert.equal(cell("β", job), "100");
    assert.equal(cell("Width", job), "0.25");
    assert.equal(cell("Prune ratio", job), "—");
    assert.equal(cell("Seed", job), "3");
    assert.equal(cell("Epochs", job), "160 + 20");
    assert.equal(epochsLabel({ epochs: 2 }), "2");
  });
  test("every sortable column sorts by a distinct field", () => {
    const keys = COLUMNS.filter((c) => c.sort).map((c) => c.sort);
    assert.equal(new Set(keys).size, keys.length);
    assert.ok(keys.includes("lam") && keys.includes("width") && keys.includes("seed"));
  });
});

describe("the chance-accuracy flag", () => {
  test("jobWarning finds the API's chance_accuracy warning, and only that code", () => {
    const warning = { code: "chance_accuracy", message: "accuracy 10.0 % is at chance level" };
    const job = { warnings: [{ code: "layers_forced", message: "x" }, warning] };
    assert.deepEqual(jobWarning(job, "chance_accuracy"), warning);
    assert.equal(jobWarning({ warnings: [{ code: "layers_forced", message: "x" }] }, "chance_accuracy"), null);
    assert.equal(jobWarning({}, "chance_accuracy"), null);
  });
});

describe("heatmap", () => {
  test("rows are BN layers in network order, columns the epochs that recorded them", () => {
    const rows = epochs();
    const data = heatmapData([rows[2], rows[4], rows[0], rows[1], rows[3]]); // any order in
    assert.deepEqual(data.layers, ["features.1", "features.4"]);
    assert.deepEqual(data.epochs, [1, 2, 3]); // fine-tune epochs record no layers
    assert.deepEqual(
      data.cells.map((r) => r.map((c) => [c.zeros, c.total, c.share])),
      [
        [
          [1, 8, 1 / 8],
          [2, 8, 2 / 8],
          [3, 8, 3 / 8],
        ],
        [
          [2, 16, 2 / 16],
          [4, 16, 4 / 16],
          [6, 16, 6 / 16],
        ],
      ],
    );
    assert.equal(heatmapRows(data).length, 6);
    assert.equal(cellText(data.cells[1][2]), "features.4, epoch 3: 6 of 16 exactly zero (37.5 %)");
  });
  test("a layer missing from an epoch is an empty cell, not a zero", () => {
    const rows = epochs().slice(0, 2);
    rows[0] = { ...rows[0], layers: [rows[0].layers[0]] };
    const data = heatmapData(rows);
    assert.equal(data.cells[1][0], null);
    assert.equal(data.cells[1][1].zeros, 4);
  });
  test("the colour scale runs from the first stop (0 %) to the last (100 %), darker as it grows", () => {
    assert.equal(heatColor(0), HEAT_STOPS[0]);
    assert.equal(heatColor(1), HEAT_STOPS.at(-1));
    assert.equal(heatColor(0.5), HEAT_STOPS[2]);
    assert.equal(heatColor(-1), HEAT_STOPS[0]);
    assert.equal(heatColor(2), HEAT_STOPS.at(-1));
    const lum = (hex) => {
      const n = Number.parseInt(hex.slice(1), 16);
      return 0.2126 * (n >> 16) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255);
    };
    const ramp = Array.from({ length: 21 }, (_, i) => lum(heatColor(i / 20)));
    for (let i = 1; i < ramp.length; i += 1) assert.ok(ramp[i] < ramp[i - 1], `step ${i}`);
  });
  test("the keyboard cursor moves and stays inside the grid", () => {
    assert.deepEqual(moveCursor({ row: 0, col: 0 }, "ArrowUp", 2, 3), { row: 0, col: 0 });
    assert.deepEqual(moveCursor({ row: 0, col: 0 }, "ArrowDown", 2, 3), { row: 1, col: 0 });
    assert.deepEqual(moveCursor({ row: 1, col: 0 }, "End", 2, 3), { row: 1, col: 2 });
    assert.deepEqual(moveCursor({ row: 1, col: 2 }, "ArrowRight", 2, 3), { row: 1, col: 2 });
    assert.deepEqual(moveCursor({ row: 1, col: 2 }, "Home", 2, 3), { row: 1, col: 0 });
    assert.equal(moveCursor({ row: 0, col: 0 }, "a", 2, 3), null);
  });
});

describe("|ξ| histograms", () => {
  // XI_HIST_EDGES of proxns_core/spec.py, written out again: 10^(e/2) for e in -12..2
  const edges = Array.from({ length: 15 }, (_, i) => 10 ** ((i - 12) / 2));
  /** The worker's binning (sparsity.layer_sparsity): 0 exactly → 0, else 1 + the edges ≤ v. */
  const workerBin = (v) => (v === 0 ? 0 : 1 + edges.filter((e) => e <= v).length);

  test("edges.length + 2 bins: exact zeros, (0, e0), [e_k-1, e_k) …, [e_last, ∞)", () => {
    const bins = histogramBins(edges);
    assert.equal(bins.length, 17);
    assert.deepEqual([bins[0].lo, bins[0].hi], [0, 0]);
    assert.deepEqual([bins[1].lo, bins[1].hi], [0, 1e-6]);
    assert.equal(bins[16].lo, 10);
    assert.equal(bins[16].hi, Number.POSITIVE_INFINITY);
    assert.equal(bins[0].label, "0 (exactly)");
    assert.equal(bins[16].label, "≥ 10");
  });
  test("each value lies inside the bin the worker counts it in", () => {
    const bins = histogramBins(edges);
    for (const v of [0, 1e-9, 1e-6, 2e-6, 3.2e-6, 0.05, 0.2, 0.99, 1, 3.1, 9.99, 10, 1e3]) {
      const b = bins[workerBin(v)];
      if (workerBin(v) === 0) assert.equal(v, 0);
      else if (workerBin(v) === 1) assert.ok(v > 0 && v < b.hi, `${v} in bin 1`);
      else assert.ok(b.lo <= v && v < b.hi, `${v} in [${b.lo}, ${b.hi})`);
    }
  });
  test("counts summed over layers, or one layer's", () => {
    const row = epochs()[2]; // epoch 3
    assert.deepEqual(histogramCounts(row), [3 + 6, 5, 10]);
    assert.deepEqual(histogramCounts(row, "features.4"), [6, 0, 10]);
    assert.deepEqual(histogramCounts(row, "nope"), []);
    assert.deepEqual(histogramCounts({ layers: null }), []);
  });
  test("the default epoch is the last recorded; an unknown layer falls back to all", () => {
    const pick = histogramChoice(epochs(), {});
    assert.equal(pick.row.epoch, 3);
    assert.equal(pick.layer, null);
    assert.deepEqual(pick.epochs, [1, 2, 3]);
    const chosen = histogramChoice(epochs(), { epoch: 1, layer: "features.4" });
    assert.deepEqual([chosen.row.epoch, chosen.layer], [1, "features.4"]);
    assert.equal(histogramChoice(epochs(), { layer: "gone" }).layer, null);
    assert.equal(histogramChoice([], {}), null);
  });
});

describe("the filter box", () => {
  test("markWhere cuts the expression around the offending part", () => {
    const expr = "method = proxns and lamb >= 0.1";
    assert.deepEqual(markWhere(expr, { position: 20, length: 4 }), { before: "method = proxns and ", part: "lamb", after: " >= 0.1" });
    assert.deepEqual(markWhere("lam >=", { position: 6, length: 0 }), { before: "lam >=", part: "", after: "" });
    assert.deepEqual(markWhere("abc", { position: 99, length: 5 }), { before: "abc", part: "", after: "" });
  });
  test("filterProblem picks the 422 entry about where or sort", () => {
    const entry = {
      loc: ["query", "where"],
      msg: "unknown field 'lamb' at position 20",
      type: "filter_field",
      ctx: { position: 20, length: 4 },
    };
    assert.deepEqual(filterProblem(new ApiError(422, [{ loc: ["query", "limit"], msg: "x" }, entry])), entry);
    assert.equal(filterProblem(new ApiError(422, [{ loc: ["query", "limit"], msg: "x" }])), null);
    assert.equal(filterProblem(new ApiError(500, "boom")), null);
    assert.equal(filterProblem(new Error("x")), null);
  });
});

describe("sorting and the address", () => {
  test("a header click sorts ascending, the next one flips it", () => {
    assert.deepEqual(parseSort(""), { key: "id", desc: true });
    assert.deepEqual(parseSort("-acc_slim"), { key: "acc_slim", desc: true });
    assert.equal(nextSort("-id", "lam"), "lam");
    assert.equal(nextSort("lam", "lam"), "-lam");
    assert.equal(nextSort("-lam", "lam"), "lam");
    assert.equal(nextSort("", "id"), "id");
  });
  test("where, sort, tag, q and archived live in the address and go to the API", () => {
    const params = new URLSearchParams("where=lam+%3E%3D+0.1&sort=-acc_slim&tag=best&q=note&archived=all&offset=50");
    const state = jobsState(params);
    assert.equal(state.where, "lam >= 0.1");
    assert.equal(state.sort, "-acc_slim");
    assert.deepEqual(jobsState(new URLSearchParams(jobsHash(state).slice(3))), state);
    assert.deepEqual(jobsQuery(state), {
      status: "",
      method: "",
      experiment_id: "",
      where: "lam >= 0.1",
      q: "note",
      tag: "best",
      archived: "all",
      sort: "-acc_slim",
      limit: 50,
      offset: 50,
    });
  });
});

describe("organise helpers", () => {
  test("parseTags splits on commas and trims; editTags adds new ones in order and removes", () => {
    assert.deepEqual(parseTags(" best, lr sweep ,,x "), ["best", "lr sweep", "x"]);
    assert.deepEqual(editTags(["a", "b"], { added: ["b", "c"] }), ["a", "b", "c"]);
    assert.deepEqual(editTags(["a", "b"], { removed: "a" }), ["b"]);
  });
  test("errorText names the field of each 422 message", () => {
    const err = new ApiError(422, [{ loc: ["body", "tags", 1], msg: "a tag has at most 40 characters" }]);
    assert.equal(errorText(err), "tags.1: a tag has at most 40 characters");
    assert.equal(errorText(new ApiError(404, "job 9 not found")), "job 9 not found");
  });
});

describe("odd addresses and racing answers", () => {
  test("an offset is a non-negative integer: text, negatives and fractions read sensibly", () => {
    assert.equal(jobsState(new URLSearchParams("offset=abc")).offset, 0);
    assert.equal(jobsState(new URLSearchParams("offset=-50")).offset, 0);
    assert.equal(jobsState(new URLSearchParams("offset=Infinity")).offset, 0);
    assert.equal(jobsState(new URLSearchParams("offset=50.7")).offset, 50);
    assert.equal(jobsState(new URLSearchParams("")).offset, 0);
    assert.equal(toOffset(100), 100);
  });
  test("fetched epochs merge with streamed ones by epoch, the fetched row winning", () => {
    const shown = [
      { epoch: 1, test_acc: 0.1 },
      { epoch: 2, test_acc: 0.2 },
      { epoch: 3, test_acc: 0.3 }, // streamed after the fetch began
    ];
    const fetched = [
      { epoch: 1, test_acc: 0.11 },
      { epoch: 2, test_acc: 0.2 },
    ];
    assert.deepEqual(
      mergeMetrics(shown, fetched).map((m) => [m.epoch, m.test_acc]),
      [
        [1, 0.11],
        [2, 0.2],
        [3, 0.3],
      ],
    );
    assert.deepEqual(mergeMetrics(shown, []), shown);
    assert.deepEqual(mergeMetrics([], fetched), fetched);
  });
  test("a job older than the one shown (by updated_at) is not taken", () => {
    const shown = { updated_at: "2026-01-01T10:00:05Z" };
    assert.equal(notOlder(shown, { updated_at: "2026-01-01T10:00:01Z" }), false);
    assert.equal(notOlder(shown, { updated_at: "2026-01-01T10:00:05Z" }), true);
    assert.equal(notOlder(shown, { updated_at: "2026-01-01T10:00:09Z" }), true);
    assert.equal(notOlder(null, { updated_at: "2026-01-01T10:00:01Z" }), true);
    assert.equal(notOlder(shown, {}), true);
  });
});

// torchvision networks in the dashboard (issue 11): the pure parts of the form, the job page and the
// layer chart.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { layerLayout, layerNumbered, MIN_LAYER_BAND } from "../js/charts.js";
import { uploadParams, weightsChoices } from "../js/form.js";
import { modelLabel } from "../js/format.js";
import { archFieldVisibility, archGroups, archInfo } from "../js/rules.js";
import { slimFidelity } from "../js/views/job.js";

const arch = (name, family, takes) => ({
  name,
  family,
  depths: family === "paper" ? [11, 19] : [],
  default_depth: family === "paper" ? 19 : null,
  takes_depth: family === "paper",
  takes_width: family === "paper",
  takes_prune_stream: takes,
});
const META = {
  archs: [
    arch("vgg", "paper", false),
    arch("resnet", "paper", true),
    arch("resnet18", "torchvision", false),
    arch("densenet121", "torchvision", false),
  ],
  datasets: [
    { name: "digits", available: true, num_classes: 10 },
    { name: "cifar100", available: false, num_classes: 100 },
    { name: "imagefolder", available: false, num_classes: null },
  ],
};

describe("modelLabel", () => {
  test("the paper's networks: arch-depth ×width", () => {
    assert.equal(modelLabel({ arch: "vgg", depth: 11, width: 0.25 }), "vgg-11 ×0.25");
    assert.equal(modelLabel({ arch: "resnet", depth: 164, width: 1 }, { withWidth: false }), "resnet-164");
  });
  test("a torchvision network by its name alone: never resnet18-null", () => {
    assert.equal(modelLabel({ arch: "resnet18", depth: null, width: 1 }), "resnet18");
    assert.equal(modelLabel({ arch: "densenet121", width: 1 }), "densenet121");
    assert.equal(modelLabel({}), "—");
  });
});

describe("architectures in the form", () => {
  test("grouped: the paper's networks, then torchvision's", () => {
    assert.deepEqual(archGroups(META), [
      { label: "The paper's networks", names: ["vgg", "resnet"] },
      { label: "torchvision", names: ["resnet18", "densenet121"] },
    ]);
    assert.deepEqual(archGroups({ archs: [{ name: "vgg" }] }), [{ label: "The paper's networks", names: ["vgg"] }]);
    assert.deepEqual(archGroups({}), []);
  });
  test("depth and width only for the paper's networks, prune_stream where meta says", () => {
    assert.deepEqual(archFieldVisibility(META, "vgg"), { depth: true, width: true, prune_stream: false });
    assert.deepEqual(archFieldVisibility(META, "resnet"), { depth: true, width: true, prune_stream: true });
    assert.deepEqual(archFieldVisibility(META, "resnet18"), { depth: false, width: false, prune_stream: false });
    assert.equal(archInfo(META, "nope").name, "nope");
  });
});

describe("uploading weights from the form", () => {
  test("a torchvision network: arch and classes, no depth or width", () => {
    const { params, error } = uploadParams(META, { arch: "resnet18", depth: "19", width: "0.5", dataset: "digits" }, "r18.pt");
    assert.equal(error, undefined);
    assert.deepEqual(params, { arch: "resnet18", num_classes: 10, name: "r18.pt" });
  });
  test("a paper network: the depth and width set in the form, unset ones left to the server", () => {
    assert.deepEqual(uploadParams(META, { arch: "vgg", depth: "11", width: "0.25", dataset: "cifar100" }).params, {
      arch: "vgg",
      depth: 11,
      width: 0.25,
      num_classes: 100,
    });
    assert.deepEqual(uploadParams(META, { arch: "vgg", depth: "", width: "", dataset: "digits" }).params, { arch: "vgg", num_classes: 10 });
  });
  test("a data set whose classes are not known is refused with a way out", () => {
    const { params, error } = uploadParams(META, { arch: "vgg", dataset: "imagefolder" });
    assert.equal(params, undefined);
    assert.match(error, /imagefolder/);
    assert.match(error, /--classes N/);
  });
  test("the uploads' labels name the network as people read it", () => {
    const uploads = [
      { ref: "weights:2", name: "r18", arch: "resnet18", depth: null, width: 1, num_classes: 10 },
      { ref: "weights:1", name: "v", arch: "vgg", depth: 11, width: 0.25, num_classes: 10 },
    ];
    assert.deepEqual(
      weightsChoices(uploads).map((c) => c.label),
      ["none (random start)", "r18: resnet18, 10 classes (weights:2)", "v: vgg-11 ×0.25, 10 classes (weights:1)"],
    );
  });
});

describe("slimFidelity", () => {
  test("exact: the masked accuracy and the gap", () => {
    const f = slimFidelity({ acc_slim: 0.9, acc_masked: 0.9, slim_exact: true, inexact_layers: {} });
    assert.deepEqual(f, { masked: 0.9, gap: 0, exact: true, inexact: [] });
  });
  test("not exact: the consumers with their reasons", () => {
    const f = slimFidelity({
      acc_slim: 0.8,
      acc_masked: 0.85,
      slim_exact: false,
      inexact_layers: { "features.3.conv": "input scaled by squeeze-excitation" },
    });
    assert.equal(f.exact, false);
    assert.ok(Math.abs(f.gap + 0.05) < 1e-12);
    assert.deepEqual(f.inexact, [["features.3.conv", "input scaled by squeeze-excitation"]]);
  });
  test("an older result without the fields", () => {
    assert.deepEqual(slimFidelity({ acc_slim: 0.9 }), { masked: null, gap: null, exact: null, inexact: [] });
  });
});

describe("layer chart layout", () => {
  test("a few layers fill the width asked for and are all numbered", () => {
    const l = layerLayout(16, 900);
    assert.equal(l.width, 900);
    assert.equal(l.labelStep, 1);
  });
  test("densenet121's 120 BN layers: columns never thinner than the minimum, numbers spaced apart", () => {
    for (const width of [320, 640, 900]) {
      const l = layerLayout(120, width);
      assert.ok(l.band >= MIN_LAYER_BAND - 1e-9, `${width}: band ${l.band}`);
      assert.ok(l.width >= width);
      assert.ok(l.labelStep * l.band >= 18, `${width}: step ${l.labelStep}`);
      const numbered = Array.from({ length: 120 }, (_, i) => i + 1).filter((n) => layerNumbered(n, l.labelStep));
      assert.ok(numbered.length >= 6 && numbered.length <= 40, `${width}: ${numbered.length} numbers`);
      assert.equal(numbered[0], 1);
    }
    assert.equal(layerLayout(120, 320).width, 58 + 16 + 120 * MIN_LAYER_BAND);
  });
  test("numbers are layer 1 and the multiples of the step", () => {
    assert.deepEqual(
      [1, 2, 5, 9, 10, 15, 20].filter((n) => layerNumbered(n, 5)),
      [1, 5, 10, 15, 20],
    );
  });
});

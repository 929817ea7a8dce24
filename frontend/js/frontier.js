// The accuracy / compression frontier: which jobs no other job beats on both axes, per method, and
// the plot that draws it. The computations are pure (node tests them); frontierPlot builds the SVG
// from charts.js's pieces, so the experiment page and the compare page draw the same figure.

import { scatterPlot } from "./charts.js";

/**
 * What the x axis measures, as a share in [0, 1] where bigger means a smaller network.
 * `value(point)` is null when the point lacks the numbers (e.g. no FLOPs counted).
 */
export const X_AXES = {
  pruned: { label: "channels pruned (%)", short: "channels pruned", value: (p) => finite(p.pruned_fraction) },
  flops: { label: "FLOPs removed (%)", short: "FLOPs removed", value: (p) => removedShare(p.flops_slim, p.flops_full) },
  params: { label: "parameters removed (%)", short: "parameters removed", value: (p) => removedShare(p.params_slim, p.params_full) },
};

/** Which accuracy is the y axis. "final": fine-tuned where the job fine-tuned, else slim. */
export const ACCURACY = {
  final: { label: "slim, fine-tuned where run", pick: (p) => finalAcc(p) },
  slim: { label: "slim, straight after pruning", pick: (p) => p.acc_slim },
  finetuned: { label: "slim after fine-tuning", pick: (p) => p.acc_finetuned },
  full: { label: "full, before pruning", pick: (p) => p.acc_full },
};

/** `v` when it is a finite number, else null. */
export function finite(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** 1 − slim/full: the share removed; null without both counts or with a full count of 0. */
export function removedShare(slim, full) {
  if (finite(slim) === null || finite(full) === null || full <= 0) return null;
  return 1 - slim / full;
}

/** The slimmed model's accuracy (a job's result or a plot point): fine-tuned when it was, else
 *  straight after pruning; null without a result. */
export function finalAcc(result) {
  if (!result) return null;
  return result.acc_finetuned ?? result.acc_slim;
}

/** The x value of an API plot point for the axis `axis` ("pruned", "flops" or "params"). */
export function xValue(point, axis = "pruned") {
  const spec = X_AXES[axis];
  if (!spec) throw new Error(`unknown x axis '${axis}'; axes: ${Object.keys(X_AXES).join(", ")}`);
  return spec.value(point);
}

/** `axis` when it names an x axis, else "pruned" (an address's `?x=` read leniently). */
export function xAxisOrDefault(axis) {
  return Object.hasOwn(X_AXES, axis || "") ? axis : "pruned";
}

/**
 * The points no other point dominates (another has x ≥ and y ≥, one of them strictly), sorted by x
 * ascending (y descending, then their order in `points`, for equal x). Exact duplicates dominate
 * neither each other, so both stay. Points with a non-finite x or y are never on the front.
 * O(n log n): sweep from the largest x down, keeping the best y seen.
 */
export function paretoFront(points, xKey = "x", yKey = "y") {
  const items = points
    .map((p, i) => ({ p, i, x: p[xKey], y: p[yKey] }))
    .filter((it) => Number.isFinite(it.x) && Number.isFinite(it.y))
    .sort((a, b) => b.x - a.x || b.y - a.y || a.i - b.i);
  const front = [];
  let best = Number.NEGATIVE_INFINITY;
  let last = null;
  for (const it of items) {
    if (it.y > best) {
      front.push(it);
      best = it.y;
      last = it;
    } else if (last && it.x === last.x && it.y === last.y) {
      front.push(it); // an exact duplicate of a front point
    }
  }
  front.sort((a, b) => a.x - b.x || b.y - a.y || a.i - b.i);
  return front.map((it) => it.p);
}

/**
 * Mark each point `frontier: true|false` within its method (points with `active === false`, e.g.
 * outside a brush, are left out of the computation and marked false); returns {method: front}.
 */
export function markFrontiers(points) {
  const byMethod = new Map();
  for (const p of points) {
    p.frontier = false;
    if (p.active === false) continue;
    if (!byMethod.has(p.method)) byMethod.set(p.method, []);
    byMethod.get(p.method).push(p);
  }
  const fronts = {};
  for (const [method, pts] of byMethod) {
    fronts[method] = paretoFront(pts, "x", "y");
    for (const p of fronts[method]) p.frontier = true;
  }
  return fronts;
}

/** Whether an API plot point carries the chance-accuracy warning. */
export function isChance(p) {
  return (p.warnings || []).some((w) => w.code === "chance_accuracy");
}

/**
 * The points to plot: those with the chosen accuracy and x value, as {...point, x, y, flagged}.
 * `isActive(point)` (default: all) says which take part in the frontier; the others get
 * `active: false`. Markers on the same spot name each other in `overlaps`.
 */
export function frontierPoints(points, { xAxis = "pruned", accuracy = "final", isActive = () => true } = {}) {
  const pick = ACCURACY[accuracy]?.pick ?? ACCURACY.final.pick;
  const out = [];
  for (const p of points || []) {
    const x = xValue(p, xAxis);
    const y = finite(pick(p));
    if (x === null || y === null) continue;
    out.push({ ...p, x, y, flagged: isChance(p), active: isActive(p) !== false });
  }
  const spot = (p) => `${p.x.toFixed(3)}:${p.y.toFixed(3)}`;
  const bySpot = new Map();
  for (const p of out) bySpot.set(spot(p), [...(bySpot.get(spot(p)) || []), p.job_id]);
  for (const p of out) p.overlaps = bySpot.get(spot(p)).filter((id) => id !== p.job_id);
  markFrontiers(out);
  return out;
}

/**
 * A job's JSON (GET /api/jobs/{id}) as a plot point (the fields of GET /api/experiments/{id}'s
 * `points`), so jobs picked across experiments feed frontierPlot; null for a job with no result.
 */
export function pointFromJob(job) {
  if (!job?.result) return null;
  const cfg = job.config || {};
  const r = job.result;
  const pick = (obj, keys) => Object.fromEntries(keys.map((k) => [k, obj[k] ?? null]));
  return {
    job_id: job.id,
    experiment_id: job.experiment_id ?? null,
    method: cfg.method,
    ...pick(cfg, ["lam", "beta", "seed", "width", "prune_ratio", "epochs", "finetune_epochs", "penalty"]),
    ...pick(r, [
      "pruned_fraction",
      "acc_full",
      "acc_slim",
      "acc_finetuned",
      "params_full",
      "params_slim",
      "flops_full",
      "flops_slim",
      "num_classes",
    ]),
    warnings: job.warnings || [],
  };
}

/** What `data-points` exposes to scripts and tests for each plotted point. */
export function exposedPoints(pts) {
  return pts.map((p) => ({
    job_id: p.job_id,
    method: p.method,
    lam: p.lam,
    beta: p.beta,
    seed: p.seed,
    x: p.x,
    y: p.y,
    params_slim: p.params_slim,
    flops_slim: p.flops_slim,
    frontier: p.frontier === true,
    active: p.active !== false,
    flagged: p.flagged === true,
  }));
}

/**
 * The frontier figure for any set of API plot points (one experiment's, or jobs selected across
 * experiments): accuracy (y) against the chosen compression share (x), each method's frontier drawn
 * as a line through its non-dominated points, dominated markers faded, inactive ones grey.
 *
 * Options: points (API plot points: GET /api/experiments/{id}'s `points`, or the same fields from
 * jobs), xAxis ("pruned" | "flops" | "params"), accuracy (a key of ACCURACY), isActive(point) →
 * bool, title (drawn in the chart, so exports carry it), baseline (accuracy or null), labels (λ
 * labels beside markers, default true), onPoint(kind, point, element, event) as scatterPlot's,
 * selectable (markers offer "select for comparison", default true), width, height. Returns the SVG element; its `data-points` attribute holds exposedPoints(...).
 */
export function frontierPlot({
  points,
  xAxis = "pruned",
  accuracy = "final",
  isActive,
  title = "",
  baseline = null,
  labels = true,
  onPoint,
  width = 720,
  height = 420,
  inactiveNote = "outside the brushed ranges",
  selectable = true,
}) {
  const pts = frontierPoints(points, { xAxis, accuracy, isActive });
  const svg = scatterPlot({
    points: pts,
    baseline,
    yLabel: "test accuracy (%)",
    xLabel: X_AXES[xAxis].label,
    xShort: X_AXES[xAxis].short,
    heading: title,
    frontier: true,
    labels,
    inactiveNote,
    onPoint,
    selectable,
    width,
    height,
  });
  svg.setAttribute("data-points", JSON.stringify(exposedPoints(pts)));
  svg.setAttribute("data-x-axis", xAxis);
  return svg;
}

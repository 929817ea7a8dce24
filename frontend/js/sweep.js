// Sweep arithmetic for the sweep form. Pure functions: no DOM, no fetch.

// Past this many combinations the count is the plain product: enumerating them would stall the
// page, and the server refuses sweeps that large anyway.
const ENUMERATE_LIMIT = 10_000;

/** A list typed in one box: "0.01, 0.05; 1e-3" -> [0.01, 0.05, 0.001]; non-numbers stay text. */
export function parseList(raw) {
  return String(raw)
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((t) => (Number.isNaN(Number(t)) ? t : Number(t)));
}

/** Only the axes with values: an empty list means "not swept", as the form sends it. */
export function sweepAxes(sweep) {
  return Object.entries(sweep || {}).filter(([, values]) => Array.isArray(values) && values.length);
}

/** The product of the list lengths, as sent (1 for no sweep at all). */
export function sweepRequested(sweep) {
  return sweepAxes(sweep).reduce((n, [, values]) => n * values.length, 1);
}

/** Every combination of the axes' values, as {axis: value} objects. */
export function sweepCombinations(sweep) {
  let combos = [{}];
  for (const [axis, values] of sweepAxes(sweep)) {
    combos = combos.flatMap((combo) => values.map((v) => ({ ...combo, [axis]: v })));
  }
  return combos;
}

/**
 * How many jobs a sweep creates. A combination keeps only the method-specific fields its method
 * takes (`methodFields` is meta.method_fields; the method is the swept one, else `baseMethod`);
 * combinations that then coincide make one job, as on the server.
 */
export function sweepJobCount(sweep, { baseMethod = null, methodFields = null } = {}) {
  const requested = sweepRequested(sweep);
  if (requested > ENUMERATE_LIMIT) return requested;
  const specific = new Set(Object.values(methodFields || {}).flat());
  const distinct = new Set();
  for (const combo of sweepCombinations(sweep)) {
    const method = combo.method ?? baseMethod;
    const takes = methodFields?.[method];
    const kept = Object.entries(combo).filter(([axis]) => !takes || !specific.has(axis) || takes.includes(axis));
    distinct.add(JSON.stringify(kept.sort(([a], [b]) => (a < b ? -1 : 1))));
  }
  return distinct.size;
}

// The server's rules as GET /api/meta states them (statuses, which fields each method takes), so
// the views apply them without restating them. Pure functions: no DOM, no fetch.

/** A job whose state can no longer change: its status is one of `meta.finished_statuses`. */
export function isFinished(meta, status) {
  return (meta?.finished_statuses ?? []).includes(status);
}

/** Every method-specific config field (the union of `meta.method_fields`' lists), first seen first. */
export function methodSpecificFields(meta) {
  return [...new Set(Object.values(meta?.method_fields ?? {}).flat())];
}

/** {field: shown} for each method-specific field: shown only when `method`'s list names it. */
export function methodFieldVisibility(meta, method) {
  const takes = new Set(meta?.method_fields?.[method] ?? []);
  return Object.fromEntries(methodSpecificFields(meta).map((name) => [name, takes.has(name)]));
}

/** The methods whose `meta.method_fields` list names `field`, in meta's order. */
export function methodsTaking(meta, field) {
  return Object.entries(meta?.method_fields ?? {})
    .filter(([, fields]) => fields.includes(field))
    .map(([method]) => method);
}

/**
 * Which methods a field applies to, in words: "proxns", "ns, proxns" or "not baseline" (whichever
 * names fewer methods). Empty for a field every method takes, or none names (not method-specific).
 */
export function methodScope(meta, field) {
  const methods = Object.keys(meta?.method_fields ?? {});
  const takers = methodsTaking(meta, field);
  if (!takers.length || takers.length === methods.length) return "";
  const others = methods.filter((m) => !takers.includes(m));
  return takers.length <= others.length ? takers.join(", ") : `not ${others.join(", ")}`;
}

/**
 * The server's default of each method-specific field for `arch` and `method`, read from
 * `meta.defaults` by the shape of its table: keyed by method then arch (its values are tables), or
 * by arch. Fields with no entry there are left out.
 */
export function methodFieldDefaults(meta, arch, method) {
  const defaults = meta?.defaults ?? {};
  const out = {};
  for (const name of methodSpecificFields(meta)) {
    const table = defaults[name];
    if (!table || typeof table !== "object") continue;
    const byMethod = Object.values(table).some((v) => v !== null && typeof v === "object");
    const value = byMethod ? table[method]?.[arch] : table[arch];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** `meta.archs`' entry for `arch` (an empty one for an unknown name). */
export function archInfo(meta, arch) {
  return (meta?.archs ?? []).find((a) => a.name === arch) ?? { name: arch, depths: [] };
}

/** The architectures by family, for a grouped select: [{label, names}], the paper's first, empty groups left out. */
export function archGroups(meta) {
  const archs = meta?.archs ?? [];
  const family = (a) => a.family ?? "paper";
  return [
    { label: "The paper's networks", names: archs.filter((a) => family(a) === "paper").map((a) => a.name) },
    { label: "torchvision", names: archs.filter((a) => family(a) === "torchvision").map((a) => a.name) },
  ].filter((g) => g.names.length);
}

/**
 * {field: shown} for the fields that depend on the architecture: depth and width (the paper's networks;
 * a torchvision network's name fixes its structure) and prune_stream (resnet, densenet), as meta's
 * `takes_*` say. An arch meta does not describe that way takes depth and width, not prune_stream.
 */
export function archFieldVisibility(meta, arch) {
  const info = archInfo(meta, arch);
  return {
    depth: info.takes_depth ?? true,
    width: info.takes_width ?? true,
    prune_stream: info.takes_prune_stream ?? false,
  };
}

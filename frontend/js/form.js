// Training-config form fields, generated from GET /api/meta (its JSON schema, archs, datasets,
// methods and defaults), so the dashboard never restates the config's rules.

import { h } from "./dom.js";
import { num } from "./format.js";

// Layout only: which fieldset a field sits in and a friendlier label. Fields the schema has and
// this list lacks still appear (under "Other"); fields it lists that the schema lacks are skipped.
const GROUPS = [
  ["Data", ["dataset", "train_subset", "test_subset", "data_root", "download"]],
  ["Model", ["arch", "depth", "width"]],
  ["Sparsity", ["method", "lam", "beta", "prune_ratio"]],
  ["Training", ["epochs", "finetune_epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_milestones", "seed", "device"]],
];
const LABELS = {
  dataset: "Data set",
  data_root: "Data folder",
  download: "Download the data set if missing",
  train_subset: "Training images (subset)",
  test_subset: "Test images (subset)",
  arch: "Architecture",
  depth: "Depth",
  width: "Width multiplier",
  method: "Method",
  lam: "λ (ℓ1 weight)",
  beta: "β (coupling weight)",
  prune_ratio: "Prune ratio",
  epochs: "Epochs",
  finetune_epochs: "Fine-tune epochs",
  batch_size: "Batch size",
  lr: "Learning rate",
  momentum: "Momentum",
  weight_decay: "Weight decay",
  lr_milestones: "LR milestones (epochs)",
  seed: "Seed",
  device: "Device",
};
const DEVICE_SUGGESTIONS = ["auto", "cpu", "cuda", "cuda:0", "cuda:1"];

/** The non-null branch of a pydantic `X | None` property. */
function baseType(prop) {
  if (prop.anyOf) {
    const branch = prop.anyOf.find((b) => b.type !== "null");
    return { ...branch, nullable: true };
  }
  return prop;
}

export function cleanMessage(msg) {
  return String(msg).replace(/^Value error, /, "");
}

/**
 * Form state for one training config. Returns {element, read, setValues, fields, errorSlot}.
 * `prefix` keeps ids unique when two forms share a page.
 */
export function configFields(meta, prefix, { onChange } = {}) {
  const schema = meta.schema || { properties: {} };
  const props = schema.properties || {};
  const defaults = meta.defaults || {};
  const plain = defaults.fields || {};
  const fields = {};

  const grouped = new Set(GROUPS.flatMap(([, names]) => names));
  const groups = GROUPS.map(([title, names]) => [title, names.filter((n) => n in props)]);
  const others = Object.keys(props).filter((n) => !grouped.has(n));
  if (others.length) groups.push(["Other", others]);

  const id = (name) => `${prefix}-${name}`;

  function wrap(name, control, { hint, checkbox = false } = {}) {
    const hintEl = hint ? h("div", { class: "hint", id: `${id(name)}-hint` }, hint) : null;
    const errorEl = h("div", { class: "field-error", id: `${id(name)}-error`, "aria-live": "polite", dataset: { errorFor: name } });
    control.id = id(name);
    control.name = name;
    control.setAttribute("aria-describedby", [hintEl && hintEl.id, errorEl.id].filter(Boolean).join(" "));
    const label = h("label", { for: id(name) }, LABELS[name] || props[name]?.title || name);
    const el = checkbox
      ? h("div", { class: "field field-checkbox", dataset: { field: name } }, h("div", { class: "check" }, control, label), hintEl, errorEl)
      : h("div", { class: "field", dataset: { field: name } }, label, control, hintEl, errorEl);
    fields[name] = { el, control, errorEl, name };
    return el;
  }

  function select(options) {
    return h(
      "select",
      {},
      options.map((o) => h("option", { value: o.value, disabled: o.disabled, selected: o.selected, title: o.title }, o.label)),
    );
  }

  function datasetField() {
    const datasets = meta.datasets || [];
    const firstAvailable = datasets.find((d) => d.available);
    const preferred = datasets.find((d) => d.name === plain.dataset && d.available) || firstAvailable;
    const control = select(
      datasets.map((d) => ({
        value: d.name,
        label: d.available ? d.name : `${d.name} (unavailable)`,
        title: d.available ? null : d.reason,
        disabled: !d.available,
        selected: preferred && d.name === preferred.name,
      })),
    );
    const missing = datasets.filter((d) => !d.available);
    const hint = missing.length
      ? h(
          "details",
          { class: "unavailable" },
          h("summary", {}, `Unavailable on this server: ${missing.map((d) => d.name).join(", ")}`),
          h("ul", {}, missing.map((d) => h("li", {}, h("strong", {}, d.name), d.reason ? `: ${d.reason}` : ""))),
        )
      : props.dataset?.description;
    return wrap("dataset", control, { hint });
  }

  function archField() {
    const control = select((meta.archs || []).map((a) => ({ value: a.name, label: a.name, selected: a.name === plain.arch })));
    return wrap("arch", control, { hint: props.arch?.description });
  }

  function depthField() {
    return wrap("depth", h("select", {}), { hint: "" });
  }

  function methodField() {
    const control = select((meta.methods || []).map((m) => ({ value: m, label: m, selected: m === plain.method })));
    return wrap("method", control, { hint: props.method?.description });
  }

  function genericField(name) {
    const prop = baseType(props[name]);
    const hint = props[name].description || "";
    if (prop.type === "boolean") {
      return wrap(name, h("input", { type: "checkbox", checked: plain[name] === true }), { hint, checkbox: true });
    }
    if (prop.enum) {
      const control = select([
        ...(props[name].default === undefined || prop.nullable ? [{ value: "", label: "default" }] : []),
        ...prop.enum.map((v) => ({ value: v, label: v, selected: v === plain[name] })),
      ]);
      return wrap(name, control, { hint });
    }
    if (prop.type === "integer" || prop.type === "number") {
      // No min/max attributes on purpose: the form is `novalidate` and the API's message is the one shown.
      const control = h("input", {
        type: "number",
        step: "any",
        inputmode: prop.type === "integer" ? "numeric" : "decimal",
        placeholder: plain[name] !== null && plain[name] !== undefined ? num(plain[name], 6) : "default",
        dataset: { kind: prop.type },
      });
      return wrap(name, control, { hint });
    }
    if (prop.type === "array") {
      const control = h("input", { type: "text", inputmode: "numeric", placeholder: "default", autocomplete: "off", dataset: { kind: "list" } });
      return wrap(name, control, { hint: hint || "comma-separated" });
    }
    const attrs = { type: "text", autocomplete: "off", placeholder: plain[name] ?? "default" };
    if (name === "device") attrs.list = `${id(name)}-options`;
    const control = h("input", attrs);
    const el = wrap(name, control, { hint });
    if (name === "device") el.append(h("datalist", { id: `${id(name)}-options` }, DEVICE_SUGGESTIONS.map((d) => h("option", { value: d }))));
    return el;
  }

  const builders = { dataset: datasetField, arch: archField, depth: depthField, method: methodField };
  const element = h(
    "div",
    { class: "config-fields" },
    groups
      .filter(([, names]) => names.length)
      .map(([title, names]) => h("fieldset", { class: "group" }, h("legend", {}, title), h("div", { class: "grid" }, names.map((n) => (builders[n] || genericField)(n))))),
  );

  const value = (name) => fields[name]?.control.value;

  /** Per-arch depths and per-method/arch defaults; hide fields the method does not use. */
  function refresh() {
    const arch = value("arch");
    const method = value("method");
    if (fields.depth) {
      const info = (meta.archs || []).find((a) => a.name === arch) || { depths: [] };
      const current = fields.depth.control.value;
      const dflt = defaults.depth?.[arch] ?? info.default_depth;
      const options = [{ value: "", label: `default (${dflt})` }, ...info.depths.map((d) => ({ value: String(d), label: String(d) }))];
      fields.depth.control.replaceChildren(...options.map((o) => h("option", { value: o.value, selected: o.value === current }, o.label)));
      const hint = fields.depth.el.querySelector(".hint");
      if (hint) hint.textContent = info.depth_rule ? `Allowed: ${info.depth_rule}` : "";
    }
    const visible = {
      lam: method !== "baseline",
      beta: method === "proxns",
      prune_ratio: method === "ns",
    };
    for (const [name, show] of Object.entries(visible)) {
      const f = fields[name];
      if (!f) continue;
      f.el.hidden = !show;
      f.control.disabled = !show;
    }
    const perArch = { lam: defaults.lam?.[method]?.[arch], beta: defaults.beta?.[arch], prune_ratio: defaults.prune_ratio?.[arch] };
    for (const [name, d] of Object.entries(perArch)) {
      if (fields[name] && d !== undefined) fields[name].control.placeholder = `default ${num(d, 6)}`;
    }
    if (onChange) onChange();
  }

  for (const name of ["arch", "method"]) fields[name]?.control.addEventListener("change", refresh);
  refresh();

  /** The config dict to send: empty fields left out so the server fills its defaults. */
  function read() {
    const out = {};
    const problems = {};
    for (const [name, f] of Object.entries(fields)) {
      const c = f.control;
      if (c.disabled) continue;
      if (c.type === "checkbox") {
        if (c.checked !== (plain[name] === true)) out[name] = c.checked;
        continue;
      }
      if (c.type === "number" && c.validity.badInput) {
        problems[name] = "not a number";
        continue;
      }
      const raw = c.value.trim();
      if (raw === "") continue;
      if (c.type === "number" || name === "depth") out[name] = Number(raw);
      else if (c.dataset.kind === "list") out[name] = raw.split(/[\s,;]+/).filter(Boolean).map((t) => (Number.isNaN(Number(t)) ? t : Number(t)));
      else out[name] = raw;
    }
    return { config: out, problems };
  }

  /** Fill the form from a (resolved) config, e.g. to run a job again with changes. */
  function setValues(config) {
    for (const name of ["arch", "method"]) if (fields[name] && config[name] !== undefined) fields[name].control.value = config[name];
    refresh();
    for (const [name, v] of Object.entries(config)) {
      const f = fields[name];
      if (!f || v === null || v === undefined) continue;
      if (f.control.type === "checkbox") f.control.checked = Boolean(v);
      else if (Array.isArray(v)) f.control.value = v.join(", ");
      else f.control.value = String(v);
    }
    refresh();
  }

  return { element, read, setValues, fields, refresh };
}

/** Show one message beside a field (or clear it with msg = null). */
export function setFieldError(field, msg) {
  field.errorEl.textContent = msg ? cleanMessage(msg) : "";
  field.el.classList.toggle("has-error", Boolean(msg));
  if (msg) field.control.setAttribute("aria-invalid", "true");
  else field.control.removeAttribute("aria-invalid");
}

/**
 * Place a 422 response's messages: `resolve(loc)` returns the field a loc names, or null for
 * messages that belong to the whole form. Returns the fields that got a message.
 */
export function showValidationErrors(detail, resolve, formErrorEl) {
  const placed = [];
  const general = [];
  const items = Array.isArray(detail) ? detail : [{ loc: [], msg: typeof detail === "string" ? detail : JSON.stringify(detail) }];
  for (const item of items) {
    const field = resolve(item.loc || []);
    if (field) {
      const prev = field.errorEl.textContent;
      setFieldError(field, prev ? `${prev}; ${cleanMessage(item.msg)}` : item.msg);
      placed.push(field);
    } else {
      const where = (item.loc || []).filter((p) => p !== "body").join(".");
      general.push(where ? `${where}: ${cleanMessage(item.msg)}` : cleanMessage(item.msg));
    }
  }
  formErrorEl.replaceChildren(...general.map((g) => h("p", {}, g)));
  formErrorEl.hidden = general.length === 0;
  return placed;
}

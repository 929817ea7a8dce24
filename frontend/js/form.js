// Training-config form fields, generated from GET /api/meta (its JSON schema, archs, datasets,
// methods and defaults), so the dashboard never restates the config's rules.

import { api } from "./api.js";
import { h } from "./dom.js";
import { datasetChoices, deviceChoices, fleetSummary, hasLiveWorkers } from "./fleet.js";
import { modelLabel, num } from "./format.js";
import { archFieldVisibility, archGroups, archInfo, methodFieldDefaults, methodFieldVisibility } from "./rules.js";
import { parseList } from "./sweep.js";

// Layout only: which fieldset a field sits in and a friendlier label. Fields the schema has and
// this list lacks still appear (under "Other"); fields it lists that the schema lacks are skipped.
const GROUPS = [
  ["Data", ["dataset", "train_subset", "test_subset", "data_root", "download", "input_size", "mean", "std"]],
  ["Model", ["arch", "depth", "width", "prune_stream", "init_weights"]],
  ["Sparsity", ["method", "lam", "beta", "prune_ratio", "penalty", "penalty_a", "channel_multiple"]],
  ["Training", ["epochs", "finetune_epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_milestones", "seed", "precise_bn"]],
  ["Hardware", ["device", "precision", "channels_last", "cuda_graphs", "compile"]],
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
  prune_stream: "Also prune the residual / dense stream",
  init_weights: "Starting weights",
  method: "Method",
  lam: "λ (ℓ1 weight)",
  beta: "β (coupling weight)",
  prune_ratio: "Prune ratio",
  penalty: "Sparsity penalty",
  penalty_a: "Penalty shape parameter a",
  channel_multiple: "Round kept channels to a multiple of",
  epochs: "Epochs",
  finetune_epochs: "Fine-tune epochs",
  batch_size: "Batch size",
  lr: "Learning rate",
  momentum: "Momentum",
  weight_decay: "Weight decay",
  lr_milestones: "LR milestones (epochs)",
  seed: "Seed",
  precise_bn: "Re-estimate BN statistics before testing",
  device: "Device",
  input_size: "Input size (pixels)",
  mean: "Normalisation mean (3 numbers)",
  std: "Normalisation std (3 numbers)",
  precision: "Precision",
  channels_last: "Channels-last layout",
  cuda_graphs: "CUDA graphs",
  compile: "torch.compile",
};

// Words kept as they are written when a label is made from a field name the table above lacks.
const ACRONYMS = { bn: "BN", lr: "LR", flops: "FLOPs", cuda: "CUDA", cpu: "CPU", gpu: "GPU", ns: "NS", id: "ID", lam: "λ", beta: "β" };

/**
 * A field's label: LABELS' wording, else one made from its name in sentence case with acronyms
 * kept ("swa_bn_epochs" -> "Swa BN epochs"), never pydantic's title-cased "Precise Bn".
 */
export function fieldLabel(name) {
  if (LABELS[name]) return LABELS[name];
  const words = String(name).split("_").filter(Boolean);
  if (!words.length) return String(name);
  return words
    .map((w, i) => {
      const kept = ACRONYMS[w.toLowerCase()];
      if (kept) return kept;
      return i === 0 ? w[0].toUpperCase() + w.slice(1).toLowerCase() : w.toLowerCase();
    })
    .join(" ");
}

// Per-dataset suggestions. GET /api/meta's `defaults` are the paper's CIFAR settings (VGG-19 ×1,
// 160 epochs): hours of work on digits' 1437 images, which VGG-11 ×0.25 learns in 20 epochs
// (README, "The paper's claim on digits": proxns λ 0.5 prunes about 80 %, NS λ 0.02). Meta has no
// per-dataset defaults, so the table lives here, in this one place; it belongs in the spec
// (e.g. meta.defaults.by_dataset) and should move there. A data set without an entry gets the
// server's defaults (the fields left empty). Depth, width and λ apply only with the suggested arch;
// λ is per method. Suggestions fill only fields the user has not touched.
// Per data set, what the forms suggest: the server's table (GET /api/meta `dataset_suggestions`,
// proxns_core.spec.DATASET_SUGGESTIONS), set once meta has loaded.
let datasetSuggestions = {};
export const SUGGESTED_FIELDS = ["arch", "depth", "width", "epochs", "batch_size", "lam"];

/** Use the server's suggestion table (meta.dataset_suggestions). */
export function useDatasetSuggestions(table) {
  datasetSuggestions = table && typeof table === "object" ? table : {};
}

/** The suggestion for `dataset` as a table ({} for none): λ per method, the rest plain values. */
export function datasetSuggestion(dataset) {
  return datasetSuggestions[dataset] ?? {};
}

/**
 * The value each of `names` should show for `dataset`, `arch` and `method`, as control text:
 * the suggestion, or "" (empty: the server's default) where there is none or it does not apply.
 * Fields in `touched` (the user's) are left out, and so is `arch`: a select without an empty
 * choice (suggestedArch).
 */
export function suggestedValues(dataset, arch, method, names = SUGGESTED_FIELDS, touched = new Set()) {
  const table = datasetSuggestion(dataset);
  const sameArch = table.arch !== undefined && arch === table.arch;
  const value = {
    depth: sameArch ? table.depth : undefined,
    width: sameArch ? table.width : undefined,
    epochs: table.epochs,
    batch_size: table.batch_size,
    lam: sameArch ? table.lam?.[method] : undefined,
  };
  return Object.fromEntries(
    names
      .filter((n) => n !== "arch" && !touched.has(n))
      .map((n) => [n, value[n] === undefined || value[n] === null ? "" : String(value[n])]),
  );
}

/** The arch to select for `dataset`: its suggestion, else the server's default (`plainArch`). */
export function suggestedArch(dataset, plainArch) {
  return datasetSuggestion(dataset).arch ?? plainArch;
}

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

/** [title, names] per fieldset: GROUPS' fields the schema has, then the schema's others under "Other". */
export function fieldGroups(props) {
  const grouped = new Set(GROUPS.flatMap(([, names]) => names));
  const groups = GROUPS.map(([title, names]) => [title, names.filter((n) => n in props)]);
  const others = Object.keys(props).filter((n) => !grouped.has(n));
  if (others.length) groups.push(["Other", others]);
  return groups.filter(([, names]) => names.length);
}

// Field builders. `ctx` is one form's state: {meta, prefix, props, defaults, plain, fields}; each
// builder registers its field in ctx.fields as {el, control, errorEl, name}.

/** A field's label, control, hint and error slot, with the ids and aria links between them. */
function wrapField(ctx, name, control, { hint, checkbox = false } = {}) {
  const fieldId = `${ctx.prefix}-${name}`;
  const hintEl = hint ? h("div", { class: "hint", id: `${fieldId}-hint` }, hint) : null;
  const errorEl = h("div", { class: "field-error", id: `${fieldId}-error`, "aria-live": "polite", dataset: { errorFor: name } });
  control.id = fieldId;
  control.name = name;
  control.setAttribute("aria-describedby", [hintEl?.id, errorEl.id].filter(Boolean).join(" "));
  const label = h("label", { for: fieldId }, fieldLabel(name));
  const el = checkbox
    ? h("div", { class: "field field-checkbox", dataset: { field: name } }, h("div", { class: "check" }, control, label), hintEl, errorEl)
    : h("div", { class: "field", dataset: { field: name } }, label, control, hintEl, errorEl);
  ctx.fields[name] = { el, control, errorEl, name };
  // Any event on a control is the user's (the form's own writes fire none): suggestions leave it alone.
  const touch = () => {
    ctx.touched.add(name);
    delete el.dataset.suggested;
  };
  control.addEventListener("input", touch);
  control.addEventListener("change", touch);
  return el;
}

function selectControl(options) {
  return h(
    "select",
    {},
    options.map((o) => h("option", { value: o.value, disabled: o.disabled, selected: o.selected, title: o.title }, o.label)),
  );
}

/** The data sets this server (or, with live workers, the fleet) cannot load, with the reasons, folded away. */
function unavailableDatasets(missing, where) {
  return h(
    "details",
    { class: "unavailable", id: "datasets-unavailable" },
    h("summary", {}, `Unavailable ${where}: ${missing.map((d) => d.name).join(", ")}`),
    h(
      "ul",
      {},
      missing.map((d) => h("li", {}, h("strong", {}, d.name), d.reason ? `: ${d.reason}` : "")),
    ),
  );
}

function datasetField(ctx) {
  const datasets = datasetChoices(ctx.meta);
  const firstAvailable = datasets.find((d) => d.available);
  const preferred = datasets.find((d) => d.name === ctx.plain.dataset && d.available) || firstAvailable;
  const control = selectControl(
    datasets.map((d) => ({
      value: d.name,
      label: d.available ? d.name : `${d.name} (unavailable)`,
      title: d.available ? null : d.reason,
      disabled: !d.available,
      selected: preferred && d.name === preferred.name,
    })),
  );
  const missing = datasets.filter((d) => !d.available);
  const where = hasLiveWorkers(ctx.meta.fleet) ? "on the live workers" : "on this server";
  return wrapField(ctx, "dataset", control, {
    hint: missing.length ? unavailableDatasets(missing, where) : ctx.props.dataset?.description,
  });
}

/** The architectures grouped: the paper's networks, then torchvision's (meta.archs' `family`). */
function archField(ctx) {
  const control = h(
    "select",
    {},
    archGroups(ctx.meta).map((g) =>
      h(
        "optgroup",
        { label: g.label },
        g.names.map((name) => h("option", { value: name, selected: name === ctx.plain.arch }, name)),
      ),
    ),
  );
  return wrapField(ctx, "arch", control, { hint: ctx.props.arch?.description });
}

/** Its options depend on the architecture: refreshDepth fills them. */
function depthField(ctx) {
  return wrapField(ctx, "depth", h("select", {}), { hint: "" });
}

function methodField(ctx) {
  const control = selectControl((ctx.meta.methods || []).map((m) => ({ value: m, label: m, selected: m === ctx.plain.method })));
  return wrapField(ctx, "method", control, { hint: ctx.props.method?.description });
}

function enumControl(ctx, name, prop) {
  const allowDefault = ctx.props[name].default === undefined || prop.nullable;
  return selectControl([
    ...(allowDefault ? [{ value: "", label: "default" }] : []),
    ...prop.enum.map((v) => ({ value: v, label: v, selected: v === ctx.plain[name] })),
  ]);
}

function numberControl(plainValue, type) {
  // No min/max attributes on purpose: the form is `novalidate` and the API's message is the one shown.
  return h("input", {
    type: "number",
    step: "any",
    inputmode: type === "integer" ? "numeric" : "decimal",
    placeholder: plainValue !== null && plainValue !== undefined ? num(plainValue, 6) : "default",
    dataset: { kind: type },
  });
}

function listControl() {
  return h("input", { type: "text", inputmode: "numeric", placeholder: "default", autocomplete: "off", dataset: { kind: "list" } });
}

/** The device field's hint: what the live workers offer, then the schema's description. */
function deviceHint(fleet, description) {
  const summary = fleetSummary(fleet);
  if (summary.state !== "live") return description;
  return `Live workers offer: ${summary.devices.join("; ")}. ${description || ""}`.trim();
}

/** A free-text field; `device` also gets a list of suggestions (the devices the live workers have). */
function textField(ctx, name, hint) {
  const optionsId = `${ctx.prefix}-${name}-options`;
  const attrs = { type: "text", autocomplete: "off", placeholder: ctx.plain[name] ?? "default" };
  if (name === "device") attrs.list = optionsId;
  const el = wrapField(ctx, name, h("input", attrs), { hint: name === "device" ? deviceHint(ctx.meta.fleet, hint) : hint });
  if (name === "device")
    el.append(
      h(
        "datalist",
        { id: optionsId },
        deviceChoices(ctx.meta.fleet).map((d) => h("option", { value: d })),
      ),
    );
  return el;
}

/** A field built from its JSON-schema property alone. */
function schemaField(ctx, name) {
  const prop = baseType(ctx.props[name]);
  const hint = ctx.props[name].description || "";
  if (prop.type === "boolean" && prop.nullable) {
    // unset means "decided by the device" (e.g. channels-last on CUDA): auto, on or off
    const control = selectControl([
      { value: "", label: "auto" },
      { value: "true", label: "on" },
      { value: "false", label: "off" },
    ]);
    control.dataset.kind = "tristate";
    return wrapField(ctx, name, control, { hint });
  }
  if (prop.type === "boolean") {
    return wrapField(ctx, name, h("input", { type: "checkbox", checked: ctx.plain[name] === true }), { hint, checkbox: true });
  }
  if (prop.enum) return wrapField(ctx, name, enumControl(ctx, name, prop), { hint });
  if (prop.type === "integer" || prop.type === "number") return wrapField(ctx, name, numberControl(ctx.plain[name], prop.type), { hint });
  if (prop.type === "array") return wrapField(ctx, name, listControl(), { hint: hint || "comma-separated" });
  return textField(ctx, name, hint);
}

/**
 * The choices of the starting-weights select: none, then the user's uploads (GET /api/weights
 * items) as `weights:ID`; a `current` reference missing from them (a copied job's) is kept.
 */
export function weightsChoices(uploads, current) {
  const choices = [{ value: "", label: "none (random start)" }];
  for (const w of uploads || []) {
    choices.push({ value: w.ref, label: `${w.name}: ${modelLabel(w)}, ${w.num_classes} classes (${w.ref})` });
  }
  if (current && !choices.some((c) => c.value === current)) choices.push({ value: current, label: current });
  return choices;
}

/**
 * The query of POST /api/weights for a file chosen in the form: the network the form names now (`values`:
 * {arch, depth, width, dataset} as the controls hold them, "" for unset) and the data set's classes.
 * Returns {params} or {error} (a data set whose classes this server does not know).
 */
export function uploadParams(meta, values, fileName = "") {
  const takes = archFieldVisibility(meta, values.arch);
  const dataset = (meta?.datasets ?? []).find((d) => d.name === values.dataset);
  const classes = dataset?.num_classes;
  if (!Number.isInteger(classes)) {
    return {
      error: `The classes of data set ${values.dataset || "(none)"} are not known here: choose another data set, or upload with proxns weights upload --classes N.`,
    };
  }
  const params = { arch: values.arch, num_classes: classes };
  if (takes.depth && values.depth) params.depth = Number(values.depth);
  if (takes.width && values.width) params.width = Number(values.width);
  const name = String(fileName).trim().slice(0, 200);
  if (name) params.name = name;
  return { params };
}

/** Upload the chosen file for the network the form names, then select the new upload. */
async function uploadChosenFile(ctx, fileInput, status) {
  const file = fileInput.files?.[0];
  if (!file) return;
  const field = ctx.fields.init_weights;
  const value = (name) => (ctx.fields[name] && !ctx.fields[name].control.disabled ? ctx.fields[name].control.value.trim() : "");
  const { params, error } = uploadParams(
    ctx.meta,
    { arch: value("arch"), depth: value("depth"), width: value("width"), dataset: value("dataset") },
    file.name,
  );
  setFieldError(field, null);
  if (error) {
    setFieldError(field, error);
    fileInput.value = "";
    return;
  }
  status.textContent = `Uploading ${file.name}…`;
  try {
    const made = await api.uploadWeights(file, params);
    ctx.meta.weights = [made, ...(ctx.meta.weights || [])];
    const [option] = weightsChoices([made]).slice(1);
    field.control.append(h("option", { value: option.value }, option.label));
    field.control.value = made.ref;
    status.textContent = made.note ? `Uploaded as ${made.ref}. Note: ${made.note}.` : `Uploaded as ${made.ref}.`;
  } catch (err) {
    status.textContent = "";
    const detail = Array.isArray(err.detail) ? err.detail.map((d) => cleanMessage(d.msg)).join("; ") : err.message;
    setFieldError(field, `Upload refused: ${detail}`);
  } finally {
    fileInput.value = "";
  }
}

function weightsField(ctx) {
  const uploads = ctx.meta.weights || [];
  const hint = uploads.length
    ? "Start from an uploaded state_dict (lr then defaults to 0.01)."
    : "None uploaded yet: Upload… sends a state_dict (torch.save or safetensors) for the network and data set chosen in this form.";
  const el = wrapField(ctx, "init_weights", selectControl(weightsChoices(uploads)), { hint });
  const fileId = `${ctx.prefix}-init_weights-file`;
  const status = h("span", { class: "upload-status hint", id: `${fileId}-status`, role: "status", "aria-live": "polite" });
  const fileInput = h("input", {
    type: "file",
    id: fileId,
    class: "upload-file",
    accept: ".pt,.pth,.bin,.safetensors",
    "aria-describedby": status.id,
  });
  fileInput.addEventListener("change", () => uploadChosenFile(ctx, fileInput, status));
  el.querySelector("select").after(
    h("div", { class: "upload-row" }, h("label", { for: fileId, class: "upload-label" }, "Upload…"), fileInput, status),
  );
  return el;
}

const FIELD_BUILDERS = { dataset: datasetField, arch: archField, depth: depthField, method: methodField, init_weights: weightsField };

function groupFieldset(ctx, title, names) {
  const build = (name) => (FIELD_BUILDERS[name] || schemaField)(ctx, name);
  return h("fieldset", { class: "group" }, h("legend", {}, title), h("div", { class: "grid" }, names.map(build)));
}

// Refreshing after the architecture or method changes.

/** The depths the architecture allows, keeping the chosen one where it still applies. */
function refreshDepth(ctx, arch) {
  const field = ctx.fields.depth;
  if (!field) return;
  const info = archInfo(ctx.meta, arch);
  const current = field.control.value;
  const dflt = ctx.defaults.depth?.[arch] ?? info.default_depth;
  const options = [
    { value: "", label: dflt === null || dflt === undefined ? "default" : `default (${dflt})` },
    ...info.depths.map((d) => ({ value: String(d), label: String(d) })),
  ];
  field.control.replaceChildren(...options.map((o) => h("option", { value: o.value, selected: o.value === current }, o.label)));
  const hint = field.el.querySelector(".hint");
  if (hint) hint.textContent = info.depth_rule ? `Allowed: ${info.depth_rule}` : "";
}

/** Show and enable depth, width and prune_stream only where the architecture takes them (meta.archs). */
function refreshArchFields(ctx, arch) {
  for (const [name, show] of Object.entries(archFieldVisibility(ctx.meta, arch))) {
    const f = ctx.fields[name];
    if (!f) continue;
    f.el.hidden = !show;
    f.control.disabled = !show;
  }
}

/** Show and enable only the method-specific fields the method takes (meta.method_fields). */
function refreshMethodFields(ctx, method) {
  for (const [name, show] of Object.entries(methodFieldVisibility(ctx.meta, method))) {
    const f = ctx.fields[name];
    if (!f) continue;
    f.el.hidden = !show;
    f.control.disabled = !show;
  }
}

/** Defaults that depend on the architecture or method, shown greyed inside their fields. */
function refreshPlaceholders(ctx, arch, method) {
  for (const [name, d] of Object.entries(methodFieldDefaults(ctx.meta, arch, method))) {
    if (ctx.fields[name]) ctx.fields[name].control.placeholder = `default ${num(d, 6)}`;
  }
}

// Reading and filling the form.

/** A filled-in control's value as the config wants it. */
export function controlValue(name, control) {
  const raw = control.value.trim();
  if (control.type === "number" || name === "depth") return Number(raw);
  if (control.dataset.kind === "list") return parseList(raw);
  if (control.dataset.kind === "tristate") return raw === "true";
  return raw;
}

/** The config dict to send: empty fields left out so the server fills its defaults. */
function readConfig(fields, plain) {
  const config = {};
  const problems = {};
  for (const [name, { control }] of Object.entries(fields)) {
    if (control.disabled) continue;
    if (control.type === "checkbox") {
      if (control.checked !== (plain[name] === true)) config[name] = control.checked;
    } else if (control.type === "number" && control.validity.badInput) {
      problems[name] = "not a number";
    } else if (control.value.trim() !== "") {
      config[name] = controlValue(name, control);
    }
  }
  return { config, problems };
}

/** Fill the form from a (resolved) config, e.g. to run a job again with changes; the values it sets are the user's. */
function setConfigValues(fields, config, refresh, touched) {
  for (const [name, v] of Object.entries(config)) if (fields[name] && v !== null && v !== undefined) touched.add(name);
  for (const name of ["arch", "method"]) if (fields[name] && config[name] !== undefined) fields[name].control.value = config[name];
  refresh();
  for (const [name, v] of Object.entries(config)) {
    const f = fields[name];
    if (!f || v === null || v === undefined) continue;
    if (f.control.type === "checkbox") f.control.checked = Boolean(v);
    else if (name === "init_weights" && ![...f.control.options].some((o) => o.value === v))
      f.control.append(h("option", { value: v, selected: true }, v));
    else if (Array.isArray(v)) f.control.value = v.join(", ");
    else f.control.value = String(v);
  }
  refresh();
}

/** Select the suggested arch, unless the user chose one (or the suggestion is not offered). */
function suggestArch(ctx, dataset) {
  const field = ctx.fields.arch;
  if (!field || ctx.touched.has("arch") || !ctx.suggest.includes("arch")) return;
  const arch = suggestedArch(dataset, ctx.plain.arch);
  if ([...field.control.options].some((o) => o.value === arch)) field.control.value = arch;
}

/**
 * Write the data set's suggestions into the fields the user has not touched ("" where there is
 * none: the server's default, shown greyed), mark them, and say what was suggested.
 */
function applySuggestions(ctx, dataset, arch, method) {
  const values = suggestedValues(dataset, arch, method, ctx.suggest, ctx.touched);
  const filled = [];
  for (const [name, value] of Object.entries(values)) {
    const f = ctx.fields[name];
    if (!f) continue;
    f.control.value = value;
    if (value !== "" && !f.control.disabled) {
      f.el.dataset.suggested = dataset;
      filled.push(`${fieldLabel(name).toLowerCase()} ${value}`);
    } else delete f.el.dataset.suggested;
  }
  if (ctx.suggestionNote) {
    ctx.suggestionNote.textContent = filled.length ? `Suggested for ${dataset}: ${filled.join(", ")}. Change any of them.` : "";
  }
}

/**
 * Form state for one training config. Returns {element, read, setValues, fields, refresh}.
 * `prefix` keeps ids unique when two forms share a page. `suggest`: the SUGGESTED_FIELDS the
 * chosen data set's suggestions may fill (the sweep form leaves λ to its per-method lists).
 */
export function configFields(meta, prefix, { onChange, suggest = SUGGESTED_FIELDS } = {}) {
  useDatasetSuggestions(meta.dataset_suggestions);
  const props = (meta.schema || { properties: {} }).properties || {};
  const defaults = meta.defaults || {};
  const ctx = { meta, prefix, props, defaults, plain: defaults.fields || {}, fields: {}, touched: new Set(), suggest };
  const element = h(
    "div",
    { class: "config-fields" },
    fieldGroups(props).map(([title, names]) => groupFieldset(ctx, title, names)),
  );
  const { fields } = ctx;
  if (fields.dataset) {
    ctx.suggestionNote = h("p", { class: "suggestion-note", id: `${prefix}-suggestion`, "aria-live": "polite" });
    fields.dataset.errorEl.before(ctx.suggestionNote);
    const described = fields.dataset.control.getAttribute("aria-describedby");
    fields.dataset.control.setAttribute("aria-describedby", `${described} ${ctx.suggestionNote.id}`.trim());
  }

  /** Suggestions for the data set; per-arch depths and per-method/arch defaults; hide fields the method does not take. */
  function refresh() {
    const dataset = fields.dataset?.control.value;
    suggestArch(ctx, dataset);
    const arch = fields.arch?.control.value;
    const method = fields.method?.control.value;
    refreshDepth(ctx, arch);
    refreshArchFields(ctx, arch);
    refreshMethodFields(ctx, method);
    refreshPlaceholders(ctx, arch, method);
    applySuggestions(ctx, dataset, arch, method);
    if (onChange) onChange();
  }

  for (const name of ["dataset", "arch", "method"]) fields[name]?.control.addEventListener("change", refresh);
  refresh();
  return {
    element,
    read: () => readConfig(fields, ctx.plain),
    setValues: (config) => setConfigValues(fields, config, refresh, ctx.touched),
    fields,
    refresh,
  };
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

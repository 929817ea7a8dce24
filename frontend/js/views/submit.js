// The two submit forms: one job, and a sweep (an experiment: a base config times value lists),
// which can also add jobs to an existing experiment (#/sweep?experiment=ID).

import { ApiError, api, loadMeta } from "../api.js";
import { h, mount } from "../dom.js";
import { fleetSummary } from "../fleet.js";
import { configFields, datasetSuggestion, SUGGESTED_FIELDS, setFieldError, showValidationErrors } from "../form.js";
import { num } from "../format.js";
import { methodFieldDefaults, methodScope, methodSpecificFields } from "../rules.js";
import { countSummary, createDryRun, parseList, submitLabel, sweepBody, sweptFields } from "../sweep.js";

// The value lists the sweep form offers (POST /api/experiments `sweep`): [name, label, word, example].
// The method-specific ones (meta.method_fields) are per method (`sweep.by_method`), the rest shared.
const LIST_AXES = [
  ["lam", "λ values", "λ", "e.g. 0.001, 0.005, 0.01"],
  ["beta", "β values", "β", "e.g. 10, 100"],
  ["prune_ratio", "Prune ratios", "prune ratio", "e.g. 0.5, 0.7"],
  ["seed", "Seeds", "seed", "e.g. 0, 1, 2"],
];
const REJECTED = "The server rejected some values; see the messages beside the fields.";

/** An axis's label, with the methods it applies to when not all take it: "β values (proxns)". */
export function sweepAxisLabel(meta, name, label) {
  const scope = methodScope(meta, name);
  return scope ? `${label} (${scope})` : label;
}

/** A loc's field name: the first entry after the `skip` prefix that names a field in `fields`. */
function fieldFromLoc(loc, fields, skip) {
  const rest = loc.slice(skip);
  for (const part of rest) if (typeof part === "string" && fields[part]) return fields[part];
  return null;
}

function clearErrors(fieldsList, formError) {
  for (const fields of fieldsList) for (const f of Object.values(fields)) setFieldError(f, null);
  formError.hidden = true;
  formError.replaceChildren();
}

function focusFirst(placed, formError) {
  if (placed.length) {
    placed.sort((a, b) => (a.el.compareDocumentPosition(b.el) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
    placed[0].control.focus();
  } else if (!formError.hidden) {
    formError.focus();
  }
}

function submitBar(label) {
  const button = h("button", { type: "submit", class: "primary" }, label);
  const status = h("span", { class: "submit-status", role: "status", "aria-live": "polite" });
  return { bar: h("div", { class: "form-actions" }, button, status), button, status };
}

function loadingView(root, title) {
  mount(root, h("h1", {}, title), h("p", { class: "muted" }, "Loading the server's options…"));
}

/** Mark each of the form's own problems ({name: message}) on its field and focus the first. */
function showProblems(problems, fieldFor, formError) {
  const placed = Object.entries(problems).map(([name, msg]) => {
    const f = fieldFor(name);
    setFieldError(f, msg);
    return f;
  });
  focusFirst(placed, formError);
}

/**
 * POST what `send()` sends, then open the page `pageFor(created)` names; on failure place the
 * server's messages (`resolve(loc)` finds a loc's field) and focus the first.
 */
async function sendForm({ button, status, formError }, send, pageFor, resolve) {
  button.disabled = true;
  status.textContent = "Submitting…";
  try {
    const created = await send();
    status.textContent = "Submitted.";
    location.hash = pageFor(created);
  } catch (err) {
    status.textContent = err.status === 422 ? REJECTED : "";
    const placed = showValidationErrors(err.status === 422 ? err.detail : err.message, resolve, formError);
    focusFirst(placed, formError);
  } finally {
    button.disabled = false;
  }
}

/** `meta` with the fleet and data sets as they are now (loadMeta's copy is from the first page load). */
async function withCurrentFleet(meta) {
  try {
    const [now, weights] = await Promise.all([api.meta(), api.listWeights().catch(() => ({ items: [] }))]);
    return { ...meta, fleet: now.fleet, datasets: now.datasets, weights: weights.items };
  } catch (err) {
    if (err.status === 401) throw err;
    return meta;
  }
}

/** What the workers offer (devices, data sets), or why jobs would wait, above a form. */
export function fleetPanel(fleet) {
  const s = fleetSummary(fleet);
  return h(
    "section",
    { class: `fleet-panel fleet-${s.state}`, id: "fleet-panel", "aria-label": "Workers", dataset: { state: s.state } },
    h("p", { class: "fleet-title" }, s.title),
    s.devices.length ? h("p", {}, h("strong", {}, "Devices: "), h("span", { id: "fleet-devices" }, s.devices.join("; "))) : null,
    s.datasets.length ? h("p", {}, h("strong", {}, "Data sets: "), h("span", { id: "fleet-datasets" }, s.datasets.join(", "))) : null,
  );
}

function formErrorBox() {
  return h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

/** Fill the job form from job `from`'s config ("Run again with changes"). */
async function copyJob(cfg, from, status) {
  try {
    const src = await api.getJob(from);
    cfg.setValues(src.config);
  } catch (err) {
    status.textContent = `Could not copy job ${from}: ${err.message}`;
  }
}

export async function renderNewJob(root, params) {
  loadingView(root, "New job");
  const meta = await withCurrentFleet(await loadMeta());
  const cfg = configFields(meta, "job");
  const formError = formErrorBox();
  const submit = submitBar("Submit job");
  const form = h("form", { class: "config-form", novalidate: true, id: "job-form" }, formError, cfg.element, submit.bar);
  if (params.get("from")) await copyJob(cfg, params.get("from"), submit.status);
  const resolve = (loc) => fieldFromLoc(loc, cfg.fields, 1);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors([cfg.fields], formError);
    const { config, problems } = cfg.read();
    if (Object.keys(problems).length) return showProblems(problems, (n) => cfg.fields[n], formError);
    await sendForm(
      { ...submit, formError },
      () => api.submitJob(config),
      (job) => `#/jobs/${job.id}`,
      resolve,
    );
  });
  mount(
    root,
    h("h1", {}, "New job"),
    h(
      "p",
      { class: "lead" },
      "Train one network with a sparsity method, slim it, and measure it. Leave a field empty to use the server's default, shown greyed inside it.",
    ),
    fleetPanel(meta.fleet),
    form,
  );
}

// The sweep form's own fields. Each is {name, control, errorEl, el} like configFields' fields
// (so setFieldError and showValidationErrors place messages on them), plus read() for the lists.

function sweepErrorSlot(id) {
  return h("div", { class: "field-error", id: `${id}-error`, "aria-live": "polite", dataset: { errorFor: id } });
}

function experimentNameField() {
  const control = h("input", {
    type: "text",
    id: "sweep-name",
    name: "name",
    required: true,
    autocomplete: "off",
    placeholder: "e.g. vgg11 digits λ sweep",
    "aria-describedby": "sweep-name-error",
  });
  const errorEl = sweepErrorSlot("sweep-name");
  const el = h(
    "div",
    { class: "field field-wide", dataset: { field: "name" } },
    h("label", { for: "sweep-name" }, "Experiment name"),
    control,
    errorEl,
  );
  return { name: "name", control, errorEl, el };
}

/** The methods to sweep: checkboxes; they replace the base config's method. */
function sweepMethodField(methods, checked) {
  const boxes = methods.map((m) => h("input", { type: "checkbox", id: `sweep-method-${m}`, value: m, checked: checked.includes(m) }));
  const errorEl = sweepErrorSlot("sweep-method");
  const el = h(
    "fieldset",
    {
      class: "field field-wide checkbox-group",
      dataset: { field: "sweep.method" },
      "aria-describedby": "sweep-method-hint sweep-method-error",
    },
    h("legend", {}, "Methods to compare"),
    h(
      "div",
      { class: "checks" },
      boxes.map((b) => h("div", { class: "check" }, b, h("label", { for: b.id }, b.value))),
    ),
    h("small", { class: "hint", id: "sweep-method-hint" }, "Each method below gets its own λ list, on its own scale."),
    errorEl,
  );
  return { name: "method", control: boxes[0], errorEl, el, read: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/** One value list: a comma-separated text box with id sweep-<key>. */
function sweepListField(key, name, label) {
  const id = `sweep-${key}`;
  const control = h("input", {
    type: "text",
    id,
    name: key,
    inputmode: "decimal",
    autocomplete: "off",
    "aria-describedby": `${id}-hint ${id}-error`,
  });
  const hint = h("small", { class: "hint", id: `${id}-hint` }, "comma-separated");
  const errorEl = sweepErrorSlot(id);
  const el = h("div", { class: "field", dataset: { field: `sweep.${key}` } }, h("label", { for: id }, label), control, hint, errorEl);
  return { name, control, errorEl, el, hint, read: () => parseList(control.value) };
}

/** The lists that are per method (meta.method_fields) and those every job shares (the rest). */
function splitAxes(meta) {
  const specific = new Set(methodSpecificFields(meta));
  return {
    perMethod: LIST_AXES.filter(([name]) => specific.has(name)),
    shared: LIST_AXES.filter(([name]) => !specific.has(name)),
  };
}

/** One method's own lists (`sweep.by_method.<method>`), shown while the method is checked. */
function methodBlock(meta, method, axes) {
  const takes = meta.method_fields?.[method] ?? [];
  const lists = {};
  for (const [name, label] of axes.filter(([n]) => takes.includes(n))) lists[name] = sweepListField(`${method}-${name}`, name, label);
  const body = Object.keys(lists).length
    ? h(
        "div",
        { class: "grid" },
        Object.values(lists).map((f) => f.el),
      )
    : h(
        "p",
        { class: "muted" },
        `${method} takes no ${axes.map(([, , word]) => word).join(", ")}: one job per combination of the shared lists.`,
      );
  const el = h("fieldset", { class: "method-block", id: `sweep-block-${method}`, dataset: { method } }, h("legend", {}, method), body);
  return { method, el, lists };
}

/** {methods, blocks: {method: block}, shared: {axis: field}} for the sweep section. */
function sweepSection(meta, checked) {
  const { perMethod, shared } = splitAxes(meta);
  const methods = meta.methods || [];
  const blocks = Object.fromEntries(methods.map((m) => [m, methodBlock(meta, m, perMethod)]));
  const sharedFields = Object.fromEntries(
    shared.map(([name, label]) => [name, sweepListField(name, name, sweepAxisLabel(meta, name, label))]),
  );
  for (const [name, , , example] of shared) {
    sharedFields[name].control.placeholder = example;
    sharedFields[name].hint.textContent = "comma-separated; every method";
  }
  return { methods: sweepMethodField(methods, checked), blocks, shared: sharedFields };
}

/** {base, sweep} as the form holds them now (CONTRACT: method list, shared lists, by_method). */
function readSweep(meta, section, base) {
  const methods = section.methods.read();
  const byMethod = Object.fromEntries(
    Object.entries(section.blocks).map(([m, b]) => [m, Object.fromEntries(Object.entries(b.lists).map(([n, f]) => [n, f.read()]))]),
  );
  const shared = Object.fromEntries(Object.entries(section.shared).map(([n, f]) => [n, f.read()]));
  return sweepBody({ base, methods, shared, byMethod }, meta.method_fields);
}

/** Every field of the sweep section, for clearing messages. */
function sectionFields(section) {
  const all = { method: section.methods, ...section.shared };
  for (const [m, b] of Object.entries(section.blocks)) for (const [n, f] of Object.entries(b.lists)) all[`${m}.${n}`] = f;
  return all;
}

/**
 * A list's placeholder and hint: examples around the data set's suggestion (λ) or the method's
 * default, and what an empty list means: the stored base's value when adding to an experiment (the
 * server keeps its base), else the method's default.
 */
function listHints(meta, block, { dataset, arch, storedBase }) {
  const defaults = methodFieldDefaults(meta, arch, block.method);
  const suggested = datasetSuggestion(dataset);
  for (const [name, f] of Object.entries(block.lists)) {
    const own = suggested.arch === arch ? suggested.lam?.[block.method] : undefined;
    const centre = name === "lam" ? (own ?? defaults.lam) : null;
    const example = LIST_AXES.find(([n]) => n === name)[3];
    f.control.placeholder = centre ? `e.g. ${[centre / 2, centre, centre * 2].map((v) => num(v, 3)).join(", ")}` : example;
    const stored = storedBase?.[name];
    let empty = "";
    if (stored !== undefined && stored !== null) empty = `; empty: the experiment's ${num(stored, 6)}`;
    else if (defaults[name] !== undefined) empty = `; empty: the default, ${num(defaults[name], 6)}`;
    f.hint.textContent = `comma-separated${empty}`;
  }
}

/** A base field's "swept below" note, made once. */
function sweptNote(field) {
  let note = field.el.querySelector(".swept-note");
  if (!note) {
    note = h("span", { class: "swept-note", id: `${field.control.id}-swept` }, "swept below");
    field.el.querySelector("label").after(note);
  }
  return note;
}

/**
 * The base config beside the sweep: the method is chosen below (its select hidden); a field some
 * list sweeps is disabled with "swept below"; a method-specific field shows while a checked method
 * takes it. Runs after configFields' own refresh, so it has the last word.
 */
function markSwept(meta, cfg, sweep, checked) {
  const methodField = cfg.fields.method;
  if (methodField) {
    methodField.control.hidden = true;
    methodField.control.disabled = true;
    methodField.el.classList.add("swept");
    sweptNote(methodField).textContent = "chosen below, under Methods to compare";
  }
  const swept = sweptFields(sweep);
  const specific = new Set(methodSpecificFields(meta));
  const takers = (name) => checked.filter((m) => (meta.method_fields?.[m] ?? []).includes(name));
  for (const name of new Set([...specific, ...LIST_AXES.map(([n]) => n)])) {
    const f = cfg.fields[name];
    if (!f || name === "method") continue;
    const isSwept = swept.has(name);
    const applies = !specific.has(name) || takers(name).length > 0;
    f.el.hidden = !applies;
    f.control.disabled = !applies || isSwept;
    f.el.classList.toggle("swept", isSwept);
    if (isSwept || f.el.querySelector(".swept-note")) sweptNote(f).hidden = !isSwept;
    // meta.defaults keys λ's defaults by method: with several methods checked there is no one default to show
    const byMethod = Object.values(meta.defaults?.[name] ?? {}).some((v) => v !== null && typeof v === "object");
    if (byMethod && takers(name).length > 1) f.control.placeholder = "default: by method";
  }
}

/** The sweep form: experiment name (a new one), the base config, the sweep, then the count and submit. */
function sweepForm({ formError, nameField, section, sweepError, cfg, bar }) {
  return h(
    "form",
    { class: "config-form", novalidate: true, id: "sweep-form" },
    formError,
    nameField ? h("fieldset", { class: "group" }, h("legend", {}, "Experiment"), h("div", { class: "grid" }, nameField.el)) : null,
    h("h2", { class: "form-section" }, "Base config"),
    h("p", { class: "muted" }, "Every job starts from these values; the sweep below varies the rest."),
    cfg.element,
    h(
      "fieldset",
      { class: "group sweep-axes", id: "sweep-axes" },
      h("legend", {}, "Sweep: one job per combination"),
      h("div", { class: "grid" }, section.methods.el),
      h(
        "div",
        { class: "method-blocks" },
        Object.values(section.blocks).map((b) => b.el),
      ),
      h(
        "div",
        { class: "grid" },
        Object.values(section.shared).map((f) => f.el),
      ),
      sweepError,
    ),
    bar,
  );
}

/** The field a 422 loc names: name, base.<field>, sweep.<axis> or sweep.by_method.<method>.<field>. */
function sweepResolver({ nameField, cfg, section, sweepGeneral }) {
  return (loc) => {
    if (loc[1] === "name") return nameField;
    if (loc[1] === "base") return fieldFromLoc(loc, cfg.fields, 2);
    if (loc[1] === "sweep" && loc[2] === "by_method") {
      const block = section.blocks[loc[3]];
      return (block && fieldFromLoc(loc, block.lists, 4)) || (block ? section.methods : sweepGeneral);
    }
    if (loc[1] === "sweep") return fieldFromLoc(loc, { method: section.methods, ...section.shared }, 2) || sweepGeneral;
    return fieldFromLoc(loc, cfg.fields, 1);
  };
}

/** The body the form would send ({body} or {problems}: its own checks, by field name). */
function readBody(parts) {
  const { cfg, nameField, section, meta, target } = parts;
  const { config, problems } = cfg.read();
  const { base, sweep } = readSweep(meta, section, config);
  if (!section.methods.read().length) problems.method = "Check at least one method.";
  if (target.experiment) return { problems, body: { base, sweep } };
  return { problems, body: { name: nameField.control.value.trim(), base, sweep } };
}

/** The form's own problems ({name: message}) as a 422's detail, so they show as the server's would. */
function localRefusal(problems) {
  const loc = (name) => {
    if (name === "name") return ["body", "name"];
    if (name === "method") return ["body", "sweep", "method"];
    return ["body", "base", name];
  };
  return new ApiError(
    422,
    Object.entries(problems).map(([name, msg]) => ({ loc: loc(name), msg })),
  );
}

function problemField(parts, name) {
  if (name === "name") return parts.nameField;
  if (name === "method") return parts.section.methods;
  return parts.cfg.fields[name];
}

function clearAll(parts) {
  const { cfg, nameField, section, sweepGeneral, formError } = parts;
  clearErrors([cfg.fields, sectionFields(section), { sweep: sweepGeneral, ...(nameField ? { name: nameField } : {}) }], formError);
}

/** Check the form's own values, then POST the experiment (or the new jobs of one). */
async function submitSweep(parts, submit) {
  parts.dry.stop();
  clearAll(parts);
  const { body, problems } = readBody(parts);
  if (!parts.target.experiment && !body.name) problems.name = "Give the experiment a name.";
  if (Object.keys(problems).length) return showProblems(problems, (n) => problemField(parts, n), parts.formError);
  await sendForm({ ...submit, formError: parts.formError }, () => parts.target.send(body), parts.target.pageFor, sweepResolver(parts));
}

/** Show a dry run's state: the count and per-method split, "counting…", or why not. */
function showDryRun(parts, submit, s) {
  const { meta, target } = parts;
  if (s.state === "pending") {
    parts.setSummary("counting…", "pending");
    submit.button.textContent = "Submit jobs";
    return;
  }
  if (s.state === "ready" || s.state === "invalid") clearAll(parts);
  if (s.state === "ready") {
    const count = s.answer?.count ?? s.answer?.jobs?.length ?? 0;
    const text = countSummary(s.answer, meta.methods);
    const lead = String(count);
    parts.summary.replaceChildren(h("strong", { id: "sweep-count" }, lead), text.slice(lead.length), count ? "" : ": nothing new to add");
    parts.summary.dataset.state = "ready";
    parts.summary.dataset.count = String(count);
    submit.button.textContent = submitLabel(count);
    submit.button.disabled = count === 0 && Boolean(target.experiment);
    return;
  }
  submit.button.textContent = "Submit jobs";
  submit.button.disabled = false;
  if (s.state === "invalid") {
    showValidationErrors(s.detail, sweepResolver(parts), parts.formError);
    parts.setSummary("Fix the marked values to count the jobs.", "invalid");
  } else {
    parts.setSummary(`Could not count the jobs: ${s.message}`, "error");
  }
}

/** Where the form sends: a new experiment, or `?experiment=ID`'s existing one. */
function sendTarget(experiment) {
  if (!experiment)
    return {
      experiment: null,
      send: (body, { dryRun = false, signal } = {}) => (dryRun ? api.dryRunExperiment(body, { signal }) : api.submitExperiment(body)),
      pageFor: (exp) => `#/experiments/${exp.id}`,
    };
  return {
    experiment,
    send: (body, options) => api.addJobs(experiment.id, body, options),
    pageFor: () => `#/experiments/${experiment.id}`,
  };
}

/** The methods checked at first: the experiment's (swept, else its base's), else the default. */
function firstMethods(meta, experiment) {
  const plain = meta.defaults?.fields?.method ?? meta.methods?.[0];
  if (!experiment) return [plain];
  return experiment.sweep?.method ?? [experiment.base?.method ?? plain];
}

function sweepIntro(experiment) {
  if (!experiment) {
    return [
      h("h1", {}, "New sweep"),
      h(
        "p",
        { class: "lead" },
        "Run the same config over several values of λ, β, prune ratio, seed or method, and compare them on one plot: accuracy against the share of channels pruned. Each method takes its own λ list: NS and proxns need λ on different scales.",
      ),
    ];
  }
  return [
    h("h1", {}, "Add to experiment ", h("a", { href: `#/experiments/${experiment.id}`, id: "sweep-experiment" }, experiment.name)),
    h(
      "p",
      { class: "lead" },
      `The base config is the experiment's; the new jobs join its ${experiment.jobs?.length ?? 0} job(s), and combinations it already has are skipped.`,
    ),
  ];
}

export async function renderNewSweep(root, params) {
  const experimentId = params?.get("experiment");
  loadingView(root, experimentId ? "Add jobs" : "New sweep");
  const [meta, experiment] = await Promise.all([
    loadMeta().then(withCurrentFleet),
    experimentId ? api.getExperiment(experimentId) : Promise.resolve(null),
  ]);
  let update = () => {}; // configFields calls onChange while it builds, before the parts exist
  const cfg = configFields(meta, "base", {
    onChange: () => update(),
    // adding to an experiment keeps its base as it is: no data-set suggestions
    suggest: experiment ? [] : SUGGESTED_FIELDS.filter((n) => n !== "lam"),
  });
  if (experiment) cfg.setValues(experiment.base || {});
  const section = sweepSection(meta, firstMethods(meta, experiment));
  const sweepError = h("div", { class: "field-error", id: "sweep-error", "aria-live": "polite" });
  const submit = submitBar("Submit jobs");
  const summary = h("p", { class: "sweep-summary", id: "sweep-summary", role: "status", "aria-live": "polite" });
  submit.button.after(summary); // after the button: a longer or shorter count never moves it
  const parts = {
    meta,
    cfg,
    section,
    nameField: experiment ? null : experimentNameField(),
    sweepError,
    sweepGeneral: { name: "sweep", control: section.methods.control, errorEl: sweepError, el: sweepError },
    formError: formErrorBox(),
    bar: submit.bar,
    summary,
    target: sendTarget(experiment),
    setSummary: (text, state) => {
      summary.replaceChildren(text);
      summary.dataset.state = state;
      delete summary.dataset.count;
    },
  };
  parts.dry = createDryRun({
    // the form's own problems (a number box holding text, no method) answer like the server, debounced alike
    send: ({ body, problems }, signal) =>
      Object.keys(problems).length ? Promise.reject(localRefusal(problems)) : parts.target.send(body, { dryRun: true, signal }),
    onState: (s) => showDryRun(parts, submit, s),
  });

  /** After any change: the base beside the sweep, the lists' hints, then a new dry run. */
  update = () => {
    const checked = section.methods.read();
    for (const [m, block] of Object.entries(section.blocks)) {
      block.el.hidden = !checked.includes(m);
      listHints(meta, block, {
        dataset: cfg.fields.dataset?.control.value,
        arch: cfg.fields.arch?.control.value,
        storedBase: experiment?.base,
      });
    }
    markSwept(meta, cfg, readSweep(meta, section).sweep, checked);
    const { body, problems } = readBody(parts);
    // the name does not change the count: a fixed one, so typing it asks nothing
    parts.dry.schedule({ body: parts.target.experiment ? body : { ...body, name: "dry run" }, problems });
  };
  /** A change of the checked methods: the base's (hidden) method follows the first, for its defaults. */
  section.methods.el.addEventListener("change", () => {
    const first = section.methods.read()[0];
    if (first && cfg.fields.method) cfg.fields.method.control.value = first;
    cfg.refresh();
  });

  const form = sweepForm(parts);
  form.addEventListener("input", () => update());
  form.addEventListener("change", (ev) => {
    if (!section.methods.el.contains(ev.target)) update();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await submitSweep(parts, submit);
  });
  mount(root, ...sweepIntro(experiment), fleetPanel(meta.fleet), form);
  section.methods.el.dispatchEvent(new Event("change"));
  return () => parts.dry.stop();
}

// The two submit forms: one job, and a sweep (an experiment: a base config times value lists).

import { api, loadMeta } from "../api.js";
import { h, mount } from "../dom.js";
import { fleetSummary } from "../fleet.js";
import { configFields, setFieldError, showValidationErrors } from "../form.js";
import { methodScope } from "../rules.js";
import { parseList, sweepJobCount } from "../sweep.js";

// The sweep axes the API accepts (POST /api/experiments `sweep`): [name, label, placeholder]. The
// methods a method-specific axis applies to come from meta.method_fields (sweepAxisLabel).
const SWEEP_AXES = [
  ["lam", "λ values", "e.g. 0.001, 0.005, 0.01"],
  ["beta", "β values", "e.g. 10, 100"],
  ["prune_ratio", "Prune ratios", "e.g. 0.5, 0.7"],
  ["seed", "Seeds", "e.g. 0, 1, 2"],
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

/** The sweep lists the form holds: {axis: values}, axes left empty omitted. */
function readSweep(sweepFields) {
  const sweep = {};
  for (const [name, f] of Object.entries(sweepFields)) {
    const values = f.read();
    if (values.length) sweep[name] = values;
  }
  return sweep;
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
// (so setFieldError and showValidationErrors place messages on them), plus read() for the axes.

function sweepErrorSlot(name) {
  return h("div", { class: "field-error", id: `sweep-${name}-error`, "aria-live": "polite", dataset: { errorFor: name } });
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
  const errorEl = sweepErrorSlot("name");
  const el = h(
    "div",
    { class: "field field-wide", dataset: { field: "name" } },
    h("label", { for: "sweep-name" }, "Experiment name"),
    control,
    errorEl,
  );
  return { name: "name", control, errorEl, el };
}

/** Methods to sweep: checkboxes, none checked = the base config's method only. */
function sweepMethodField(methods, onChange) {
  const boxes = methods.map((m) => h("input", { type: "checkbox", id: `sweep-method-${m}`, value: m, onchange: onChange }));
  const errorEl = sweepErrorSlot("method");
  const el = h(
    "fieldset",
    { class: "field checkbox-group", dataset: { field: "sweep.method" } },
    h("legend", {}, "Methods to compare"),
    h(
      "div",
      { class: "checks" },
      boxes.map((b) => h("div", { class: "check" }, b, h("label", { for: b.id }, b.value))),
    ),
    h("small", { class: "hint" }, "None checked: only the method chosen below."),
    errorEl,
  );
  return { name: "method", control: boxes[0], errorEl, el, read: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/** One value-list axis: a comma-separated text box. */
function sweepListField(name, label, placeholder, onInput) {
  const control = h("input", {
    type: "text",
    id: `sweep-${name}`,
    name,
    inputmode: "decimal",
    autocomplete: "off",
    placeholder,
    "aria-describedby": `sweep-${name}-hint sweep-${name}-error`,
    oninput: onInput,
  });
  const errorEl = sweepErrorSlot(name);
  const el = h(
    "div",
    { class: "field", dataset: { field: `sweep.${name}` } },
    h("label", { for: control.id }, label),
    control,
    h("small", { class: "hint", id: `sweep-${name}-hint` }, "comma-separated"),
    errorEl,
  );
  return { name, control, errorEl, el, read: () => parseList(control.value) };
}

/** {axis: field} for the method checkboxes and every list axis. */
function sweepAxisFields(meta, onChange) {
  const fields = { method: sweepMethodField(meta.methods || [], onChange) };
  for (const [name, label, placeholder] of SWEEP_AXES) {
    fields[name] = sweepListField(name, sweepAxisLabel(meta, name, label), placeholder, onChange);
  }
  return fields;
}

/** The sweep form: experiment name, the axes, then the base config and the submit bar. */
function sweepForm({ formError, nameField, sweepFields, sweepError, cfg, bar }) {
  return h(
    "form",
    { class: "config-form", novalidate: true, id: "sweep-form" },
    formError,
    h("fieldset", { class: "group" }, h("legend", {}, "Experiment"), h("div", { class: "grid" }, nameField.el)),
    h(
      "fieldset",
      { class: "group sweep-axes" },
      h("legend", {}, "Sweep: one job per combination"),
      h(
        "div",
        { class: "grid" },
        sweepFields.method.el,
        SWEEP_AXES.map(([n]) => sweepFields[n].el),
      ),
      sweepError,
    ),
    h("h2", { class: "form-section" }, "Base config"),
    h("p", { class: "muted" }, "Every job starts from these values; swept values replace them."),
    cfg.element,
    bar,
  );
}

/** The field a 422 loc of POST /api/experiments names: name, base.<field> or sweep.<axis>. */
function sweepResolver({ nameField, cfg, sweepFields, sweepGeneral }) {
  return (loc) => {
    if (loc[1] === "name") return nameField;
    if (loc[1] === "base") return fieldFromLoc(loc, cfg.fields, 2);
    if (loc[1] === "sweep") return fieldFromLoc(loc, sweepFields, 2) || sweepGeneral;
    return fieldFromLoc(loc, cfg.fields, 1);
  };
}

/** Check the form's own values, then POST the experiment. */
async function submitSweep(parts, submit) {
  const { cfg, nameField, sweepFields, sweepGeneral, formError } = parts;
  clearErrors([cfg.fields, sweepFields, { name: nameField, sweep: sweepGeneral }], formError);
  const { config, problems } = cfg.read();
  const name = nameField.control.value.trim();
  if (!name) problems.name = "Give the experiment a name.";
  if (Object.keys(problems).length) return showProblems(problems, (n) => (n === "name" ? nameField : cfg.fields[n]), formError);
  const sweep = readSweep(sweepFields);
  const send = () => api.submitExperiment({ name, base: config, sweep });
  await sendForm({ ...submit, formError }, send, (exp) => `#/experiments/${exp.id}`, sweepResolver(parts));
}

export async function renderNewSweep(root) {
  loadingView(root, "New sweep");
  const meta = await withCurrentFleet(await loadMeta());
  const jobCount = h("strong", { id: "sweep-count" }, "1");
  let sweepFields = {};
  let cfg = null; // configFields calls recount while it builds, before it returns
  const recount = () => {
    const baseMethod = cfg?.fields.method?.control.value ?? null;
    jobCount.textContent = String(sweepJobCount(readSweep(sweepFields), { baseMethod, methodFields: meta.method_fields }));
  };
  cfg = configFields(meta, "base", { onChange: recount });
  sweepFields = sweepAxisFields(meta, recount);
  const sweepError = h("div", { class: "field-error", id: "sweep-error", "aria-live": "polite" });
  const sweepGeneral = { name: "sweep", control: sweepFields.lam.control, errorEl: sweepError, el: sweepError };
  const submit = submitBar("Submit sweep");
  submit.bar.prepend(h("span", { class: "sweep-summary" }, "This sweep creates ", jobCount, " job(s)."));
  const parts = {
    cfg,
    nameField: experimentNameField(),
    sweepFields,
    sweepError,
    sweepGeneral,
    formError: formErrorBox(),
    bar: submit.bar,
  };
  const form = sweepForm(parts);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await submitSweep(parts, submit);
  });
  mount(
    root,
    h("h1", {}, "New sweep"),
    h(
      "p",
      { class: "lead" },
      "Run the same config over several values of λ, β, prune ratio, seed or method, and compare them on one plot: accuracy against the share of channels pruned.",
    ),
    fleetPanel(meta.fleet),
    form,
  );
  recount();
}

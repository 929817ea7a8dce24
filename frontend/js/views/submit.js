// The two submit forms: one job, and a sweep (an experiment: a base config times value lists).

import { api, loadMeta } from "../api.js";
import { h, mount } from "../dom.js";
import { configFields, setFieldError, showValidationErrors } from "../form.js";

// The sweep axes the API accepts (POST /api/experiments `sweep`).
const SWEEP_AXES = [
  ["lam", "λ values", "e.g. 0.001, 0.005, 0.01"],
  ["beta", "β values (proxns)", "e.g. 10, 100"],
  ["prune_ratio", "Prune ratios (ns)", "e.g. 0.5, 0.7"],
  ["seed", "Seeds", "e.g. 0, 1, 2"],
];

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

export async function renderNewJob(root, params) {
  loadingView(root, "New job");
  const meta = await loadMeta();
  const cfg = configFields(meta, "job");
  const formError = h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
  const { bar, button, status } = submitBar("Submit job");
  const form = h("form", { class: "config-form", novalidate: true, id: "job-form" }, formError, cfg.element, bar);
  if (params.get("from")) {
    try {
      const src = await api.getJob(params.get("from"));
      cfg.setValues(src.config);
    } catch (err) {
      status.textContent = `Could not copy job ${params.get("from")}: ${err.message}`;
    }
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors([cfg.fields], formError);
    const { config, problems } = cfg.read();
    if (Object.keys(problems).length) {
      for (const [name, msg] of Object.entries(problems)) setFieldError(cfg.fields[name], msg);
      focusFirst(Object.keys(problems).map((n) => cfg.fields[n]), formError);
      return;
    }
    button.disabled = true;
    status.textContent = "Submitting…";
    try {
      const job = await api.submitJob(config);
      status.textContent = "Submitted.";
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      status.textContent = err.status === 422 ? "The server rejected some values; see the messages beside the fields." : "";
      const detail = err.status === 422 ? err.detail : err.message;
      const placed = showValidationErrors(detail, (loc) => fieldFromLoc(loc, cfg.fields, 1), formError);
      focusFirst(placed, formError);
    } finally {
      button.disabled = false;
    }
  });
  mount(
    root,
    h("h1", {}, "New job"),
    h("p", { class: "lead" }, "Train one network with a sparsity method, slim it, and measure it. Leave a field empty to use the server's default, shown greyed inside it."),
    form,
  );
}

export async function renderNewSweep(root) {
  loadingView(root, "New sweep");
  const meta = await loadMeta();
  const jobCount = h("strong", { id: "sweep-count" }, "1");
  const sweepFields = {};
  const recount = () => {
    let n = 1;
    for (const f of Object.values(sweepFields)) {
      const k = f.read().length;
      if (k) n *= k;
    }
    jobCount.textContent = String(n);
  };
  const cfg = configFields(meta, "base", { onChange: recount });

  const errorEl = (name) => h("div", { class: "field-error", id: `sweep-${name}-error`, "aria-live": "polite", dataset: { errorFor: name } });
  const nameInput = h("input", { type: "text", id: "sweep-name", name: "name", required: true, autocomplete: "off", placeholder: "e.g. vgg11 digits λ sweep", "aria-describedby": "sweep-name-error" });
  const nameField = { name: "name", control: nameInput, errorEl: errorEl("name") };
  nameField.el = h("div", { class: "field field-wide", dataset: { field: "name" } }, h("label", { for: "sweep-name" }, "Experiment name"), nameInput, nameField.errorEl);

  // Methods to sweep: checkboxes, none checked = the base config's method only.
  const methodBoxes = (meta.methods || []).map((m) => h("input", { type: "checkbox", id: `sweep-method-${m}`, value: m, onchange: recount }));
  const methodField = {
    name: "method",
    control: methodBoxes[0],
    errorEl: errorEl("method"),
    read: () => methodBoxes.filter((b) => b.checked).map((b) => b.value),
  };
  methodField.el = h(
    "fieldset",
    { class: "field checkbox-group", dataset: { field: "sweep.method" } },
    h("legend", {}, "Methods to compare"),
    h("div", { class: "checks" }, methodBoxes.map((b) => h("div", { class: "check" }, b, h("label", { for: b.id }, b.value)))),
    h("small", { class: "hint" }, "None checked: only the method chosen below."),
    methodField.errorEl,
  );
  sweepFields.method = methodField;

  for (const [name, label, placeholder] of SWEEP_AXES) {
    const control = h("input", { type: "text", id: `sweep-${name}`, name, inputmode: "decimal", autocomplete: "off", placeholder, "aria-describedby": `sweep-${name}-hint sweep-${name}-error`, oninput: recount });
    const f = {
      name,
      control,
      errorEl: errorEl(name),
      read: () => control.value.split(/[\s,;]+/).filter(Boolean).map((t) => (Number.isNaN(Number(t)) ? t : Number(t))),
    };
    f.el = h("div", { class: "field", dataset: { field: `sweep.${name}` } }, h("label", { for: control.id }, label), control, h("small", { class: "hint", id: `sweep-${name}-hint` }, "comma-separated"), f.errorEl);
    sweepFields[name] = f;
  }
  const sweepError = h("div", { class: "field-error", id: "sweep-error", "aria-live": "polite" });
  const sweepGeneral = { name: "sweep", control: sweepFields.lam.control, errorEl: sweepError, el: sweepError };

  const formError = h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
  const { bar, button, status } = submitBar("Submit sweep");
  bar.prepend(h("span", { class: "sweep-summary" }, "This sweep creates ", jobCount, " job(s)."));
  const form = h(
    "form",
    { class: "config-form", novalidate: true, id: "sweep-form" },
    formError,
    h("fieldset", { class: "group" }, h("legend", {}, "Experiment"), h("div", { class: "grid" }, nameField.el)),
    h(
      "fieldset",
      { class: "group sweep-axes" },
      h("legend", {}, "Sweep: one job per combination"),
      h("div", { class: "grid" }, methodField.el, SWEEP_AXES.map(([n]) => sweepFields[n].el)),
      sweepError,
    ),
    h("h2", { class: "form-section" }, "Base config"),
    h("p", { class: "muted" }, "Every job starts from these values; swept values replace them."),
    cfg.element,
    bar,
  );

  const resolve = (loc) => {
    if (loc[1] === "name") return nameField;
    if (loc[1] === "base") return fieldFromLoc(loc, cfg.fields, 2);
    if (loc[1] === "sweep") return fieldFromLoc(loc, sweepFields, 2) || sweepGeneral;
    return fieldFromLoc(loc, cfg.fields, 1);
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors([cfg.fields, sweepFields, { name: nameField, sweep: sweepGeneral }], formError);
    const { config, problems } = cfg.read();
    if (!nameInput.value.trim()) problems.name = "Give the experiment a name.";
    if (Object.keys(problems).length) {
      const placed = Object.entries(problems).map(([n, msg]) => {
        const f = n === "name" ? nameField : cfg.fields[n];
        setFieldError(f, msg);
        return f;
      });
      focusFirst(placed, formError);
      return;
    }
    const sweep = {};
    for (const [name, f] of Object.entries(sweepFields)) {
      const values = f.read();
      if (values.length) sweep[name] = values;
    }
    button.disabled = true;
    status.textContent = "Submitting…";
    try {
      const exp = await api.submitExperiment({ name: nameInput.value.trim(), base: config, sweep });
      status.textContent = "Submitted.";
      location.hash = `#/experiments/${exp.id}`;
    } catch (err) {
      status.textContent = err.status === 422 ? "The server rejected some values; see the messages beside the fields." : "";
      const placed = showValidationErrors(err.status === 422 ? err.detail : err.message, resolve, formError);
      focusFirst(placed, formError);
    } finally {
      button.disabled = false;
    }
  });

  mount(
    root,
    h("h1", {}, "New sweep"),
    h("p", { class: "lead" }, "Run the same config over several values of λ, β, prune ratio, seed or method, and compare them on one plot: accuracy against the share of channels pruned."),
    form,
  );
  recount();
}

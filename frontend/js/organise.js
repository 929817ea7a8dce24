// Organising jobs and experiments: tags, a note, archive and delete. The widgets take their current
// value and an `onSave`/`onToggle`/`onDelete` callback returning a promise, so the job page and the
// experiment page share them; the API calls below (thin wrappers of api.js's) go to PATCH/DELETE /api/jobs/{id} and
// /api/experiments/{id}. The server validates (tag length, count, characters; note length): its 422
// message is shown beside the control, nothing is checked twice here.

import { api } from "./api.js";
import { h, mount } from "./dom.js";

/** PATCH /api/jobs/{id} with {tags?, note?, archived?}: the job as it is now. */
export const patchJob = (id, body) => api.patchJob(id, body);
/** DELETE /api/jobs/{id}: cancels it first when it runs; its rows and files go. */
export const deleteJob = (id) => api.deleteJob(id);
/** PATCH /api/experiments/{id} with {name?, tags?, note?, archived?}. */
export const patchExperiment = (id, body) => api.patchExperiment(id, body);
/** DELETE /api/experiments/{id}: all its jobs, then the experiment. */
export const deleteExperiment = (id) => api.deleteExperiment(id);

/** One line for an error: a 422's messages with the field they name ("tags.2: …"), else its message. */
export function errorText(err) {
  const detail = err?.detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((d) => {
        const where = (d.loc || []).filter((p) => p !== "body").join(".");
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  return err?.message || String(err);
}

/** Words typed into the tag box: split on commas (a tag cannot hold one), trimmed, empty dropped. */
export function parseTags(text) {
  return String(text || "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

/** `tags` with `added` appended (those not there yet, in order) and `removed` left out. */
export function editTags(tags, { added = [], removed = null } = {}) {
  const out = (tags || []).filter((t) => t !== removed);
  for (const t of added) if (!out.includes(t)) out.push(t);
  return out;
}

/** A status line beside a control: `role=status` so screen readers hear "Saved" and the errors. */
function statusLine(id) {
  return h("span", { class: "organise-status", id, role: "status", "aria-live": "polite" });
}

/** Run `action()` with `button` busy; show "Saved" or the error in `status`. Resolves to success. */
async function busy(button, status, action, done = "Saved") {
  button.disabled = true;
  status.textContent = "Saving…";
  status.classList.remove("field-error");
  try {
    await action();
    status.textContent = done;
    return true;
  } catch (err) {
    status.textContent = errorText(err);
    status.classList.add("field-error");
    return false;
  } finally {
    button.disabled = false;
  }
}

/**
 * Tags as removable chips and a box to add more (Enter or "Add"; commas separate several).
 * `onSave(tags)` stores the whole new list and resolves to the saved one; `id` prefixes element ids.
 */
export function tagEditor({ tags = [], onSave, id = "tags" }) {
  let current = [...tags];
  const status = statusLine(`${id}-status`);
  const chips = h("ul", { class: "tag-editor-chips", id: `${id}-list`, "aria-label": "Tags" });
  const input = h("input", {
    id: `${id}-input`,
    type: "text",
    autocomplete: "off",
    placeholder: "new tag",
    "aria-describedby": `${id}-status`,
  });
  const addButton = h("button", { type: "submit", id: `${id}-add` }, "Add");
  const save = async (next, trigger) => {
    let saved = null;
    const ok = await busy(trigger, status, async () => {
      saved = await onSave(next);
    });
    if (ok) {
      current = Array.isArray(saved) ? saved : Array.isArray(saved?.tags) ? saved.tags : next;
      drawChips();
    }
    return ok;
  };
  function drawChips() {
    mount(
      chips,
      current.length
        ? current.map((t) =>
            h(
              "li",
              { class: "tag-chip", dataset: { tag: t } },
              h("span", {}, t),
              h(
                "button",
                {
                  type: "button",
                  class: "tag-remove",
                  "aria-label": `Remove tag ${t}`,
                  title: `Remove tag ${t}`,
                  onclick: (ev) => save(editTags(current, { removed: t }), ev.currentTarget).then(() => input.focus()),
                },
                "×",
              ),
            ),
          )
        : h("li", { class: "muted small" }, "No tags yet."),
    );
  }
  drawChips();
  const form = h(
    "form",
    {
      class: "tag-editor",
      id: `${id}-editor`,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const added = parseTags(input.value);
        if (!added.length) return;
        if (await save(editTags(current, { added }), addButton)) input.value = "";
      },
    },
    h("label", { for: `${id}-input` }, "Tags"),
    chips,
    h("div", { class: "tag-editor-add" }, input, addButton),
    status,
  );
  form.isDirty = () => input.value.trim() !== "";
  return form;
}

/** A textarea and "Save note"; `onSave(note)` stores it. `isDirty()` tells a redraw to keep it. */
export function noteEditor({ note = "", onSave, id = "note" }) {
  let saved = note || "";
  const status = statusLine(`${id}-status`);
  const area = h("textarea", { id: `${id}-text`, rows: 4, "aria-describedby": `${id}-status` }, saved);
  const button = h("button", { type: "submit", id: `${id}-save` }, "Save note");
  const form = h(
    "form",
    {
      class: "note-editor",
      id: `${id}-editor`,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const text = area.value;
        if (await busy(button, status, () => onSave(text))) saved = text;
      },
    },
    h("label", { for: `${id}-text` }, "Note"),
    area,
    h("div", { class: "note-editor-actions" }, button, status),
  );
  form.isDirty = () => area.value !== saved;
  return form;
}

/** "Archive" or "Unarchive": `onToggle(archive)` resolves once stored. */
export function archiveButton({ archived = false, onToggle, id = "archive" }) {
  const status = statusLine(`${id}-status`);
  const button = h(
    "button",
    {
      type: "button",
      id,
      title: archived ? "Show it in the default lists again" : "Hide it from the default lists (nothing is deleted)",
      onclick: async () => {
        const next = !archived;
        if (await busy(button, status, () => onToggle(next), next ? "Archived" : "Unarchived")) {
          archived = next;
          button.textContent = archived ? "Unarchive" : "Archive";
        }
      },
    },
    archived ? "Unarchive" : "Archive",
  );
  return h("span", { class: "organise-action" }, button, status);
}

/**
 * "Delete…", then an inline confirmation naming what goes (`what`, e.g. "job 12 and its model
 * files"): "Delete for good" calls `onDelete()`, "Keep" closes it. No window.confirm: the question
 * stays in the page, reachable with the keyboard.
 */
export function deleteButton({ what, onDelete, id = "delete" }) {
  const status = statusLine(`${id}-status`);
  const holder = h("span", { class: "organise-action" });
  const ask = h("button", { type: "button", class: "danger", id, onclick: () => confirmStep() }, "Delete…");
  function confirmStep() {
    const yes = h(
      "button",
      {
        type: "button",
        class: "danger",
        id: `${id}-confirm`,
        onclick: async () => {
          await busy(yes, status, () => onDelete(), "Deleted");
        },
      },
      "Delete for good",
    );
    const no = h("button", { type: "button", id: `${id}-keep`, onclick: () => initial(true) }, "Keep");
    mount(
      holder,
      h("span", { class: "confirm-delete", role: "group", "aria-label": "Confirm deletion" }, `Delete ${what}? `, yes, no),
      status,
    );
    yes.focus();
  }
  function initial(focus = false) {
    mount(holder, ask, status);
    if (focus) ask.focus();
  }
  initial();
  return holder;
}

const FLASH_KEY = "proxns-flash";

/** Leave a one-line message for the next page (e.g. "Job 12 deleted." on the list). */
export function flash(message) {
  try {
    globalThis.sessionStorage?.setItem(FLASH_KEY, message);
  } catch {
    // no storage: the message is lost, the deletion is not
  }
}

/** The message left by `flash`, once. */
export function takeFlash() {
  try {
    const msg = globalThis.sessionStorage?.getItem(FLASH_KEY) || "";
    globalThis.sessionStorage?.removeItem(FLASH_KEY);
    return msg;
  } catch {
    return "";
  }
}

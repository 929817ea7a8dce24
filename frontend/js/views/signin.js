// Sign-in page: paste an API token, checked with GET /api/me before it is stored.

import { api } from "../api.js";
import { safeNext, setToken } from "../auth.js";
import { h, mount } from "../dom.js";

/** What to show beside the field for a failed check (`err` is an ApiError). */
export function signInMessage(err) {
  // The server's own 401 detail is written for API clients ("send Authorization: …"), not for this form.
  if (err?.status === 401) return "The server did not accept this token (401: unknown or revoked). Check it and try again.";
  return `Could not check the token: ${err?.message || "unknown error"}`;
}

function explanation() {
  return h(
    "div",
    { class: "signin-help", id: "signin-help" },
    h("p", {}, "Every request to the ProxNS Lab API needs a personal API token. It is kept in this browser until you sign out."),
    h(
      "ul",
      {},
      h(
        "li",
        {},
        "An administrator creates one for you with ",
        h("code", {}, "proxns user create NAME"),
        ", which prints the new token once.",
      ),
      h(
        "li",
        {},
        "The first administrator's token is written to ",
        h("code", {}, "var/admin-token"),
        " in the folder where the server (",
        h("code", {}, "proxns serve"),
        ") runs.",
      ),
    ),
  );
}

export function renderSignIn(root, params) {
  const next = safeNext(params.get("next"));
  const input = h("input", {
    type: "password",
    id: "signin-token",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    autocapitalize: "off",
    required: true,
    "aria-describedby": "signin-token-hint signin-token-error",
  });
  const error = h("div", { class: "field-error signin-error", id: "signin-token-error", "aria-live": "assertive" });
  const status = h("span", { class: "submit-status", id: "signin-status", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "primary", id: "signin-submit" }, "Sign in");
  const showError = (msg) => {
    error.textContent = msg;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };
  const form = h(
    "form",
    { id: "signin-form", class: "signin-form", novalidate: true },
    h(
      "div",
      { class: "field" },
      h("label", { for: "signin-token" }, "API token"),
      input,
      h("div", { class: "hint", id: "signin-token-hint" }, "Paste the token exactly as it was printed."),
      error,
    ),
    h("div", { class: "form-actions" }, button, status),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    if (!token) return showError("Enter your API token.");
    button.disabled = true;
    status.textContent = "Checking…";
    try {
      await api.me(token);
    } catch (err) {
      status.textContent = "";
      button.disabled = false;
      return showError(signInMessage(err));
    }
    setToken(token);
    status.textContent = "Signed in.";
    button.disabled = false;
    location.hash = next;
  });
  mount(root, h("h1", {}, "Sign in"), explanation(), form);
  input.focus();
}

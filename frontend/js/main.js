// Hash router: each view renders into <main> and returns a function that stops its polling.

import { api } from "./api.js";
import { clearToken, getToken, signInHash } from "./auth.js";
import { h, mount } from "./dom.js";
import { compareHash, onChange as onSelectionChange, selectedJobs } from "./selection.js";
import { renderCompare } from "./views/compare.js";
import { renderExperiment, renderExperiments } from "./views/experiments.js";
import { renderJob } from "./views/job.js";
import { renderJobs } from "./views/jobs.js";
import { renderSignIn } from "./views/signin.js";
import { renderNewJob, renderNewSweep } from "./views/submit.js";

const ROUTES = [
  [/^\/?$/, renderJobs, "Jobs", "jobs"],
  [/^\/jobs\/([^/]+)$/, renderJob, "Job", "jobs"],
  [/^\/new$/, renderNewJob, "New job", "new"],
  [/^\/sweep$/, renderNewSweep, "New sweep", "sweep"],
  [/^\/experiments$/, renderExperiments, "Experiments", "experiments"],
  [/^\/experiments\/([^/]+)$/, renderExperiment, "Experiment", "experiments"],
  [/^\/compare$/, renderCompare, "Compare", "compare"],
  [/^\/sign-in$/, renderSignIn, "Sign in", "sign-in"],
];

const root = document.getElementById("view");
const session = document.getElementById("session");
let stop = null;
let generation = 0;

/** The header's account area: the signed-in user and "Sign out", or a "Sign in" link. */
const account = { token: null, user: null, check: 0 };

function drawSession() {
  if (account.user) {
    mount(
      session,
      h("span", { id: "session-user" }, "Signed in as ", h("span", { class: "session-name", id: "session-name" }, account.user.name)),
      h("button", { type: "button", id: "sign-out", onclick: signOut }, "Sign out"),
    );
  } else {
    mount(session, h("a", { href: signInHash(location.hash), id: "sign-in-link" }, "Sign in"));
  }
}

/** Ask the server who the stored token belongs to, when the token changed since the last time. */
async function refreshSession() {
  const token = getToken();
  if (token === account.token) return drawSession();
  account.token = token;
  account.user = null;
  const mine = ++account.check;
  drawSession();
  if (!token) return;
  try {
    const user = await api.me(token);
    if (mine === account.check) account.user = user;
  } catch {
    if (mine === account.check) account.token = null; // try again on the next page
  }
  if (mine === account.check) drawSession();
}

function signOut() {
  clearToken();
  account.token = null;
  account.user = null;
  account.check++;
  if (location.hash === "#/sign-in") route();
  else location.hash = "#/sign-in";
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

async function route() {
  if (stop) stop();
  stop = null;
  const mine = ++generation;
  root.dataset.route = String(mine); // dom.js routeGuard: a view's late answers see they were left
  const { path, params } = parseHash();
  const match = ROUTES.map(([re, view, title, nav]) => [path.match(re), view, title, nav]).find(([m]) => m);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (match && link.dataset.nav === match[3]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    document.title = "Not found · ProxNS Lab";
    mount(root, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Go to the jobs list")));
    return;
  }
  const [m, view, title, nav] = match;
  if (nav === "sign-in") account.token = null; // check the token afresh: the server may have refused it
  refreshSession();
  if (nav !== "sign-in" && !getToken()) {
    // Signed out: every other page needs the API, so go straight to the sign-in page.
    location.replace(signInHash(location.hash));
    return;
  }
  document.title = `${title} · ProxNS Lab`;
  root.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  try {
    const cleanup = await view(root, params, ...m.slice(1).map(decodeURIComponent));
    if (mine !== generation) {
      if (typeof cleanup === "function") cleanup();
      return;
    }
    stop = typeof cleanup === "function" ? cleanup : null;
  } catch (err) {
    if (mine !== generation) return;
    if (err.status === 401) return; // api.js has opened the sign-in page
    mount(
      root,
      h("h1", {}, title),
      h(
        "div",
        { class: "error-box", role: "alert" },
        h("p", {}, `Could not load this page: ${err.message}`),
        h("button", { type: "button", onclick: route }, "Try again"),
      ),
    );
  }
}

/**
 * The "Compare (n)" entry of the main menu: index.html's menu is static, so it is added here and
 * kept in step with the selection (ticked jobs in any list) and its count.
 */
function compareNav() {
  const list = document.querySelector("header nav ul");
  if (!list) return;
  const link = h("a", { href: compareHash(), id: "nav-compare", dataset: { nav: "compare" } });
  const draw = (ids) => {
    link.setAttribute("href", compareHash(ids));
    link.textContent = `Compare (${ids.length})`;
    link.title = `Compare the ${ids.length} selected job${ids.length === 1 ? "" : "s"}`;
  };
  draw(selectedJobs());
  onSelectionChange(draw);
  list.append(h("li", {}, link));
}

compareNav();
window.addEventListener("hashchange", route);
route();

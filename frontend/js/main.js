// Hash router: each view renders into <main> and returns a function that stops its polling.

import { h, mount } from "./dom.js";
import { renderExperiment, renderExperiments } from "./views/experiments.js";
import { renderJob } from "./views/job.js";
import { renderJobs } from "./views/jobs.js";
import { renderNewJob, renderNewSweep } from "./views/submit.js";

const ROUTES = [
  [/^\/?$/, renderJobs, "Jobs", "jobs"],
  [/^\/jobs\/([^/]+)$/, renderJob, "Job", "jobs"],
  [/^\/new$/, renderNewJob, "New job", "new"],
  [/^\/sweep$/, renderNewSweep, "New sweep", "sweep"],
  [/^\/experiments$/, renderExperiments, "Experiments", "experiments"],
  [/^\/experiments\/([^/]+)$/, renderExperiment, "Experiment", "experiments"],
];

const root = document.getElementById("view");
let stop = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

async function route() {
  if (stop) stop();
  stop = null;
  const mine = ++generation;
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
  const [m, view, title] = match;
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

window.addEventListener("hashchange", route);
route();

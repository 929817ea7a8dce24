// The REST client: every call the dashboard makes goes through here, with the stored API token.

import { authHeader, getToken, signInHash } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `request failed with status ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/** A 401 anywhere but the sign-in check: open the sign-in page, coming back here afterwards. */
export function toSignIn() {
  if (typeof location === "undefined") return;
  const target = signInHash(location.hash);
  if (location.hash !== target) location.hash = target;
}

/**
 * One JSON request with the stored token; errors as ApiError (status 0: the server is unreachable).
 * `token` overrides the stored one (the sign-in check); `redirect: false` keeps a 401 from opening
 * the sign-in page; `signal` aborts it (the AbortError is thrown as it is). The token itself is
 * never cleared here.
 */
export async function request(method, path, body, { token = getToken(), redirect = true, signal } = {}) {
  const init = { method, headers: { Accept: "application/json" } };
  if (signal) init.signal = signal;
  const auth = authHeader(token);
  if (auth) init.headers.Authorization = auth;
  if (typeof Blob !== "undefined" && body instanceof Blob) {
    // a file sent as it is (POST /api/weights)
    init.headers["Content-Type"] = "application/octet-stream";
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data || response.statusText;
    if (response.status === 401 && redirect) toSignIn();
    throw new ApiError(response.status, detail);
  }
  return data;
}

/** GET a file (a model artifact) with the token, as a Blob: a plain link would send no Authorization. */
export async function fetchFile(path) {
  const headers = {};
  const auth = authHeader(getToken());
  if (auth) headers.Authorization = auth;
  let response;
  try {
    response = await fetch(path, { headers });
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const data = await response.json();
      if (data && typeof data === "object" && "detail" in data) detail = data.detail;
    } catch {
      // not JSON: keep the status text
    }
    if (response.status === 401) toSignIn();
    throw new ApiError(response.status, detail);
  }
  return response.blob();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== "" && value !== null && value !== undefined) q.set(key, value);
  }
  const str = q.toString();
  return str ? `?${str}` : "";
}

const jobPath = (id) => `/api/jobs/${encodeURIComponent(id)}`;
const experimentPath = (id) => `/api/experiments/${encodeURIComponent(id)}`;

export const api = {
  /** Who `token` (default: the stored one) belongs to; a 401 here never redirects. */
  me: (token) => request("GET", "/api/me", undefined, { token: token ?? getToken(), redirect: false }),
  meta: () => request("GET", "/api/meta"),
  listJobs: (params) => request("GET", `/api/jobs${query(params)}`),
  getJob: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}`),
  jobMetrics: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}/metrics`),
  jobArtifacts: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}/artifacts`),
  cancelJob: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`),
  submitJob: (config) => request("POST", "/api/jobs", config),
  listExperiments: (params) => request("GET", `/api/experiments${query(params)}`),
  getExperiment: (id) => request("GET", `/api/experiments/${encodeURIComponent(id)}`),
  submitExperiment: (body) => request("POST", "/api/experiments", body),
  listWeights: () => request("GET", "/api/weights"),
  /** Upload a state_dict file for the network `params` names ({arch, depth?, width?, num_classes, name?}). */
  uploadWeights: (file, params) => request("POST", `/api/weights${query(params)}`, file),
  deleteWeights: (id) => request("DELETE", `/api/weights/${encodeURIComponent(id)}`),
  /** PATCH /api/jobs/{id} with {tags?, note?, archived?}: the job as it is now. */
  patchJob: (id, body) => request("PATCH", jobPath(id), body),
  /** DELETE /api/jobs/{id}: cancels it first when it runs; its rows and files go. */
  deleteJob: (id) => request("DELETE", jobPath(id)),
  /** PATCH /api/experiments/{id} with {name?, tags?, note?, archived?}. */
  patchExperiment: (id, body) => request("PATCH", experimentPath(id), body),
  /** DELETE /api/experiments/{id}: all its jobs, then the experiment. */
  deleteExperiment: (id) => request("DELETE", experimentPath(id)),
  /** POST /api/experiments/{id}/cancel: its queued and running jobs; {cancelled: [ids]}. */
  cancelExperiment: (id) => request("POST", `${experimentPath(id)}/cancel`, {}),
  /** POST /api/experiments/{id}/jobs: more jobs for an experiment; `dryRun` only counts them. */
  addJobs: (id, body, { dryRun = false, signal } = {}) =>
    request("POST", `${experimentPath(id)}/jobs${dryRun ? "?dry_run=true" : ""}`, body, { signal }),
  /** POST /api/experiments?dry_run=true: how many jobs a new experiment would make, nothing stored. */
  dryRunExperiment: (body, { signal } = {}) => request("POST", "/api/experiments?dry_run=true", body, { signal }),
};

/** Cache of GET /api/meta: it only changes when the server restarts. */
let metaPromise = null;
export function loadMeta() {
  if (!metaPromise) {
    metaPromise = api.meta().catch((err) => {
      metaPromise = null;
      throw err;
    });
  }
  return metaPromise;
}

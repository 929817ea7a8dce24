// The REST client: every call the dashboard makes goes through here.

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `request failed with status ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
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
    throw new ApiError(response.status, detail);
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== "" && value !== null && value !== undefined) q.set(key, value);
  }
  const str = q.toString();
  return str ? `?${str}` : "";
}

export const api = {
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

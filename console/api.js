// api.js - every request the console makes goes through call(): it adds
// the bearer token (kept in sessionStorage, so it lives as long as the tab
// and is never written to disk by us), and turns every answer that is not
// a success into an ApiError that carries the problem+json document's
// title, detail and code, so the page can show it instead of swallowing it.

import { pct } from "./bytes.js";

const TOKEN_KEY = "cellar.token";

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.status = status;
    this.title = problem.title;
    this.detail = problem.detail || "";
    this.code = problem.code || "";
    this.problem = problem;
  }
}

// Builds "path?query" from a path and an object of query values (strings,
// numbers, booleans, or Uint8Array keys, which are percent-encoded bytes;
// arrays repeat the parameter; null, undefined, "" and empty bytes are
// left out: the console never sends an empty key parameter).
export function url(path, query = {}) {
  const parts = [];
  for (const [k, v] of Object.entries(query)) {
    const values = Array.isArray(v) ? v : [v];
    for (const x of values) {
      if (x === null || x === undefined || x === "" || (x instanceof Uint8Array && !x.length)) continue;
      const enc = x instanceof Uint8Array ? pct(x) : encodeURIComponent(String(x));
      parts.push(`${encodeURIComponent(k)}=${enc}`);
    }
  }
  return parts.length ? `${path}?${parts.join("&")}` : path;
}

export const paths = {
  tables: () => "/v1/tables",
  table: (t) => `/v1/tables/${encodeURIComponent(t)}`,
  scan: (t) => `/v1/tables/${encodeURIComponent(t)}/scan`,
  row: (t, hk) => `/v1/tables/${encodeURIComponent(t)}/rows/${pct(hk)}`,
  cell: (t, hk, sk) => `/v1/tables/${encodeURIComponent(t)}/rows/${pct(hk)}/cells/${pct(sk)}`,
  cluster: () => "/v1/cluster",
};

// One request. opts: method, query, json (a body to send as JSON), body
// (bytes or text), headers, raw (return the body as bytes). Resolves to
// {status, headers, data}; rejects with ApiError for any status >= 400 and
// for network failures (status 0).
export async function call(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let body = opts.body;
  if (opts.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(opts.json);
  }
  if (!headers.has("Accept") && !opts.raw) headers.set("Accept", "application/json");
  let resp;
  try {
    resp = await fetch(url(path, opts.query), {
      method: opts.method || "GET",
      headers,
      body,
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, { title: "The node did not answer", detail: String(e.message || e) });
  }
  const ctype = (resp.headers.get("Content-Type") || "").split(";")[0].trim();
  if (!resp.ok) {
    let problem = null;
    const text = await resp.text();
    if (ctype === "application/problem+json" || ctype === "application/json") {
      try {
        problem = JSON.parse(text);
      } catch {
        problem = null;
      }
    }
    if (!problem || typeof problem.title !== "string") {
      problem = { title: `HTTP ${resp.status} ${resp.statusText}`.trim(), detail: text.slice(0, 500) };
    }
    throw new ApiError(resp.status, problem);
  }
  let data = null;
  if (opts.raw) {
    data = new Uint8Array(await resp.arrayBuffer());
  } else if (resp.status !== 204 && resp.status !== 304 && ctype.endsWith("json")) {
    data = await resp.json();
  } else {
    await resp.arrayBuffer();
  }
  return { status: resp.status, headers: resp.headers, data };
}

// An ETag header ("42") without its quotes, as JSON etag fields have it.
export function etagOf(headers) {
  const e = headers.get("ETag") || "";
  return e.replace(/^W\//, "").replace(/^"|"$/g, "");
}

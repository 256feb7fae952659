// api.js - every request the console makes goes through call(): it adds
// the bearer token (kept in sessionStorage, so it lives as long as the tab
// and is never written to disk by us), and turns every answer that is not
// a success into an ApiError that carries the problem+json document's
// title, detail and code, so the page can show it instead of swallowing it.
//
// Every request belongs to a Scope: the view it was made for (app.js ends
// a view's scope when the person moves to another page), or one query
// within a view (a scan, a row read: a Latest ends the previous query's
// scope when the next one begins). Ending a scope aborts its requests and
// those of the scopes within it; such a request rejects with Abandoned,
// even when its answer had already arrived, and showProblem() (dom.js)
// shows no Abandoned. So only the query on screen paints, and a query or
// a view left behind ends in silence.

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

// The requests of a view, or of one query within a view (parent): end()
// aborts them, and ending the parent ends this scope too.
export class Scope {
  constructor(parent = null) {
    this.controller = new AbortController();
    this.signal = parent ? AbortSignal.any([parent.signal, this.controller.signal]) : this.controller.signal;
  }

  get ended() {
    return this.signal.aborted;
  }

  end() {
    this.controller.abort();
  }
}

// The current one of a series of queries in a scope: begin() ends the
// previous query's scope and returns a new one.
export class Latest {
  constructor(parent) {
    this.parent = parent;
    this.current = null;
  }

  begin() {
    if (this.current) this.current.end();
    this.current = new Scope(this.parent);
    return this.current;
  }
}

// The rejection of a request whose scope has ended.
export class Abandoned extends Error {
  constructor() {
    super("The page moved on from this request");
    this.name = "Abandoned";
  }
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
  count: (t, hk) => `/v1/tables/${encodeURIComponent(t)}/rows/${pct(hk)}/count`,
  cell: (t, hk, sk) => `/v1/tables/${encodeURIComponent(t)}/rows/${pct(hk)}/cells/${pct(sk)}`,
  cluster: () => "/v1/cluster",
};

// One request. opts: scope (required: the Scope the request belongs to),
// method, query, json (a body to send as JSON), body (bytes or text),
// headers, raw (return the body as bytes). Resolves to {status, headers,
// data}; rejects with ApiError for any status >= 400 and for network
// failures (status 0), and with Abandoned once the scope has ended. The
// scope is checked last, once the whole answer is in, and what follows an
// await of call() runs in the same turn of the event loop: code that
// paints with no other await in between cannot paint for a query that a
// click or a change of page has ended.
export async function call(path, opts) {
  const signal = opts.scope.signal;
  try {
    const r = await send(path, opts, signal);
    signal.throwIfAborted();
    return r;
  } catch (err) {
    if (signal.aborted) throw new Abandoned();
    throw err;
  }
}

async function send(path, opts, signal) {
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
      signal,
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

// console.test.mjs - the web console and the API reference, end to end in
// headless Chromium against the real binary.
//
// One cellard ($CELLARD) is started on a free loopback port with a scratch
// data directory; playwright-core drives Debian's chromium ($CHROMIUM)
// through the console as a person would: create tables, put cells with
// text and binary keys and values, browse and page, edit cells, run into a
// conflict made by a direct HTTP write behind the page's back, set TTL,
// increment, delete, drop and recall, look at the cluster (this node, and
// a three-node cluster the test fakes through page.route: its partition
// map, its live refresh, and that the polling ends with the page), set a
// token, and open /docs and try an operation there. Every check that waits polls
// a condition against a deadline (locators and eventually()); nothing
// sleeps. A screenshot of each page lands in $OUTPUT_DIR.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import crypto from "node:crypto";

const NPM_DIR = process.env.NPM_DIR;
const OUTPUT_DIR = process.env.OUTPUT_DIR;
const CELLARD = process.env.CELLARD;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OPENAPI = process.env.OPENAPI;
const require = createRequire(path.join(NPM_DIR, "package.json"));
const { chromium } = require("playwright-core");

const TIMEOUT = 30000; // per wait; the machine may be busy
const DOCS_TIMEOUT = 90000; // a 1.7 MB renderer and every operation of openapi.yaml

// --- The node ------------------------------------------------------------

// Polls fn (an async assertion) until it passes or the deadline passes,
// then throws its last error.
async function eventually(fn, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) {
        err.message = `timed out after ${timeout} ms waiting for ${what}: ${err.message}`;
        throw err;
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

class Node {
  // config: the text of a cellard.conf for this node (none by default).
  constructor(config) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-browser-"));
    this.logPath = path.join(this.dir, "cellard.log");
    this.config = config;
  }

  async start() {
    const log = fs.openSync(this.logPath, "w");
    const args = ["--listen", "127.0.0.1:0", "--data-dir", path.join(this.dir, "data")];
    if (this.config) {
      fs.writeFileSync(path.join(this.dir, "cellard.conf"), this.config(this.dir));
      args.push("--config", path.join(this.dir, "cellard.conf"));
    }
    this.proc = spawn(CELLARD, args, {
      stdio: ["ignore", log, log],
    });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve(code ?? signal)));
    this.port = await eventually(() => {
      if (this.proc.exitCode !== null) throw new Error(`cellard exited: ${this.log()}`);
      const m = /on port (\d+)/.exec(this.log());
      assert.ok(m, "no port in the log yet");
      return Number(m[1]);
    }, "cellard to listen", 30000);
    this.base = `http://127.0.0.1:${this.port}`;
    await eventually(async () => assert.equal((await fetch(`${this.base}/readyz`)).status, 200), "readyz", 30000);
  }

  log() {
    return fs.readFileSync(this.logPath, "utf8");
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill("SIGTERM");
      await this.exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // One request straight to the node (not through the page).
  async http(method, p, { body, headers, json } = {}) {
    const h = { ...(headers || {}) };
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const r = await fetch(this.base + p, { method, headers: h, body });
    const bytes = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, headers: r.headers, bytes, text: () => new TextDecoder().decode(bytes), json: () => JSON.parse(new TextDecoder().decode(bytes)) };
  }
}

// Percent-encodes bytes (or a string's UTF-8) as one path segment.
function seg(b) {
  const bytes = typeof b === "string" ? new TextEncoder().encode(b) : b;
  return Array.from(bytes, (x) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(x)) ? String.fromCharCode(x) : "%" + x.toString(16).toUpperCase().padStart(2, "0"))).join("");
}

const cellPath = (t, hk, sk) => `/v1/tables/${t}/rows/${seg(hk)}/cells/${seg(sk)}`;

// --- The browser ---------------------------------------------------------

const node = new Node();
let browser;
let page;
const problems = []; // console errors, page errors, CSP refusals
const foreign = []; // requests to anywhere but the node

before(async () => {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  await node.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  context.setDefaultTimeout(TIMEOUT);
  page = await context.newPage();
  page.on("console", (m) => {
    // A failed request is logged by Chromium; the tests cause some (404,
    // 409, 412, 422) on purpose and check that the page shows them.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(node.base + "/") && !u.startsWith("data:")) foreign.push(u);
  });
});

after(async () => {
  if (browser) await browser.close();
  await node.stop();
});

async function shot(name, opts = {}) {
  await page.screenshot({ path: path.join(OUTPUT_DIR, name), fullPage: opts.fullPage !== false, animations: "disabled" });
}

async function go(hash) {
  await page.goto(`${node.base}/${hash}`);
}

// Opens a console page as a new view even when it is the one on screen
// (going to the same address again would not render it again).
async function goAfresh(hash) {
  await go("#/nowhere");
  await page.getByRole("heading", { name: "Not found" }).waitFor();
  await go(hash);
}

const problem = (text) => page.locator(".problem", { hasText: text });
const notice = (text) => page.locator(".notice", { hasText: text });
const byteForm = (name) => page.locator(".bytes-field", { has: page.locator(`[name="${name}"]`) }).locator("select");
const textOf = (loc) => loc.allInnerTexts();

async function dismissMessages() {
  const close = page.locator(".messages .close");
  while ((await close.count()) > 0) await close.first().click();
}

// promise, or a failure naming what it waited for after TIMEOUT.
function within(promise, what) {
  let timer;
  const deadline = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT} ms waiting for ${what}`)), TIMEOUT);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// Holds the page's requests whose URL (a URL object) satisfies match, each
// until the test lets it go, so that a test decides the order in which
// answers reach the page. next(what) resolves with the next held request,
// {url, release(answer)}. release() sends the request on to the node, or
// fulfills it with answer (route.fulfill's options), and resolves once the
// request has ended for the page: its answer received in full, or aborted
// by the page. stop() lets every other request through, those still held
// included.
async function holdRequests(match) {
  const held = []; // every request held, in the order they came
  let taken = 0; // how many of them next() gave out
  let arrived = null; // wakes the next() waiting for a request
  const ended = (request) => new Promise((resolve) => {
    const done = (r) => {
      if (r !== request) return;
      page.off("requestfinished", done);
      page.off("requestfailed", done);
      resolve();
    };
    page.on("requestfinished", done);
    page.on("requestfailed", done);
  });
  const handler = (route, request) => {
    const end = ended(request);
    held.push({
      route,
      released: false,
      url: new URL(request.url()),
      async release(answer) {
        this.released = true;
        await (answer ? route.fulfill(answer) : route.continue());
        await within(end, `the end of ${request.url()}`);
      },
    });
    if (arrived) arrived();
  };
  await page.route(match, handler);
  return {
    next: (what) => within(new Promise((resolve) => {
      const take = () => {
        if (taken < held.length) {
          arrived = null;
          resolve(held[taken++]);
        } else {
          arrived = take;
        }
      };
      take();
    }), what),
    async stop() {
      for (const item of held) if (!item.released) await item.route.continue();
      await page.unroute(match, handler);
    },
  };
}

// --- Tests ---------------------------------------------------------------

test("the console is served by the node with its own files only", async () => {
  const resp = await page.goto(`${node.base}/`);
  assert.equal(resp.status(), 200);
  const csp = resp.headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  await page.getByRole("heading", { name: "Tables" }).waitFor();
  await page.getByText("No tables yet").waitFor();
  assert.deepEqual(foreign, []);
});

test("create tables, and a refused create shows the problem", async () => {
  await go("#/");
  const form = page.locator("form.create-table");
  await form.locator('[name="name"]').fill("fruit");
  await form.locator('[name="partitions"]').selectOption("4");
  await form.getByRole("button", { name: "Create table" }).click();
  const row = page.locator('tr[data-table="fruit"]');
  await row.waitFor();
  assert.deepEqual((await textOf(row.locator("td"))).slice(1, 5), ["4", "1", "none", "available"]);
  await notice("Created table fruit").waitFor();

  // A table whose replicas this single node cannot all hold, with a TTL.
  await form.locator('[name="name"]').fill("shadow");
  await form.locator('[name="partitions"]').selectOption("2");
  await form.locator('[name="replicas"]').fill("3");
  await form.locator('[name="default_ttl"]').fill("86400");
  await form.getByRole("button", { name: "Create table" }).click();
  await page.locator('tr[data-table="shadow"]').waitFor();
  assert.deepEqual((await textOf(page.locator('tr[data-table="shadow"] td'))).slice(1, 5), ["2", "3", "1 d", "available"]);

  // The same name again: the node's 409 is shown as title, detail and code.
  await form.locator('[name="name"]').fill("fruit");
  await form.getByRole("button", { name: "Create table" }).click();
  const p = problem("Conflict (409)");
  await p.waitFor();
  assert.match(await p.innerText(), /a table named fruit exists/);
  assert.match(await p.innerText(), /TABLE_EXISTS/);
  const listed = await node.http("GET", "/v1/tables");
  assert.deepEqual(listed.json().tables.map((t) => t.name).sort(), ["fruit", "shadow"]);
  await shot("tables.png");
  await dismissMessages();
});

const BLOB = new Uint8Array([0x00, 0xff, 0x10, 0x80, 0xc3, 0x28]); // not UTF-8
const BIN_HK = new Uint8Array([0x00, 0x2f, 0xfe]); // NUL, "/", not UTF-8
const BIN_SK = new Uint8Array([0xff]);

test("put cells with text and binary keys and values", async () => {
  const put = async (hk, sk, body, type = "text/plain") => {
    const r = await node.http("PUT", cellPath("fruit", hk, sk), { body, headers: { "Content-Type": type } });
    assert.equal(r.status, 201, r.text());
  };
  await put("apple", "color", "red");
  await put("apple", "taste", "sweet");
  await put("apple", "count", "41");
  await put("apple", "blob", BLOB, "application/octet-stream");
  await put(BIN_HK, BIN_SK, "bin-key");
  for (let i = 0; i < 30; i++) await put(`row-${String(i).padStart(3, "0")}`, "n", String(i));
  for (let i = 0; i < 25; i++) await put("many", `k${String(i).padStart(2, "0")}`, `v${i}`);

  // Two more through the page: a text value, and bytes typed as hex.
  await go(`#/tables/fruit/rows/apple`);
  const form = page.locator("form.put-cell");
  await form.locator('[name="new_sortkey"]').fill("note");
  await form.locator('[name="new_value"]').fill("hello, world ✓");
  await form.getByRole("button", { name: "Put cell" }).click();
  await notice("Put cell note").waitFor();
  await byteForm("new_value").selectOption("hex");
  await form.locator('[name="new_sortkey"]').fill("raw");
  await form.locator('[name="new_value"]').fill("de ad be ef 00");
  await form.getByRole("button", { name: "Put cell" }).click();
  await notice("Put cell raw").waitFor();

  let r = await node.http("GET", cellPath("fruit", "apple", "note"));
  assert.equal(r.text(), "hello, world ✓");
  assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
  r = await node.http("GET", cellPath("fruit", "apple", "raw"));
  assert.deepEqual([...r.bytes], [0xde, 0xad, 0xbe, 0xef, 0x00]);
  assert.equal(r.headers.get("content-type"), "application/octet-stream");

  // Putting over an existing cell from the row view is refused (create only).
  await form.locator('[name="new_value"]').fill("");
  await byteForm("new_value").selectOption("text");
  await form.locator('[name="new_sortkey"]').fill("color");
  await form.locator('[name="new_value"]').fill("overwritten?");
  await form.getByRole("button", { name: "Put cell" }).click();
  await problem("Precondition failed (412)").waitFor();
  assert.equal((await node.http("GET", cellPath("fruit", "apple", "color"))).text(), "red");
  await dismissMessages();
});

test("browse a table a page at a time, and filter by prefixes", async () => {
  const total = 4 + 2 + 1 + 30 + 25; // apple, the two from the page, the binary row, row-*, many
  await go("#/tables/fruit");
  await page.locator(".table-info", { hasText: "4 partitions" }).waitFor();
  const filters = page.locator("form.scan-filters");
  await filters.locator('[name="page_size"]').selectOption("10");
  await filters.getByRole("button", { name: "Scan" }).click();
  const rows = page.locator("table.cells tbody tr");
  const more = page.getByRole("button", { name: "More" });
  let clicks = 0;
  await eventually(async () => assert.ok((await rows.count()) > 0 && (await rows.count()) <= 10), "the first page");
  while (await more.isVisible()) {
    const before = await rows.count();
    await more.click();
    clicks++;
    await eventually(async () => assert.ok((await rows.count()) > before || !(await more.isVisible())), "the next page");
    assert.ok(clicks < 50, "the scan does not end");
  }
  await page.locator(".scan-status", { hasText: "end of table" }).waitFor();
  assert.ok(clicks >= 6, `only ${clicks} pages of at most 10 cells`);
  const seen = new Set();
  for (const tr of await rows.all()) {
    const [hk, sk] = await tr.locator("td").allInnerTexts();
    const key = `${hk}\u0000${sk}`;
    assert.ok(!seen.has(key), `${key} shown twice`);
    seen.add(key);
  }
  assert.equal(seen.size, total);
  await page.locator(".scan-status", { hasText: `${total} cells` }).waitFor();
  // The binary value is shown in hex, never as text.
  const blob = page.locator("table.cells tbody tr", { has: page.locator("td:nth-child(2)", { hasText: /^blob$/ }) });
  assert.match(await blob.locator("td.value").innerText(), /HEX\s+00 ff 10 80 c3 28/i);
  await shot("browse-paged.png");

  // Hashkey prefix.
  await filters.locator('[name="hashkey_prefix"]').fill("row-01");
  await filters.locator('[name="page_size"]').selectOption("50");
  await filters.getByRole("button", { name: "Scan" }).click();
  await page.locator(".scan-status", { hasText: "10 cells · end of table" }).waitFor();
  const hks = (await page.locator("table.cells tbody tr td:first-child").allInnerTexts()).sort();
  assert.deepEqual(hks, Array.from({ length: 10 }, (_, i) => `row-01${i}`));
  // Sortkey prefix (and none for the hashkey).
  await filters.locator('[name="hashkey_prefix"]').fill("");
  await filters.locator('[name="sortkey_prefix"]').fill("co");
  await filters.getByRole("button", { name: "Scan" }).click();
  await page.locator(".scan-status", { hasText: "2 cells · end of table" }).waitFor();
  assert.deepEqual((await page.locator("table.cells tbody tr td:nth-child(2)").allInnerTexts()).sort(), ["color", "count"]);
  // A hashkey prefix given in hex finds the binary row; its links carry the bytes.
  await filters.locator('[name="sortkey_prefix"]').fill("");
  await byteForm("hashkey_prefix").selectOption("hex");
  await filters.locator('[name="hashkey_prefix"]').fill("00 2f");
  await filters.getByRole("button", { name: "Scan" }).click();
  await page.locator(".scan-status", { hasText: "1 cell · end of table" }).waitFor();
  await shot("browse-filtered.png");
  await page.locator("table.cells tbody tr td:first-child a").click();
  await page.locator("h1", { hasText: "00 2f fe" }).waitFor();
  await page.locator("table.cells tbody tr td:first-child a").click();
  await page.locator("textarea[name=value]").waitFor();
  await eventually(async () => assert.equal(await page.locator("textarea[name=value]").inputValue(), "bin-key"), "the binary-keyed cell");
  assert.match(page.url(), /#\/tables\/fruit\/rows\/%00%2F%FE\/cells\/%FF$/);
});

test("a row: range, prefix filter, reverse and paging", async () => {
  await go("#/tables/fruit/rows/apple");
  const sortkeys = () => page.locator("table.cells tbody tr td:first-child").allInnerTexts();
  await page.locator(".scan-status", { hasText: "6 cells · end of row" }).waitFor();
  assert.deepEqual(await sortkeys(), ["blob", "color", "count", "note", "raw", "taste"]);
  await page.locator(".pill", { hasText: "6 live cells" }).waitFor();
  const form = page.locator("form.row-filters");
  await form.locator('[name="filter"]').fill("c");
  await form.getByRole("button", { name: "Read" }).click();
  await page.locator(".scan-status", { hasText: "2 cells · end of row" }).waitFor();
  assert.deepEqual(await sortkeys(), ["color", "count"]);
  await form.locator('[name="filter"]').fill("");
  await form.locator('[name="reverse"]').check();
  await form.getByRole("button", { name: "Read" }).click();
  await eventually(async () => assert.deepEqual(await sortkeys(), ["taste", "raw", "note", "count", "color", "blob"]), "reverse order");
  await form.locator('[name="reverse"]').uncheck();
  await form.locator('[name="start"]').fill("count");
  await form.locator('[name="stop"]').fill("raw");
  await form.locator('[name="stop_inclusive"]').check();
  await form.getByRole("button", { name: "Read" }).click();
  await eventually(async () => assert.deepEqual(await sortkeys(), ["count", "note", "raw"]), "the range [count, raw]");
  await shot("row.png");

  // Paging through a row of 25 cells, 10 at a time.
  await go("#/tables/fruit/rows/many");
  await page.locator(".scan-status", { hasText: "25 cells · end of row" }).waitFor();
  const f2 = page.locator("form.row-filters");
  await f2.locator('[name="page_size"]').selectOption("10");
  await f2.getByRole("button", { name: "Read" }).click();
  await page.locator(".scan-status", { hasText: /^10 cells$/ }).waitFor();
  await page.getByRole("button", { name: "More" }).click();
  await page.locator(".scan-status", { hasText: /^20 cells$/ }).waitFor();
  await page.getByRole("button", { name: "More" }).click();
  await page.locator(".scan-status", { hasText: "25 cells · end of row" }).waitFor();
  assert.deepEqual(await sortkeys(), Array.from({ length: 25 }, (_, i) => `k${String(i).padStart(2, "0")}`));
  await page.getByRole("button", { name: "More" }).waitFor({ state: "hidden" });
});

// A query that is still loading when the person starts another one, or
// leaves the page, must not paint: the held answer of the first query is
// let go before the second's, and only the second's cells (or nothing of
// the first's error) may be on screen once the second has painted.

test("Read pressed while a row's page loads shows only the new read's cells", async () => {
  const gate = await holdRequests((u) => u.pathname === "/v1/tables/fruit/rows/apple");
  try {
    await goAfresh("#/tables/fruit/rows/apple");
    const first = await gate.next("the first read");
    assert.equal(first.url.searchParams.get("filter"), null);
    const form = page.locator("form.row-filters");
    await form.locator('[name="filter"]').fill("c");
    await form.getByRole("button", { name: "Read" }).click();
    const second = await gate.next("the second read");
    assert.equal(second.url.searchParams.get("filter"), "c");
    await first.release();
    await second.release();
    await page.locator(".scan-status", { hasText: "end of row" }).waitFor();
    assert.deepEqual(await page.locator("table.cells tbody tr td:first-child").allInnerTexts(), ["color", "count"]);
    assert.equal(await page.locator(".scan-status").innerText(), "2 cells · end of row");
  } finally {
    await gate.stop();
  }
});

test("Scan pressed while a scan loads replaces it", async () => {
  const gate = await holdRequests((u) => u.pathname === "/v1/tables/fruit/scan");
  try {
    await goAfresh("#/tables/fruit");
    const first = await gate.next("the first scan");
    assert.equal(first.url.searchParams.get("sortkey_prefix"), null);
    const filters = page.locator("form.scan-filters");
    await filters.locator('[name="sortkey_prefix"]').fill("co");
    await filters.getByRole("button", { name: "Scan" }).click();
    const second = await gate.next("the second scan");
    assert.equal(second.url.searchParams.get("sortkey_prefix"), "co");
    await first.release();
    await second.release();
    await page.locator(".scan-status", { hasText: "end of table" }).waitFor();
    assert.deepEqual((await page.locator("table.cells tbody tr td:nth-child(2)").allInnerTexts()).sort(), ["color", "count"]);
    assert.equal(await page.locator(".scan-status").innerText(), "2 cells · end of table");
  } finally {
    await gate.stop();
  }
});

test("an error answered to a page the person has left is not shown on the next one", async () => {
  const gate = await holdRequests((u) => u.pathname === "/v1/tables/fruit/rows/apple" || u.pathname === "/v1/cluster");
  try {
    await goAfresh("#/tables/fruit/rows/apple");
    const stale = await gate.next("the row's read");
    await page.locator('[data-nav="cluster"]').click();
    const current = await gate.next("the cluster");
    assert.equal(current.url.pathname, "/v1/cluster");
    await stale.release({
      status: 503,
      contentType: "application/problem+json",
      body: JSON.stringify({ type: "/problems/no-primary", title: "Service unavailable", status: 503, detail: "an answer for the row page", code: "NO_PRIMARY" }),
    });
    await current.release();
    // The cluster page has painted all of it: its maps need every answer of the round.
    await page.locator('table.pmap[data-table="fruit"]').waitFor();
    assert.deepEqual(await page.locator(".messages").allInnerTexts(), [""]);
  } finally {
    await gate.stop();
  }
});

test("a row's count follows next_cursor, sums the pages, and stops at a bound", async () => {
  const pages = { "": { count: 2, next_cursor: "p1" }, p1: { count: 0, next_cursor: "p2" }, p2: { count: 4, next_cursor: null } };
  let endless = false;
  const cursors = [];
  const isCount = (u) => u.pathname === "/v1/tables/fruit/rows/apple/count";
  const answer = (route, request) => {
    const cursor = new URL(request.url()).searchParams.get("cursor") ?? "";
    cursors.push(cursor);
    return route.fulfill({ json: endless ? { count: 1, next_cursor: `c${cursors.length}` } : pages[cursor] });
  };
  await page.route(isCount, answer);
  try {
    await goAfresh("#/tables/fruit/rows/apple");
    await page.locator(".pill", { hasText: "6 live cells" }).waitFor();
    assert.deepEqual(cursors, ["", "p1", "p2"]);
    // A count that never ends: the console stops after 1000 pages.
    endless = true;
    cursors.length = 0;
    await page.locator("form.row-filters").getByRole("button", { name: "Read" }).click();
    await page.locator(".pill", { hasText: "at least 1000 live cells" }).waitFor();
    assert.equal(cursors.length, 1000);
  } finally {
    await page.unroute(isCount, answer);
  }
});

test("a binary value is shown and edited as hex, byte for byte", async () => {
  await go("#/tables/fruit/rows/apple/cells/blob");
  const value = page.locator("textarea[name=value]");
  await eventually(async () => assert.equal(await value.inputValue(), "00 ff 10 80 c3 28"), "the value in hex");
  assert.equal(await byteForm("value").inputValue(), "hex");
  await page.locator(".cell-info .badge", { hasText: "binary" }).waitFor();
  await page.locator(".cell-info .pill", { hasText: "application/octet-stream" }).waitFor();
  // As base64, and back.
  await byteForm("value").selectOption("base64");
  assert.equal(await value.inputValue(), Buffer.from(BLOB).toString("base64"));
  // Text would mangle the bytes: refused, and the editor keeps base64.
  await byteForm("value").selectOption("text");
  await problem("Cannot show these bytes as text").waitFor();
  assert.equal(await byteForm("value").inputValue(), "base64");
  await byteForm("value").selectOption("hex");
  await shot("cell-binary.png");
  await dismissMessages();
  await value.fill("00 ff 10 80 c3 28 01");
  await page.getByRole("button", { name: "Save" }).click();
  await notice("Saved: version").waitFor();
  const r = await node.http("GET", cellPath("fruit", "apple", "blob"));
  assert.deepEqual([...r.bytes], [...BLOB, 0x01]);
  assert.equal(r.headers.get("content-type"), "application/octet-stream");
});

test("edit a text cell", async () => {
  await go("#/tables/fruit/rows/apple/cells/taste");
  const value = page.locator("textarea[name=value]");
  await eventually(async () => assert.equal(await value.inputValue(), "sweet"), "the value");
  assert.equal(await byteForm("value").inputValue(), "text");
  const before = (await node.http("GET", cellPath("fruit", "apple", "taste"))).headers.get("etag");
  await value.fill("tart, then sweet");
  await page.getByRole("button", { name: "Save" }).click();
  await notice("Saved: version").waitFor();
  const r = await node.http("GET", cellPath("fruit", "apple", "taste"));
  assert.equal(r.text(), "tart, then sweet");
  assert.notEqual(r.headers.get("etag"), before);
  await page.locator(".cell-info .pill", { hasText: `version ${r.headers.get("etag").replaceAll('"', "")}` }).waitFor();
  await shot("cell-text.png");
});

test("a change behind the page's back is shown as a conflict, not overwritten", async () => {
  await go("#/tables/fruit/rows/apple/cells/color");
  const value = page.locator("textarea[name=value]");
  await eventually(async () => assert.equal(await value.inputValue(), "red"), "the value");
  // Someone else writes the cell after the page loaded it.
  const other = await node.http("PUT", cellPath("fruit", "apple", "color"), { body: "green", headers: { "Content-Type": "text/plain" } });
  assert.equal(other.status, 204);
  const now = other.headers.get("etag").replaceAll('"', "");
  await value.fill("blue");
  await page.getByRole("button", { name: "Save" }).click();
  const p = problem("Precondition failed (412)");
  await p.waitFor();
  assert.match(await p.innerText(), /PRECONDITION_FAILED/);
  assert.match(await p.innerText(), new RegExp(`changed after this page loaded version \\d+ \\(it is now version ${now}\\)`));
  assert.match(await p.innerText(), /Nothing was overwritten/);
  assert.equal((await node.http("GET", cellPath("fruit", "apple", "color"))).text(), "green");
  assert.equal(await value.inputValue(), "blue", "the person's edit is kept");
  await shot("cell-conflict.png");
  await p.getByRole("button", { name: "Load the current value" }).click();
  await eventually(async () => assert.equal(await value.inputValue(), "green"), "the current value");
  await p.waitFor({ state: "detached" });
});

test("increment, set a TTL and delete a cell", async () => {
  await go("#/tables/fruit/rows/apple/cells/count");
  const value = page.locator("textarea[name=value]");
  await eventually(async () => assert.equal(await value.inputValue(), "41"), "the value");
  await page.locator("form.cell-incr").getByRole("button", { name: "Increment" }).click();
  await notice("the value is now 42").waitFor();
  await eventually(async () => assert.equal(await value.inputValue(), "42"), "the new value");
  assert.equal((await node.http("GET", cellPath("fruit", "apple", "count"))).text(), "42");

  await page.locator("form.cell-ttl [name=ttl]").fill("3600");
  await page.locator("form.cell-ttl").getByRole("button", { name: "Set TTL" }).click();
  await notice("TTL set to").waitFor();
  const j = await node.http("GET", cellPath("fruit", "apple", "count"), { headers: { Accept: "application/json" } });
  assert.ok(j.json().ttl > 3500 && j.json().ttl <= 3600, JSON.stringify(j.json()));
  assert.equal(j.json().value, "42");
  await page.locator(".cell-info .pill", { hasText: /TTL (1 h|59 min)/ }).waitFor();

  // Incrementing a value that is not an integer: the node's 422 is shown.
  await go("#/tables/fruit/rows/apple/cells/note");
  await eventually(async () => assert.equal(await value.inputValue(), "hello, world ✓"), "the note");
  await page.locator("form.cell-incr").getByRole("button", { name: "Increment" }).click();
  await problem("(422)").waitFor();
  assert.match(await problem("(422)").innerText(), /NOT_AN_INTEGER/);
  await dismissMessages();

  await go("#/tables/fruit/rows/apple/cells/count");
  await eventually(async () => assert.equal(await value.inputValue(), "42"), "the value");
  await page.getByRole("button", { name: "Delete cell" }).click();
  const dialog = page.locator("dialog.confirm");
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Delete cell" }).click();
  await notice("Deleted cell count").waitFor();
  await page.locator(".cell-info", { hasText: "no such cell" }).waitFor();
  assert.equal((await node.http("GET", cellPath("fruit", "apple", "count"))).status, 404);
});

test("drop a table after confirming, and recall it", async () => {
  await go("#/");
  const row = page.locator('tr[data-table="fruit"]');
  await row.getByRole("button", { name: "Drop" }).click();
  const dialog = page.locator("dialog.confirm");
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Drop table fruit\?/);
  await shot("drop-confirm.png", { fullPage: false });
  // Cancel keeps it.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  assert.equal((await node.http("GET", "/v1/tables/fruit")).status, 200);

  await row.getByRole("button", { name: "Drop" }).click();
  await dialog.getByRole("button", { name: "Drop table" }).click();
  await notice("Dropped table fruit").waitFor();
  const dropped = page.locator('tr[data-dropped="fruit"]');
  await dropped.waitFor();
  await row.waitFor({ state: "detached" });
  assert.equal((await node.http("GET", "/v1/tables/fruit")).status, 404);
  await shot("tables-dropped.png");

  await dropped.getByRole("button", { name: "Recall" }).click();
  await notice("Recalled table fruit").waitFor();
  await row.waitFor();
  await dropped.waitFor({ state: "detached" });
  assert.equal((await node.http("GET", cellPath("fruit", "apple", "taste"))).text(), "tart, then sweet");
});

test("the cluster page shows the node, its roles, the partitions short of replicas, and a map with a P for every partition", async () => {
  await go("#/cluster");
  const addr = `127.0.0.1:${node.port}`;
  const n = page.locator(`table.nodes tr[data-node="${addr}"]`);
  await n.waitFor();
  assert.deepEqual(await n.locator("td").allInnerTexts(), [addr, "alive", "meta data", "METADATA LEADER", "6", "0"]);
  const under = page.locator("section.under-replicated");
  await under.getByText("2 of 6 partitions have fewer replicas").waitFor();
  assert.equal(await under.locator("tbody tr").count(), 2);
  assert.deepEqual(await under.locator("tbody tr").first().locator("td").allInnerTexts(), ["shadow", "0", "1 of 3", addr, "none"]);
  await page.locator("section.moves").getByText("No moves in progress.").waitFor();

  // The map: one row, the node's, with a P in every partition's column.
  const fruit = page.locator('table.pmap[data-table="fruit"]');
  await fruit.waitFor();
  assert.deepEqual(await fruit.locator("tr[data-map-node]").evaluateAll((rows) => rows.map((r) => r.dataset.mapNode)), [addr]);
  assert.deepEqual(await fruit.locator("th.pidx").allInnerTexts(), ["0", "1", "2", "3"]);
  assert.deepEqual(await fruit.locator(`tr[data-map-node="${addr}"] td`).allInnerTexts(), ["P", "P", "P", "P"]);
  assert.equal(await fruit.locator(".rb-p").count(), 4);
  assert.equal(await fruit.locator(".rb-s, .rb-l, .warn").count(), 0);
  await page.locator('details[data-table="fruit"] summary', { hasText: "all healthy" }).waitFor();
  // shadow asks for 3 replicas of which this node is the only one: both
  // of its partitions are marked, and say why.
  const shadow = page.locator('table.pmap[data-table="shadow"]');
  assert.deepEqual(await shadow.locator(`tr[data-map-node="${addr}"] td`).allInnerTexts(), ["P", "P"]);
  assert.deepEqual(await shadow.locator("th.pidx.warn").allInnerTexts(), ["0", "1"]);
  assert.equal(await shadow.locator("td.warn").count(), 2);
  assert.match(await shadow.locator('th.pidx[data-p="1"]').getAttribute("title"), /Unhealthy: 1 of 3 replicas/);
  await page.locator('details[data-table="shadow"] summary', { hasText: "2 unhealthy" }).waitFor();
  await shot("cluster.png");
});

// A cluster of three nodes, faked: GET /v1/cluster and every GET
// /v1/tables/{t} are answered by the test (the tables' own fields from the
// node, their partitions made up), in a context of its own whose clock the
// test can run forward.
const NODE_A = "10.0.0.1:7000";
const NODE_B = "10.0.0.2:7000";
const NODE_C = "10.0.0.3:7000";

function fakeCluster(stateOfB, moves = []) {
  return {
    nodes: [
      { address: NODE_A, state: "alive", roles: ["meta", "data"], primaries: 2, secondaries: 2 },
      { address: NODE_B, state: stateOfB, roles: ["data"], primaries: 1, secondaries: 1 },
      { address: NODE_C, state: "alive", roles: ["data"], primaries: 2, secondaries: 2 },
    ],
    meta_leader: NODE_A,
    partition_count: 6,
    under_replicated_count: 1,
    under_replicated: [{ table: "shadow", index: 1, replica_count: 3, replicas: 2, primary: NODE_C, secondaries: [NODE_A] }],
    moves,
  };
}

const FAKE_PARTITIONS = {
  // fruit asks for 1 replica: 1 is on the unreachable node, 2 has no primary.
  fruit: [
    { primary: NODE_A, secondaries: [] },
    { primary: NODE_B, secondaries: [] },
    { primary: null, secondaries: [NODE_C] },
    { primary: NODE_C, secondaries: [], learners: [NODE_A] },
  ],
  // shadow asks for 3: 0 has them all, 1 has 2.
  shadow: [
    { primary: NODE_A, secondaries: [NODE_B, NODE_C] },
    { primary: NODE_C, secondaries: [NODE_A] },
  ],
};

async function fakedClusterPage() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 600 } });
  ctx.setDefaultTimeout(TIMEOUT);
  const p = await ctx.newPage();
  p.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
  });
  p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const fake = { stateOfB: "unreachable", moves: [], clusterRequests: 0 };
  await p.route((u) => u.pathname === "/v1/cluster", (route) => {
    fake.clusterRequests++;
    return route.fulfill({ json: fakeCluster(fake.stateOfB, fake.moves) });
  });
  await p.route((u) => /^\/v1\/tables\/[^/]+$/.test(u.pathname), async (route) => {
    const resp = await route.fetch();
    const table = await resp.json();
    const parts = FAKE_PARTITIONS[table.name];
    if (parts) table.partitions = parts.map((x, index) => ({ index, ballot: 3, last_committed: 10 + index, ...x }));
    return route.fulfill({ response: resp, json: table });
  });
  await p.clock.install();
  return { ctx, p, fake };
}

test("the partition map of three nodes marks the unhealthy partitions and the unreachable node, and repaints when the cluster changes", async () => {
  const { ctx, p, fake } = await fakedClusterPage();
  try {
    await p.goto(`${node.base}/#/cluster`);
    const fruit = p.locator('table.pmap[data-table="fruit"]');
    await fruit.waitFor();
    const rows = () => fruit.locator("tr[data-map-node]").evaluateAll((trs) => trs.map((r) => r.dataset.mapNode));
    assert.deepEqual(await rows(), [NODE_A, NODE_B, NODE_C]);
    const cells = (map, addr) => map.locator(`tr[data-map-node="${addr}"] td`).allInnerTexts();
    assert.deepEqual(await cells(fruit, NODE_A), ["P", "", "", "L"]);
    assert.deepEqual(await cells(fruit, NODE_B), ["", "P", "", ""]);
    assert.deepEqual(await cells(fruit, NODE_C), ["", "", "S", "P"]);

    // Partition 1's primary is on the unreachable node, 2 has none.
    const warned = (map) => map.locator("th.pidx.warn").evaluateAll((ths) => ths.map((th) => th.dataset.p));
    assert.deepEqual(await warned(fruit), ["1", "2"]);
    assert.match(await fruit.locator('th.pidx[data-p="1"]').getAttribute("title"), /Unhealthy: its primary 10\.0\.0\.2:7000 is unreachable/);
    assert.match(await fruit.locator('th.pidx[data-p="2"]').getAttribute("title"), /Unhealthy: no primary/);
    assert.equal(await fruit.locator('td.warn[data-p="1"]').count(), 3, "the whole column is marked");
    assert.match(await fruit.locator(`tr[data-map-node="${NODE_B}"] td[data-p="1"]`).getAttribute("title"), /primary on 10\.0\.0\.2:7000 \(unreachable\)/);
    assert.equal(await fruit.locator('td.warn[data-p="0"], td.warn[data-p="3"]').count(), 0);
    // shadow's partition 1 has 2 of its 3 replicas.
    const shadow = p.locator('table.pmap[data-table="shadow"]');
    assert.deepEqual(await warned(shadow), ["1"]);
    assert.match(await shadow.locator('th.pidx[data-p="1"]').getAttribute("title"), /Unhealthy: 2 of 3 replicas/);
    assert.deepEqual(await cells(shadow, NODE_B), ["S", ""]);
    assert.deepEqual(await p.locator('details[data-table="fruit"] .pmap-why li').allInnerTexts(),
      [`Partition 1: its primary ${NODE_B} is unreachable`, "Partition 2: no primary"]);

    // The unreachable node, in its map rows and in the nodes table.
    const bHeader = fruit.locator(`tr[data-map-node="${NODE_B}"] th.node`);
    assert.match(await bHeader.innerText(), /unreachable/);
    assert.equal(await bHeader.locator(".status.state-unreachable").count(), 1);
    const bNode = p.locator(`table.nodes tr[data-node="${NODE_B}"]`);
    assert.deepEqual(await bNode.locator("td").allInnerTexts(), [NODE_B, "unreachable", "data", "", "1", "1"]);
    assert.equal(await bNode.locator(".status.state-unreachable").count(), 1);
    assert.deepEqual(await p.locator(`table.nodes tr[data-node="${NODE_A}"] td`).allInnerTexts(), [NODE_A, "alive", "meta data", "METADATA LEADER", "2", "2"]);
    await p.locator('details[data-table="fruit"] summary', { hasText: "2 unhealthy" }).waitFor();
    await p.screenshot({ path: path.join(OUTPUT_DIR, "cluster-map.png"), fullPage: true, animations: "disabled" });

    // The node comes back: the next round repaints the sections in place,
    // where the person has scrolled to.
    const block = await p.locator('details[data-table="fruit"]').elementHandle();
    const heading = await p.locator("h1", { hasText: "Cluster" }).elementHandle();
    const shadowMap = p.locator('table.pmap[data-table="shadow"]');
    await shadowMap.scrollIntoViewIfNeeded();
    assert.ok(await p.evaluate("window.scrollY") > 0, "the page scrolls");
    const onScreen = () => shadowMap.evaluate((el) => Math.round(el.getBoundingClientRect().top));
    const where = await onScreen();
    const polled = fake.clusterRequests;
    await p.locator("section.moves").getByText("No moves in progress.").waitFor();
    fake.stateOfB = "alive";
    fake.moves = [{ kind: "learn", table: "fruit", index: 2, from: NODE_C, to: NODE_B }];
    await eventually(async () => assert.deepEqual(await warned(fruit), ["2"]), "partition 1 to be healthy again");
    assert.ok(fake.clusterRequests > polled);
    assert.doesNotMatch(await bHeader.innerText(), /unreachable/);
    assert.equal(await bNode.locator("td").nth(1).innerText(), "alive");
    await p.locator('details[data-table="fruit"] summary', { hasText: "1 unhealthy" }).waitFor();
    assert.deepEqual(await p.locator("section.moves li").allInnerTexts(), [`fruit partition 2 (learn): ${NODE_C} → ${NODE_B}`]);
    // (The sections above it changed height; the browser's scroll anchoring
    // keeps it in place, to a pixel's rounding.)
    const now = await onScreen();
    assert.ok(Math.abs(now - where) <= 2, `what the person looks at stays where it was: at ${now}, was at ${where}`);
    assert.ok(await block.evaluate((el) => el.isConnected && el.open), "the map's block is the same one, still open");
    assert.ok(await heading.evaluate((el) => el.isConnected), "the page itself is not rebuilt");
  } finally {
    await ctx.close();
  }
});

test("the cluster page stops polling when the person leaves it", async () => {
  const { ctx, p, fake } = await fakedClusterPage();
  try {
    await p.goto(`${node.base}/#/cluster`);
    await p.locator('table.pmap[data-table="fruit"]').waitFor();
    // It polls: a second round comes by itself.
    const first = fake.clusterRequests;
    await eventually(async () => assert.ok(fake.clusterRequests > first), "the next round");

    await p.locator('[data-nav="tables"]').click();
    await p.locator('tr[data-table="fruit"]').waitFor();
    const left = fake.clusterRequests;
    // Ten rounds' worth of the page's time passes; then a request of the
    // new page, made after all of them, has come through.
    await p.clock.runFor(10 * 2000);
    const later = p.waitForRequest((r) => new URL(r.url()).pathname === "/v1/tables");
    await p.getByRole("button", { name: "Use" }).click();
    await later;
    await p.locator('tr[data-table="fruit"]').waitFor();
    assert.equal(fake.clusterRequests, left, "GET /v1/cluster after leaving the page");
  } finally {
    await ctx.close();
  }
});

test("a token typed in the bar is kept for the session and sent as a bearer token", async () => {
  await go("#/");
  await page.locator('tr[data-table="fruit"]').waitFor();
  await page.locator("#token").fill("s3cret-token");
  let req = page.waitForRequest((r) => r.url().includes("/v1/tables"));
  await page.getByRole("button", { name: "Use" }).click();
  assert.equal((await req).headers()["authorization"], "Bearer s3cret-token");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("cellar.token")), "s3cret-token");
  await page.locator(".token-state", { hasText: "in use" }).waitFor();
  // It survives a reload (same session) and goes with every call.
  req = page.waitForRequest((r) => r.url().includes("/v1/tables"));
  await page.reload();
  assert.equal((await req).headers()["authorization"], "Bearer s3cret-token");
  req = page.waitForRequest((r) => r.url().includes("/v1/tables"));
  await page.getByRole("button", { name: "Forget" }).click();
  assert.equal((await req).headers()["authorization"], undefined);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("cellar.token")), null);
});

test("with access tokens: the pages load without one, the API's 401 and 403 are shown, a token opens it", async () => {
  const sha = (t) => crypto.createHash("sha256").update(t).digest("hex");
  const secured = new Node((dir) => {
    fs.writeFileSync(path.join(dir, "tokens"), `viewer read ${sha("viewer-token-0123456789")}\n` +
      `ops admin ${sha("ops-token-0123456789")}\n`);
    return `tokens_file = ${path.join(dir, "tokens")}\nreadyz_auth = false\n`;
  });
  await secured.start();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  ctx.setDefaultTimeout(TIMEOUT);
  const p2 = await ctx.newPage();
  try {
    await p2.goto(`${secured.base}/#/`);
    const unauthorized = p2.locator(".problem", { hasText: "(401)" });
    await unauthorized.waitFor();
    assert.match(await unauthorized.innerText(), /UNAUTHORIZED/);
    await p2.screenshot({ path: path.join(OUTPUT_DIR, "auth-401.png"), fullPage: true });
    // A read token lists the tables; creating one needs admin: 403 shown.
    await p2.locator("#token").fill("viewer-token-0123456789");
    await p2.getByRole("button", { name: "Use" }).click();
    await p2.locator("form.create-table").waitFor();
    const form = p2.locator("form.create-table");
    await form.locator('[name="name"]').fill("guarded");
    await form.getByRole("button", { name: "Create table" }).click();
    const forbidden = p2.locator(".problem", { hasText: "(403)" });
    await forbidden.waitFor();
    assert.match(await forbidden.innerText(), /FORBIDDEN/);
    assert.match(await forbidden.innerText(), /viewer/);
    await p2.screenshot({ path: path.join(OUTPUT_DIR, "auth-403.png"), fullPage: true });
    let listed = await secured.http("GET", "/v1/tables", { headers: { Authorization: "Bearer ops-token-0123456789" } });
    assert.deepEqual(listed.json().tables, []);
    // The admin token creates it through the same form.
    await p2.locator("#token").fill("ops-token-0123456789");
    await p2.getByRole("button", { name: "Use" }).click();
    await form.locator('[name="name"]').fill("guarded");
    await form.getByRole("button", { name: "Create table" }).click();
    await p2.locator('tr[data-table="guarded"]').waitFor();
    listed = await secured.http("GET", "/v1/tables", { headers: { Authorization: "Bearer ops-token-0123456789" } });
    assert.deepEqual(listed.json().tables.map((t) => t.name), ["guarded"]);
  } finally {
    await ctx.close();
    await secured.stop();
  }
});

test("an unknown console address and an unknown table are shown, not blank", async () => {
  await go("#/nowhere/at/all");
  await page.getByRole("heading", { name: "Not found" }).waitFor();
  await go("#/tables/no-such-table");
  await problem("Not found (404)").waitFor();
  assert.match(await problem("Not found (404)").innerText(), /TABLE_NOT_FOUND/);
});

test("/docs renders the API reference from /openapi.yaml and tries an operation on this node", async () => {
  const yaml = fs.readFileSync(OPENAPI, "utf8");
  const operations = (yaml.match(/^\s+operationId: /gm) || []).length;
  assert.ok(operations > 30, `${operations} operations in openapi.yaml`);
  const resp = await page.goto(`${node.base}/docs`);
  assert.equal(resp.status(), 200);
  await page.locator(".swagger-ui .info .title", { hasText: "Cellar REST API" }).waitFor({ timeout: DOCS_TIMEOUT });
  await eventually(async () => assert.equal(await page.locator(".opblock").count(), operations), "every operation listed", DOCS_TIMEOUT);
  await page.locator("#operations-cells-putCell").waitFor();
  await page.locator("#operations-cluster-getCluster").waitFor();
  await shot("docs.png", { fullPage: false });
  await page.locator(".opblock-tag-section").first().scrollIntoViewIfNeeded();
  await page.locator(".opblock-tag-section").first().evaluate((el) => el.scrollIntoView());
  await shot("docs-operations.png", { fullPage: false });

  const op = page.locator("#operations-node-getHealthz");
  await op.locator(".opblock-summary").first().click();
  await op.getByRole("button", { name: "Try it out" }).click();
  const req = page.waitForRequest((r) => r.url() === `${node.base}/healthz`);
  await op.getByRole("button", { name: "Execute" }).click();
  await req;
  const status = op.locator(".live-responses-table tbody .response-col_status").first();
  await eventually(async () => assert.equal((await status.innerText()).trim(), "200"), "the live response");
  await op.locator(".live-responses-table", { hasText: '"status": "ok"' }).waitFor();
  await op.scrollIntoViewIfNeeded();
  await op.screenshot({ path: path.join(OUTPUT_DIR, "docs-try-it.png") });
});

test("no page logged an error or broke its Content-Security-Policy, and nothing came from elsewhere", () => {
  assert.deepEqual(problems, []);
  assert.deepEqual(foreign, []);
});

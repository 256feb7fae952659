// browse.js - one table's cells through the scan API: a page at a time
// ("More" follows next_cursor), filtered by hashkey prefix and sortkey
// prefix; and a form to open a row by its hashkey.
//
// A scan page may be short, even empty, and still carry a next_cursor (the
// node bounds the work per request): "More" keeps following the cursor
// until it has some cells or the scan ends, within a bound of requests.
// Pressing "Scan" again starts a new scan at once: the one still loading
// is abandoned and paints nothing.

import { call, Latest, paths } from "./api.js";
import { fieldBytes, sizeLabel } from "./bytes.js";
import { attempt, bytesCell, bytesField, field, h, hrefs, showProblem, ttlLabel } from "./dom.js";

const PAGE_SIZES = [10, 25, 50, 100, 500];
const MAX_EMPTY_PAGES = 20;

export async function renderBrowse(root, scope, table) {
  document.title = `${table} · Cellar`;
  const info = h("div", { class: "table-info" });
  const head = h("div", { class: "view-head" }, h("h1", {}, table), info);
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" }, h("a", { href: hrefs.tables() }, "Tables"), " / ", h("span", {}, table)),
    head,
  );

  const t = await attempt(() => call(paths.table(table), { scope }));
  if (!t) return;
  const meta = t.data;
  info.append(
    h("span", { class: "pill" }, `${meta.partition_count} partitions`),
    h("span", { class: "pill" }, `${meta.replica_count} ${meta.replica_count === 1 ? "replica" : "replicas"}`),
    h("span", { class: "pill" }, `default TTL ${meta.default_ttl ? ttlLabel(meta.default_ttl) : "none"}`),
    h("span", { class: `status status-${meta.status}` }, meta.status));

  // Open a row by hashkey.
  const hk = bytesField("Open a row by hashkey", { name: "open_hashkey", placeholder: "alice" });
  const open = h("form", { class: "inline-form open-row push-right" }, hk.el,
    h("button", { type: "submit", class: "secondary" }, "Open row"));
  open.addEventListener("submit", (e) => {
    e.preventDefault();
    let bytes;
    try {
      bytes = hk.get();
    } catch (err) {
      showProblem({ title: "The hashkey is not valid", detail: err.message });
      return;
    }
    if (!bytes.length) showProblem({ title: "A hashkey is 1 to 65535 bytes", detail: "type the row's hashkey" });
    else location.hash = hrefs.row(table, bytes);
  });

  // Scan filters.
  const hkPrefix = bytesField("Hashkey prefix", { name: "hashkey_prefix" });
  const skPrefix = bytesField("Sortkey prefix", { name: "sortkey_prefix" });
  const size = h("select", { name: "page_size" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === 50 }, String(n))));
  const filters = h("form", { class: "inline-form scan-filters" }, hkPrefix.el, skPrefix.el,
    field("Page size", size), h("button", { type: "submit", class: "primary" }, "Scan"));

  const body = h("tbody");
  const status = h("span", { class: "muted scan-status" });
  const more = h("button", { type: "button", class: "secondary more", hidden: true }, "More");
  const results = h("section", { class: "card" }, h("h2", {}, "Cells"), filters,
    h("table", { class: "grid cells" },
      h("thead", {}, h("tr", {}, h("th", {}, "Hashkey"), h("th", {}, "Sortkey"), h("th", {}, "Value"), h("th", { class: "num" }, "Size"), h("th", {}, "TTL"))),
      body),
    h("div", { class: "pager" }, status, more));
  head.append(open);
  root.append(results);

  const scans = new Latest(scope);
  let current = null; // the scan on screen: {scope, query, cursor, shown}

  // Shows a scan's next page, following empty pages within
  // MAX_EMPTY_PAGES requests; "More" is disabled meanwhile.
  async function page(scan) {
    more.disabled = true;
    try {
      for (let i = 0; i < MAX_EMPTY_PAGES; i++) {
        const r = await attempt(() => call(paths.scan(table), { scope: scan.scope, query: { ...scan.query, cursor: scan.cursor } }));
        if (!r) return;
        for (const item of r.data.items) addItem(scan, item);
        scan.cursor = r.data.next_cursor;
        if (r.data.items.length || !scan.cursor) break;
      }
      status.textContent = `${scan.shown} ${scan.shown === 1 ? "cell" : "cells"}` + (scan.cursor ? "" : " · end of table");
      more.hidden = !scan.cursor;
    } finally {
      if (!scan.scope.ended) more.disabled = false;
    }
  }

  function addItem(scan, item) {
    const hkb = fieldBytes(item, "hashkey");
    const skb = fieldBytes(item, "sortkey");
    const val = fieldBytes(item, "value") || new Uint8Array();
    scan.shown++;
    body.append(h("tr", {},
      h("td", {}, h("a", { href: hrefs.row(table, hkb) }, bytesCell(hkb, 40))),
      h("td", {}, h("a", { href: hrefs.cell(table, hkb, skb) }, bytesCell(skb, 40))),
      h("td", { class: "value" }, bytesCell(val, 80)),
      h("td", { class: "num" }, sizeLabel(val.length)),
      h("td", {}, ttlLabel(item.ttl))));
  }

  async function start() {
    let query;
    try {
      query = { hashkey_prefix: hkPrefix.get(), sortkey_prefix: skPrefix.get(), limit: Number(size.value) };
    } catch (err) {
      showProblem({ title: "A prefix is not valid", detail: err.message });
      return;
    }
    current = { scope: scans.begin(), query, cursor: null, shown: 0 };
    body.replaceChildren();
    status.textContent = "Loading…";
    more.hidden = true;
    await page(current);
  }

  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  more.addEventListener("click", () => page(current));
  await start();
}

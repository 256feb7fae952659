// row.js - one row: its cells through multi-get (a sortkey range, a
// prefix / postfix / anywhere filter, reverse order, a page at a time),
// its count of live cells, putting a new cell, and deleting the whole row
// after a confirmation. Pressing "Read" starts a new read at once: the
// read still loading (its cells and its count) is abandoned and paints
// nothing.

import { call, Latest, paths } from "./api.js";
import { fieldBytes, label, sizeLabel } from "./bytes.js";
import { attempt, bytesCell, bytesField, confirmDialog, field, h, hrefs, notice, showProblem, ttlLabel } from "./dom.js";

const PAGE_SIZES = [10, 25, 50, 100, 500];
const MAX_EMPTY_PAGES = 20;
const MAX_COUNT_PAGES = 1000;

// The Content-Type a new value is stored with when none is typed.
export function defaultType(form) {
  return form === "text" ? "text/plain; charset=utf-8" : "application/octet-stream";
}

// The row's live cells: the sum of the count's pages. A page with a
// next_cursor counted part of the row, and the next request repeats the
// parameters with that cursor; a node that sends no next_cursor counted
// the whole row at once. Resolves to {count, complete}: complete is false
// when MAX_COUNT_PAGES pages did not reach the end, and count is then a
// lower bound.
async function countCells(scope, table, hk) {
  let count = 0;
  let cursor = null;
  for (let i = 0; i < MAX_COUNT_PAGES; i++) {
    const r = await call(paths.count(table, hk), { scope, query: { cursor } });
    count += r.data.count;
    cursor = r.data.next_cursor || null;
    if (!cursor) return { count, complete: true };
  }
  return { count, complete: false };
}

export async function renderRow(root, scope, table, hk) {
  const name = label(hk, 40) || "(empty)";
  document.title = `${name} · ${table} · Cellar`;
  const count = h("span", { class: "pill" }, "…");
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" },
      h("a", { href: hrefs.tables() }, "Tables"), " / ", h("a", { href: hrefs.table(table) }, table), " / ", h("span", {}, "row")),
    h("div", { class: "view-head" }, h("h1", {}, h("span", { class: "muted" }, "Row "), bytesCell(hk, 60)), count,
      h("button", { type: "button", class: "danger small push-right", onclick: () => deleteRow() }, "Delete row")));

  // Range and filter.
  const start = bytesField("Start sortkey", { name: "start" });
  const startIncl = h("input", { type: "checkbox", name: "start_inclusive", checked: true });
  const stop = bytesField("Stop sortkey", { name: "stop", placeholder: "end of row" });
  const stopIncl = h("input", { type: "checkbox", name: "stop_inclusive" });
  const filterType = h("select", { name: "filter_type" },
    h("option", { value: "prefix" }, "prefix"), h("option", { value: "postfix" }, "postfix"), h("option", { value: "anywhere" }, "anywhere"));
  const filter = bytesField("Sortkey filter", { name: "filter" });
  const reverse = h("input", { type: "checkbox", name: "reverse" });
  const size = h("select", { name: "page_size" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === 50 }, String(n))));
  const form = h("form", { class: "inline-form row-filters" },
    h("div", { class: "group" }, start.el, h("label", { class: "check" }, startIncl, " inclusive")),
    h("div", { class: "group" }, stop.el, h("label", { class: "check" }, stopIncl, " inclusive")),
    h("div", { class: "group" }, field("Filter", filterType), filter.el),
    field("Page size", size),
    h("label", { class: "check" }, reverse, " reverse"),
    h("button", { type: "submit", class: "primary" }, "Read"));

  const body = h("tbody");
  const status = h("span", { class: "muted scan-status" });
  const more = h("button", { type: "button", class: "secondary more", hidden: true }, "More");
  const results = h("section", { class: "card" }, h("h2", {}, "Cells"), form,
    h("table", { class: "grid cells" },
      h("thead", {}, h("tr", {}, h("th", {}, "Sortkey"), h("th", {}, "Value"), h("th", { class: "num" }, "Size"), h("th", {}, "TTL"), h("th", { class: "num" }, "Version"))),
      body),
    h("div", { class: "pager" }, status, more));
  root.append(results, putForm());

  const reads = new Latest(scope);
  let current = null; // the read on screen: {scope, query, cursor, shown}

  // Shows a read's next page, following empty pages within
  // MAX_EMPTY_PAGES requests; "More" is disabled meanwhile.
  async function page(rd) {
    more.disabled = true;
    try {
      for (let i = 0; i < MAX_EMPTY_PAGES; i++) {
        const r = await attempt(() => call(paths.row(table, hk), { scope: rd.scope, query: { ...rd.query, cursor: rd.cursor } }));
        if (!r) return;
        for (const c of r.data.cells) addCell(rd, c);
        rd.cursor = r.data.next_cursor;
        if (r.data.cells.length || !rd.cursor) break;
      }
      status.textContent = `${rd.shown} ${rd.shown === 1 ? "cell" : "cells"}` + (rd.cursor ? "" : " · end of row");
      more.hidden = !rd.cursor;
    } finally {
      if (!rd.scope.ended) more.disabled = false;
    }
  }

  function addCell(rd, c) {
    const sk = fieldBytes(c, "sortkey");
    const val = fieldBytes(c, "value") || new Uint8Array();
    rd.shown++;
    body.append(h("tr", {},
      h("td", {}, h("a", { href: hrefs.cell(table, hk, sk) }, bytesCell(sk, 40))),
      h("td", { class: "value" }, bytesCell(val, 80)),
      h("td", { class: "num" }, sizeLabel(val.length)),
      h("td", {}, ttlLabel(c.ttl)),
      h("td", { class: "num" }, c.etag)));
  }

  async function showCount(rd) {
    const n = await attempt(() => countCells(rd.scope, table, hk));
    if (!n) return;
    count.textContent = `${n.complete ? "" : "at least "}${n.count} live ${n.count === 1 ? "cell" : "cells"}`;
  }

  async function read() {
    const q = { limit: Number(size.value), reverse: reverse.checked ? "true" : null };
    try {
      const s = start.get(), e = stop.get(), f = filter.get();
      if (s.length) q.start = s;
      if (!startIncl.checked) q.start_inclusive = "false";
      if (e.length) q.stop = e;
      if (stopIncl.checked) q.stop_inclusive = "true";
      if (f.length) {
        q.filter_type = filterType.value;
        q.filter = f;
      }
    } catch (err) {
      showProblem({ title: "A key is not valid", detail: err.message });
      return;
    }
    current = { scope: reads.begin(), query: q, cursor: null, shown: 0 };
    body.replaceChildren();
    status.textContent = "Loading…";
    more.hidden = true;
    count.textContent = "…";
    await Promise.all([page(current), showCount(current)]);
  }

  function putForm() {
    const sk = bytesField("Sortkey", { name: "new_sortkey" });
    const value = bytesField("Value", { name: "new_value", multiline: true, rows: 3 });
    const ctype = h("input", { name: "content_type", placeholder: "by the value's form", spellcheck: "false" });
    const ttl = h("input", { name: "ttl", type: "number", min: 0, placeholder: "none" });
    const f = h("form", { class: "card form-grid put-cell" }, h("h2", {}, "Put a new cell"), sk.el, value.el,
      field("Content-Type", ctype), field("TTL (s)", ttl, "empty or 0: none, or the table's default"),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Put cell")));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      let skb, vb;
      try {
        skb = sk.get();
        vb = value.get();
      } catch (err) {
        showProblem({ title: "The cell is not valid", detail: err.message });
        return;
      }
      // Create only: an existing cell is never replaced from here.
      const r = await attempt(() => call(paths.cell(table, hk, skb), {
        scope,
        method: "PUT",
        body: vb,
        query: { ttl: ttl.value || null },
        headers: { "Content-Type": ctype.value.trim() || defaultType(value.form.value), "If-None-Match": "*" },
      }));
      if (!r) return;
      notice(`Put cell ${label(skb, 40) || "(empty sortkey)"} (version ${r.headers.get("ETag")}).`);
      await read();
    });
    return f;
  }

  async function deleteRow() {
    const ok = await confirmDialog("Delete this row?", `Every cell of the row ${name} in ${table} is deleted, at once.`, "Delete row", true);
    if (!ok) return;
    const r = await attempt(() => call(paths.row(table, hk), { scope, method: "DELETE" }));
    if (!r) return;
    notice(`Deleted ${r.data.deleted} ${r.data.deleted === 1 ? "cell" : "cells"}.`);
    await read();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    read();
  });
  more.addEventListener("click", () => page(current));
  await read();
}

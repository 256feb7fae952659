// cell.js - one cell: its value as text, or as hex / base64 (the only
// forms offered when the bytes are not UTF-8, so nothing is mangled), its
// version, TTL and Content-Type; save an edit with If-Match (a change made
// behind the page's back is detected and shown, never overwritten), set
// the TTL, delete, increment.
//
// The value is read in its JSON form (bytes, ttl and version in one answer)
// and the stored Content-Type with a HEAD. Every write names the version
// the page loaded; a 412 keeps the person's edit in the editor and offers
// to load the current value. Each load (Reload, or after a write) replaces
// the one before: an older answer arriving late is never shown.

import { call, etagOf, Latest, paths } from "./api.js";
import { asText, equal, fieldBytes, label, sizeLabel } from "./bytes.js";
import { attempt, bytesCell, bytesField, confirmDialog, field, h, hrefs, notice, showProblem, ttlLabel } from "./dom.js";
import { defaultType } from "./row.js";

export async function renderCell(root, scope, table, hk, sk) {
  const name = sk.length ? label(sk, 40) : "(empty sortkey)";
  document.title = `${name} · ${table} · Cellar`;
  const pills = h("div", { class: "table-info cell-info" });
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumbs" },
      h("a", { href: hrefs.tables() }, "Tables"), " / ", h("a", { href: hrefs.table(table) }, table), " / ",
      h("a", { href: hrefs.row(table, hk) }, "row ", bytesCell(hk, 30)), " / ", h("span", {}, "cell")),
    h("div", { class: "view-head" }, h("h1", {}, h("span", { class: "muted" }, "Cell "), bytesCell(sk, 60)), pills));

  // What the page loaded: the base of every write.
  let loaded = null; // {bytes, etag, ttl, ctype} or null when the cell does not exist

  const value = bytesField("Value", { name: "value", multiline: true, rows: 6 });
  const ctype = h("input", { name: "content_type", spellcheck: "false" });
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const reload = h("button", { type: "button", class: "secondary", onclick: () => load() }, "Reload");
  const del = h("button", { type: "button", class: "danger push-right", onclick: () => remove() }, "Delete cell");
  const editHint = h("small", { class: "hint" });
  const editor = h("form", { class: "card cell-editor" }, value.el,
    h("div", { class: "form-grid two" }, field("Content-Type", ctype)),
    editHint,
    h("div", { class: "actions" }, save, reload, del));
  editor.addEventListener("submit", (e) => {
    e.preventDefault();
    saveValue();
  });

  const ttl = h("input", { name: "ttl", type: "number", min: 0, placeholder: "none" });
  const ttlForm = h("form", { class: "card inline-form cell-ttl" }, h("h2", {}, "TTL"),
    field("Seconds from now", ttl, "empty or 0: no TTL (the table's default TTL, if it has one, applies)"),
    h("button", { type: "submit", class: "secondary" }, "Set TTL"));
  ttlForm.addEventListener("submit", (e) => {
    e.preventDefault();
    setTtl();
  });

  const by = h("input", { name: "by", type: "number", value: 1, step: 1 });
  const incrForm = h("form", { class: "card inline-form cell-incr" }, h("h2", {}, "Increment"),
    field("By", by, "the value must be a decimal integer (missing or empty counts as 0)"),
    h("button", { type: "submit", class: "secondary" }, "Increment"));
  incrForm.addEventListener("submit", (e) => {
    e.preventDefault();
    increment();
  });

  root.append(editor, h("div", { class: "two-cards" }, ttlForm, incrForm));

  const loads = new Latest(scope);

  async function load() {
    const q = loads.begin();
    let doc;
    try {
      doc = await call(paths.cell(table, hk, sk), { scope: q });
    } catch (err) {
      if (err.status === 404 && err.code === "CELL_NOT_FOUND") {
        loaded = null;
        show();
        return;
      }
      showProblem(err);
      return;
    }
    const head = await attempt(() => call(paths.cell(table, hk, sk), { scope: q, method: "HEAD", raw: true }));
    if (q.ended) return; // a later load, or another page, is on screen
    loaded = {
      bytes: fieldBytes(doc.data, "value") || new Uint8Array(),
      etag: doc.data.etag,
      ttl: doc.data.ttl,
      ctype: head && etagOf(head.headers) === doc.data.etag ? head.headers.get("Content-Type") : null,
    };
    show();
  }

  function show() {
    pills.replaceChildren();
    if (!loaded) {
      pills.append(h("span", { class: "status status-dropped" }, "no such cell"));
      editHint.textContent = "The cell does not exist: saving creates it (and fails if someone else creates it first).";
      value.setForm("text", new Uint8Array());
      ctype.value = "";
      ctype.placeholder = "by the value's form";
      ttl.value = "";
      del.disabled = true;
      return;
    }
    const text = asText(loaded.bytes) !== null;
    pills.append(
      h("span", { class: "pill", title: "the cell's version (its ETag)" }, `version ${loaded.etag}`),
      h("span", { class: "pill" }, sizeLabel(loaded.bytes.length)),
      h("span", { class: "pill" }, `TTL ${ttlLabel(loaded.ttl)}`),
      h("span", { class: "pill" }, loaded.ctype || "application/octet-stream"),
      text ? "" : h("span", { class: "badge warn", title: "not UTF-8 text: shown and edited as hex or base64" }, "binary"));
    value.set(loaded.bytes);
    ctype.value = loaded.ctype || "";
    ctype.placeholder = "application/octet-stream";
    ttl.value = loaded.ttl === null ? "" : String(loaded.ttl);
    editHint.textContent = `Saving replaces version ${loaded.etag} only if nobody changed the cell since` +
      (loaded.ttl === null ? "." : `; the cell keeps its TTL (${ttlLabel(loaded.ttl)} left).`);
    del.disabled = false;
  }

  // A write based on what the page loaded: If-Match its version, or
  // If-None-Match: * when the page saw no cell.
  function precondition() {
    return loaded ? { "If-Match": `"${loaded.etag}"` } : { "If-None-Match": "*" };
  }

  function conflict(err) {
    if (err.status !== 412) return null;
    const now = err.problem && err.problem.current_etag;
    return [
      h("p", { class: "conflict" }, loaded
        ? `The cell changed after this page loaded version ${loaded.etag}` + (now ? ` (it is now version ${now})` : " (it was deleted)") + ". Nothing was overwritten; your edit is still in the editor."
        : "Someone created the cell in the meantime. Nothing was overwritten; your edit is still in the editor."),
      h("button", { type: "button", class: "secondary small", onclick: (e) => { e.target.closest(".problem").remove(); load(); } }, "Load the current value"),
    ];
  }

  async function write(opts, done) {
    try {
      const r = await call(paths.cell(table, hk, sk), { scope, ...opts });
      await done(r);
    } catch (err) {
      showProblem(err, conflict(err));
    }
  }

  async function saveValue() {
    let bytes;
    try {
      bytes = value.get();
    } catch (err) {
      showProblem({ title: "The value is not valid", detail: err.message });
      return;
    }
    const type = ctype.value.trim() || (loaded ? "application/octet-stream" : defaultType(value.form.value));
    const keepTtl = loaded && loaded.ttl !== null ? Math.max(1, loaded.ttl) : null;
    await write({ method: "PUT", body: bytes, query: { ttl: keepTtl }, headers: { "Content-Type": type, ...precondition() } },
      async (r) => {
        notice(`Saved: version ${etagOf(r.headers)}${loaded && equal(bytes, loaded.bytes) ? " (same bytes)" : ""}.`);
        await load();
      });
  }

  async function setTtl() {
    if (!loaded) {
      showProblem({ title: "No cell", detail: "save a value first" });
      return;
    }
    const secs = ttl.value.trim() === "" ? 0 : Number(ttl.value);
    await write({
      method: "PUT",
      body: loaded.bytes,
      query: { ttl: secs || null },
      headers: { "Content-Type": loaded.ctype || "application/octet-stream", ...precondition() },
    }, async (r) => {
      notice(secs ? `TTL set to ${ttlLabel(secs)} (version ${etagOf(r.headers)}).` : `TTL removed (version ${etagOf(r.headers)}).`);
      await load();
    });
  }

  async function remove() {
    const ok = await confirmDialog("Delete this cell?", `The cell ${name} of row ${label(hk, 40)} in ${table} is deleted, unless it changed since this page loaded it.`, "Delete cell", true);
    if (!ok) return;
    await write({ method: "DELETE", headers: precondition() }, async () => {
      notice(`Deleted cell ${name}.`);
      loaded = null;
      show();
    });
  }

  async function increment() {
    const n = by.value.trim() === "" ? 1 : Number(by.value);
    if (!Number.isSafeInteger(n)) {
      showProblem({ title: "Not an integer", detail: "increment by a whole number" });
      return;
    }
    const r = await attempt(() => call(`${paths.cell(table, hk, sk)}/incr`, { scope, method: "POST", json: { by: n } }));
    if (!r) return;
    notice(`Incremented: the value is now ${r.data.value} (version ${r.data.etag}).`);
    await load();
  }

  await load();
}

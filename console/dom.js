// dom.js - small DOM helpers shared by the views: an element builder, the
// problem banner (every API error is shown here with its title, detail and
// code, except a request abandoned because the page moved on), notices, a
// modal confirmation, and a field that reads and writes bytes as text, hex
// or base64.

import { Abandoned } from "./api.js";
import { asText, decodeFrom, encodeAs, pct } from "./bytes.js";

// h("button", {class: "x", onclick: fn}, "text", child, ...). Attributes
// named on* become listeners; false/null attributes are left out; children
// may be strings, nodes, arrays or null.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// --- Problems and notices ------------------------------------------------

const messages = () => document.getElementById("messages");

export function clearMessages() {
  clear(messages());
}

// Shows an error: an ApiError's problem (title, detail, code, status), or
// any other error's message; nothing for an Abandoned request, whose view
// or query is no longer on screen. extra: nodes to add (e.g. a "reload"
// button).
export function showProblem(err, extra = null) {
  if (err instanceof Abandoned) return null;
  const status = err.status ? ` (${err.status})` : "";
  const box = h(
    "div",
    { class: "problem", role: "alert" },
    h("div", { class: "problem-title" }, (err.title || "Error") + status),
    err.detail || (!err.title && err.message) ? h("div", { class: "problem-detail" }, err.detail || err.message) : null,
    err.code ? h("code", { class: "problem-code" }, err.code) : null,
    extra ? h("div", { class: "problem-actions" }, extra) : null,
    h("button", { class: "close", type: "button", title: "Dismiss", "aria-label": "Dismiss", onclick: () => box.remove() }, "×"),
  );
  messages().append(box);
  box.scrollIntoView({ block: "nearest" });
  return box;
}

// A success message; it replaces the previous one.
export function notice(text) {
  for (const old of messages().querySelectorAll(".notice")) old.remove();
  const box = h(
    "div",
    { class: "notice", role: "status" },
    text,
    h("button", { class: "close", type: "button", "aria-label": "Dismiss", onclick: () => box.remove() }, "×"),
  );
  messages().append(box);
  return box;
}

// Runs fn, showing any error it throws; resolves to fn's result or null.
export async function attempt(fn, extra) {
  try {
    return await fn();
  } catch (err) {
    showProblem(err, typeof extra === "function" ? extra(err) : extra);
    return null;
  }
}

// --- Confirmation ----------------------------------------------------------

// A modal dialog: resolves true when the person confirms.
export function confirmDialog(title, text, confirmLabel = "OK", danger = false) {
  return new Promise((resolve) => {
    const dlg = h(
      "dialog",
      { class: "confirm" },
      h(
        "form",
        { method: "dialog" },
        h("h2", {}, title),
        h("p", {}, text),
        h(
          "div",
          { class: "actions" },
          h("button", { value: "cancel", type: "submit", class: "secondary" }, "Cancel"),
          h("button", { value: "ok", type: "submit", class: danger ? "danger" : "primary" }, confirmLabel),
        ),
      ),
    );
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "ok");
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// --- A bytes field ----------------------------------------------------------

let fieldIds = 0;

// A labelled input (or textarea when multiline) with a text / hex / base64
// switch. get() returns the bytes (throws on bad hex or base64); set(bytes)
// shows them, in text when they are text, else in hex. Switching the form
// converts what is typed, so no byte is lost on the way.
export function bytesField(labelText, opts = {}) {
  const id = `f${++fieldIds}`;
  const input = opts.multiline
    ? h("textarea", { id, name: opts.name || id, rows: opts.rows || 6, spellcheck: "false", placeholder: opts.placeholder || "" })
    : h("input", { id, name: opts.name || id, type: "text", spellcheck: "false", autocomplete: "off", placeholder: opts.placeholder || "" });
  const form = h(
    "select",
    { class: "form-select", "aria-label": `${labelText} as`, title: "How the bytes are written" },
    h("option", { value: "text" }, "text"),
    h("option", { value: "hex" }, "hex"),
    h("option", { value: "base64" }, "base64"),
  );
  let current = "text";
  form.addEventListener("change", () => {
    const wanted = form.value;
    try {
      const bytes = decodeFrom(input.value, current);
      input.value = encodeAs(bytes, wanted, !!opts.multiline);
      current = wanted;
    } catch (e) {
      form.value = current;
      showProblem({ title: `Cannot show these bytes as ${wanted}`, detail: e.message });
    }
  });
  const el = opts.multiline
    ? h("div", { class: "field bytes-field multiline" },
      h("div", { class: "field-head" }, h("label", { for: id }, labelText), form), input)
    : h("div", { class: "field bytes-field" },
      h("label", { for: id }, labelText), h("div", { class: "with-form" }, input, form));
  return {
    el,
    input,
    form,
    get() {
      return decodeFrom(input.value, current);
    },
    set(bytes) {
      current = asText(bytes) === null ? "hex" : "text";
      form.value = current;
      input.value = encodeAs(bytes, current, !!opts.multiline);
      if (opts.multiline) input.rows = Math.min(24, Math.max(opts.rows || 4, input.value.split("\n").length + 1));
    },
    setForm(f, bytes) {
      current = f;
      form.value = f;
      input.value = encodeAs(bytes, f, !!opts.multiline);
    },
    isEmpty() {
      return input.value === "";
    },
  };
}

// A plain labelled input.
export function field(labelText, input, hint) {
  if (!input.id) input.id = `f${++fieldIds}`;
  return h("div", { class: "field" }, h("label", { for: input.id }, labelText), input, hint ? h("small", { class: "hint" }, hint) : null);
}

export function ttlLabel(ttl) {
  if (ttl === null || ttl === undefined) return "none";
  let s = Number(ttl);
  const parts = [];
  for (const [unit, n] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    if (s >= n || (unit === "s" && !parts.length)) parts.push(`${Math.floor(s / n)} ${unit}`);
    s %= n;
  }
  return parts.filter((p) => !p.startsWith("0 ") || parts.length === 1).slice(0, 2).join(" ");
}

// A key or value for a table cell: its text, or "binary" and its hex.
export function bytesCell(bytes, max = 60) {
  if (bytes.length === 0) return h("span", { class: "muted" }, "(empty)");
  const t = asText(bytes);
  if (t !== null) return h("span", { class: "text" }, t.length > max ? t.slice(0, max) + "…" : t);
  const shown = bytes.subarray(0, Math.ceil(max / 3));
  const hex = Array.from(shown, (b) => b.toString(16).padStart(2, "0")).join(" ");
  return h("span", { class: "binary", title: "not UTF-8 text: shown in hex" },
    h("span", { class: "badge" }, "hex"), " ", hex + (bytes.length > shown.length ? " …" : ""));
}

// "#/tables/t/rows/<pct hk>/cells/<pct sk>" links.
export function link(href, ...children) {
  return h("a", { href }, ...children);
}

// Console addresses (the part after "#"): table names as they are, keys as
// percent-encoded bytes, so any key has a link.

export const hrefs = {
  tables: () => "#/",
  table: (t) => `#/tables/${encodeURIComponent(t)}`,
  row: (t, hk) => `#/tables/${encodeURIComponent(t)}/rows/${pct(hk)}`,
  cell: (t, hk, sk) => `#/tables/${encodeURIComponent(t)}/rows/${pct(hk)}/cells/${pct(sk)}`,
  cluster: () => "#/cluster",
};

// tables.js - the tables view: the list (partitions, replicas, default
// TTL, status), create, drop (after a confirmation), recall of a dropped
// table (under its name or a new one) and compaction. Each load of the list
// (after every change) replaces the one before: an older list arriving late
// is never shown.

import { call, Latest, paths } from "./api.js";
import { attempt, confirmDialog, field, h, hrefs, notice, ttlLabel } from "./dom.js";

export async function renderTables(root, scope) {
  document.title = "Tables · Cellar";
  const list = h("div", { class: "card" }, h("p", { class: "muted" }, "Loading…"));
  const dropped = h("div");
  root.append(
    h("div", { class: "view-head" }, h("h1", {}, "Tables")),
    createForm(scope, () => load()),
    list,
    dropped,
  );

  const loads = new Latest(scope);

  async function load() {
    const r = await attempt(() => call(paths.tables(), { scope: loads.begin(), query: { include_dropped: true } }));
    if (!r) return;
    const tables = r.data.tables;
    const live = tables.filter((t) => t.status !== "dropped");
    const gone = tables.filter((t) => t.status === "dropped");
    list.replaceChildren(liveTable(scope, live, load));
    dropped.replaceChildren(gone.length ? droppedTable(scope, gone, load) : "");
  }
  await load();
}

function createForm(scope, reload) {
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9_.\\-]{1,128}", maxlength: 128, placeholder: "users", autocomplete: "off", spellcheck: "false" });
  const partitions = h("select", { name: "partitions" },
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024].map((n) => h("option", { value: n, selected: n === 8 }, String(n))));
  const replicas = h("input", { name: "replicas", type: "number", min: 1, max: 5, value: 1, required: true });
  const ttl = h("input", { name: "default_ttl", type: "number", min: 0, value: 0, required: true });
  const form = h("form", { class: "card form-grid create-table", autocomplete: "off" },
    h("h2", {}, "New table"),
    field("Name", name, "A-Z a-z 0-9 _ . -"),
    field("Partitions", partitions, "fixed for the table's life"),
    field("Replicas", replicas, "1 to 5"),
    field("Default TTL (s)", ttl, "0: cells do not expire"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create table")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      partition_count: Number(partitions.value),
      replica_count: Number(replicas.value),
      default_ttl: Number(ttl.value),
    };
    const r = await attempt(() => call(paths.table(name.value), { scope, method: "PUT", json: body }));
    if (!r) return;
    notice(`Created table ${r.data.name} with ${r.data.partition_count} partitions.`);
    name.value = "";
    await reload();
  });
  return form;
}

function liveTable(scope, tables, reload) {
  if (!tables.length) return h("p", { class: "muted empty" }, "No tables yet: create one above.");
  return h("table", { class: "grid tables-list" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Name"), h("th", { class: "num" }, "Partitions"), h("th", { class: "num" }, "Replicas"),
      h("th", {}, "Default TTL"), h("th", {}, "Status"), h("th", { class: "actions" }, ""))),
    h("tbody", {}, tables.map((t) => h("tr", { dataset: { table: t.name } },
      h("td", {}, h("a", { href: hrefs.table(t.name), class: "strong" }, t.name),
        envBadges(t.envs)),
      h("td", { class: "num" }, t.partition_count),
      h("td", { class: "num" }, t.replica_count),
      h("td", {}, t.default_ttl ? ttlLabel(t.default_ttl) : h("span", { class: "muted" }, "none")),
      h("td", {}, h("span", { class: `status status-${t.status}` }, t.status)),
      h("td", { class: "actions" },
        h("a", { class: "button secondary small", href: hrefs.table(t.name) }, "Browse"),
        h("button", { type: "button", class: "secondary small", onclick: () => compact(scope, t.name) }, "Compact"),
        h("button", { type: "button", class: "danger small", onclick: () => drop(scope, t.name, reload) }, "Drop"))))));
}

function envBadges(envs) {
  const out = [];
  if (envs && envs.read_only === "true") out.push(h("span", { class: "badge warn" }, "read only"));
  if (envs && envs.write_rate_limit && envs.write_rate_limit !== "0") {
    out.push(h("span", { class: "badge" }, `${envs.write_rate_limit} writes/s`));
  }
  return out.length ? [" ", ...out] : null;
}

function droppedTable(scope, tables, reload) {
  return h("section", { class: "card dropped" },
    h("h2", {}, "Dropped tables"),
    h("p", { class: "muted" }, "Their data is kept until the node's drop retention runs out; recall brings a table back."),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", { class: "num" }, "Partitions"), h("th", {}, "Dropped"), h("th", {}, "Recall as"))),
      h("tbody", {}, tables.map((t) => {
        const newName = h("input", { value: t.name, "aria-label": `Recall ${t.name} as`, spellcheck: "false", class: "narrow" });
        return h("tr", { dataset: { dropped: t.name } },
          h("td", {}, t.name, " ", h("span", { class: "status status-dropped" }, "dropped")),
          h("td", { class: "num" }, t.partition_count),
          h("td", {}, t.drop_time_ms ? new Date(t.drop_time_ms).toLocaleString() : ""),
          h("td", { class: "actions" }, newName,
            h("button", { type: "button", class: "primary small", onclick: () => recall(scope, t.name, newName.value.trim(), reload) }, "Recall")));
      }))));
}

async function compact(scope, name) {
  const r = await attempt(() => call(`${paths.table(name)}/compact`, { scope, method: "POST" }));
  if (r) notice(`Compaction of ${name} started: expired cells are dropped as it runs.`);
}

async function drop(scope, name, reload) {
  const ok = await confirmDialog(`Drop table ${name}?`,
    "The table disappears at once. Its data is kept for the node's drop retention (7 days unless configured otherwise) and can be recalled until then.",
    "Drop table", true);
  if (!ok) return;
  const r = await attempt(() => call(paths.table(name), { scope, method: "DELETE" }));
  if (!r) return;
  notice(`Dropped table ${name}.`);
  await reload();
}

async function recall(scope, name, newName, reload) {
  const json = newName && newName !== name ? { new_name: newName } : undefined;
  const r = await attempt(() => call(`${paths.table(name)}/recall`, { scope, method: "POST", json }));
  if (!r) return;
  notice(`Recalled table ${r.data.name}.`);
  await reload();
}

// app.js - the console's entry point: the token field and the router.
//
// The address after "#" names the view: "#/" the tables,
// "#/tables/<table>" a table's rows (scan), "#/tables/<t>/rows/<hashkey>"
// one row, ".../cells/<sortkey>" one cell, "#/cluster" the nodes and
// partitions. Keys in the address are percent-encoded bytes. Each view
// renders into a fresh container with a fresh Scope for its requests; the
// scope ends when the person moves on (or the view is shown again), so a
// view left while loading paints nothing, not even its errors (api.js).

import { getToken, Scope, setToken } from "./api.js";
import { unpct } from "./bytes.js";
import { clearMessages, h, showProblem } from "./dom.js";
import { renderTables } from "./tables.js";
import { renderBrowse } from "./browse.js";
import { renderRow } from "./row.js";
import { renderCell } from "./cell.js";
import { renderCluster } from "./cluster.js";

function route(hash) {
  const path = hash.replace(/^#/, "").replace(/^\/?/, "/");
  const segs = path.slice(1).split("/");
  let table;
  try {
    table = segs.length > 1 ? decodeURIComponent(segs[1]) : null;
  } catch {
    table = segs[1];
  }
  if (path === "/" || path === "/tables" || path === "/tables/") return { nav: "tables", view: renderTables, args: [] };
  if (path === "/cluster") return { nav: "cluster", view: renderCluster, args: [] };
  if (segs[0] === "tables" && segs.length === 2 && table) return { nav: "tables", view: renderBrowse, args: [table] };
  if (segs[0] === "tables" && segs[2] === "rows" && segs.length === 4 && segs[3]) {
    return { nav: "tables", view: renderRow, args: [table, unpct(segs[3])] };
  }
  if (segs[0] === "tables" && segs[2] === "rows" && segs[4] === "cells" && segs.length === 6 && segs[3]) {
    return { nav: "tables", view: renderCell, args: [table, unpct(segs[3]), unpct(segs[5])] };
  }
  return null;
}

let viewScope = null;

async function show() {
  if (viewScope) viewScope.end();
  viewScope = new Scope();
  clearMessages();
  const main = document.getElementById("view");
  const container = h("div", { class: "view" });
  main.replaceChildren(container);
  const r = route(location.hash || "#/");
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", r !== null && a.dataset.nav === r.nav);
  }
  if (!r) {
    container.append(h("h1", {}, "Not found"), h("p", {}, "The console has no page at this address. ", h("a", { href: "#/" }, "Back to the tables")));
    return;
  }
  try {
    await r.view(container, viewScope, ...r.args);
  } catch (err) {
    showProblem(err);
  }
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const state = document.getElementById("token-state");
  const refresh = () => {
    const t = getToken();
    state.textContent = t ? "in use" : "";
    input.value = "";
    input.placeholder = t ? "•••••• (set)" : "none";
    form.classList.toggle("has-token", !!t);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    refresh();
    show();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    setToken("");
    refresh();
    show();
  });
  refresh();
}

setupToken();
window.addEventListener("hashchange", show);
show();

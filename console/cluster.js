// cluster.js - the Cluster page: the nodes (address, state, roles, the
// metadata leader, how many primaries and secondaries each holds), the
// partition moves in progress, the partitions short of replicas, and a
// partition map per table: the table's partitions against the nodes that
// hold data, each cell saying which replica of the partition the node
// holds (P primary, S secondary, L learner). A partition with no primary,
// with its primary on a node that is not alive, or with fewer replicas
// than its table asks for is drawn in the warning colour, its reasons in
// the cells' titles. Written for any number of nodes: nothing assumes
// there is one.
//
// The page is live: it asks GET /v1/cluster, GET /v1/tables and every
// table's GET /v1/tables/{t} again every POLL_MS while it is shown. Each
// round is one query of a Latest within the view's scope, so leaving the
// page ends the polling and its requests, and a round that is given up
// for a newer one never paints (api.js). A round paints each section in
// place, and only the sections whose data changed, so the page keeps its
// scroll position, its open or closed maps, and does not flicker. The
// maps are plain elements with titles: no listener per cell.

import { Abandoned, call, Latest, paths } from "./api.js";
import { h, hrefs, showProblem } from "./dom.js";

const POLL_MS = 2000;
const STALE_MS = 10000; // a round unanswered for this long is given up for a new one
const BAND = 32; // partitions per band of a map: wider tables wrap into bands

export async function renderCluster(root, scope) {
  document.title = "Cluster · Cellar";
  const live = h("span", { class: "live-state muted" }, "Loading…");
  const nodesCard = h("section", { class: "card nodes-card" }, h("h2", {}, "Nodes"), h("p", { class: "muted" }, "Loading…"));
  const movesCard = h("section", { class: "card moves" }, h("h2", {}, "Moves"));
  const underCard = h("section", { class: "card under-replicated" }, h("h2", {}, "Partitions without a full replica group"));
  const mapNote = h("div", { class: "pmap-note" });
  const mapList = h("div", { class: "pmap-list" });
  const mapCard = h("section", { class: "card partitions" },
    h("div", { class: "pmap-title" }, h("h2", {}, "Partition map"), legend()),
    mapNote, mapList);
  root.append(h("div", { class: "view-head" }, h("h1", {}, "Cluster"), h("span", { class: "push-right" }, live)),
    nodesCard, movesCard, underCard, mapCard);

  // What each section last painted (a JSON signature): an unchanged
  // section is left alone. paint() says whether it painted.
  const painted = new Map();
  const paint = (key, el, data, build) => {
    const sig = JSON.stringify(data);
    if (painted.get(key) === sig) return false;
    painted.set(key, sig);
    el.replaceChildren(...[build()].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    return true;
  };
  const blocks = new Map(); // table name -> its <details>, kept across rounds
  // A map is rebuilt when where the replicas are changes; the ballots and
  // commit points, which move with every write, only rewrite the titles
  // of its partitions' headers.
  const progress = new Map(); // table name -> the ballots and commit points in its titles

  function paintAll(cl, tables, details) {
    paint("nodes", nodesCard, [cl.nodes, cl.meta_leader], () => nodesSection(cl));
    paint("moves", movesCard, cl.moves || [], () => movesSection(cl.moves || []));
    paint("under", underCard, [cl.under_replicated_count, cl.partition_count, cl.under_replicated], () => underSection(cl));

    const rows = mapRows(cl.nodes, details);
    const states = new Map(cl.nodes.map((n) => [n.address, n.state]));
    const under = new Map((cl.under_replicated || []).map((u) => [`${u.table}\u0000${u.index}`, u]));
    const metaOnly = cl.nodes.filter((n) => !holdsData(n)).map((n) => n.address);
    paint("map-note", mapNote, [tables.length, metaOnly], () => [
      tables.length ? null : h("p", { class: "muted" }, "No tables."),
      metaOnly.length ? h("p", { class: "muted small-note" }, `Not in the maps: ${metaOnly.join(", ")} (metadata only, no data role).`) : null,
    ]);
    const order = [];
    tables.forEach((table, i) => {
      const d = details[i];
      if (d && d.error && d.error.status === 404) return; // dropped since the list was read
      let block = blocks.get(table.name);
      if (!block) {
        block = h("details", { class: "partition-map", open: true, dataset: { table: table.name } });
        blocks.set(table.name, block);
      }
      order.push(block);
      const parts = d && !d.error ? d.partitions : null;
      const error = d && d.error ? d.error : null;
      const replicaCount = d && !d.error && d.replica_count ? d.replica_count : table.replica_count;
      const why = parts ? parts.map((p) => reasons(table.name, p, replicaCount, states, under)) : null;
      const placement = parts ? parts.map((p) => [p.index, p.primary, p.secondaries, p.learners || []]) : null;
      const rebuilt = paint(`map:${table.name}`, block, [rows, placement, replicaCount, error ? error.message : null, why],
        () => tableMap(table.name, replicaCount, parts, error, rows, why));
      if (!parts) return;
      const now = JSON.stringify(parts.map((p) => [p.ballot, p.last_committed]));
      if (!rebuilt && progress.get(table.name) !== now) {
        const heads = block.querySelectorAll("th.pidx");
        parts.forEach((p, k) => {
          if (heads[k]) heads[k].title = headTitle(table.name, p, why[k]);
        });
      }
      progress.set(table.name, now);
    });
    const kept = new Set(order);
    for (const name of [...blocks.keys()]) {
      if (!kept.has(blocks.get(name))) {
        blocks.delete(name);
        painted.delete(`map:${name}`);
        progress.delete(name);
      }
    }
    const shown = [...mapList.children];
    if (shown.length !== order.length || shown.some((el, i) => el !== order[i])) mapList.replaceChildren(...order);
  }

  // --- Polling -------------------------------------------------------------

  const rounds = new Latest(scope);
  let started = 0; // when the round in flight began (0: none in flight)
  let okAt = null; // when the page last painted
  let banner = null; // the problem shown for the current run of failures

  async function poll() {
    const q = rounds.begin();
    started = Date.now();
    try {
      const [c, t] = await Promise.all([call(paths.cluster(), { scope: q }), call(paths.tables(), { scope: q })]);
      const details = await Promise.all(t.data.tables.map((table) => call(paths.table(table.name), { scope: q }).then(
        (r) => r.data,
        (err) => {
          if (err instanceof Abandoned) throw err;
          return { error: err };
        })));
      if (q.ended) return;
      paintAll(c.data, t.data.tables, details);
      okAt = new Date();
      if (banner) banner.remove();
      banner = null;
      live.className = "live-state";
      live.replaceChildren(h("span", { class: "live-dot", "aria-hidden": "true" }), `Live · updated ${clock(okAt)}`);
    } catch (err) {
      if (err instanceof Abandoned || q.ended) return;
      if (!banner) banner = showProblem(err) || null;
      live.className = "live-state warn-text";
      live.textContent = `Could not refresh at ${clock(new Date())}` + (okAt ? ` · showing ${clock(okAt)}` : "");
    } finally {
      if (rounds.current === q) started = 0;
    }
  }

  function tick() {
    if (scope.ended) {
      clearInterval(timer);
      return;
    }
    if (document.visibilityState === "hidden") return;
    if (started && Date.now() - started < STALE_MS) return; // the last round is still coming
    poll();
  }

  const timer = setInterval(tick, POLL_MS);
  scope.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
  await poll();
}

function clock(d) {
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function holdsData(n) {
  return !Array.isArray(n.roles) || n.roles.includes("data");
}

const STATES = new Set(["alive", "unreachable", "dead"]);

function stateBadge(state) {
  const known = STATES.has(state) ? state : "unknown";
  return h("span", { class: `status state-${known}` }, state || "unknown");
}

// --- Nodes, moves, partitions short of replicas ------------------------------

function nodesSection(cl) {
  return [
    h("h2", {}, `Nodes (${cl.nodes.length})`),
    h("table", { class: "grid nodes" },
      h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", {}, "State"), h("th", {}, "Roles"), h("th", {}, "Metadata"),
        h("th", { class: "num" }, "Primaries"), h("th", { class: "num" }, "Secondaries"))),
      h("tbody", {}, cl.nodes.map((n) => h("tr", { dataset: { node: n.address }, class: n.state === "alive" ? null : "node-down" },
        h("td", {}, h("code", {}, n.address)),
        h("td", {}, stateBadge(n.state)),
        h("td", {}, Array.isArray(n.roles) && n.roles.length
          ? n.roles.map((r, i) => [i ? " " : null, h("span", { class: "role" }, r)])
          : h("span", { class: "muted" }, "none")),
        h("td", {}, n.address === cl.meta_leader ? h("span", { class: "badge" }, "metadata leader") : ""),
        h("td", { class: "num" }, n.primaries),
        h("td", { class: "num" }, n.secondaries))))),
  ];
}

function movesSection(moves) {
  return [
    h("h2", {}, moves.length ? `Moves (${moves.length})` : "Moves"),
    moves.length
      ? h("ul", { class: "moves-list" }, moves.map((m) => h("li", {}, moveText(m))))
      : h("p", { class: "muted" }, "No moves in progress."),
  ];
}

// A move as a line: "table partition 3: from → to (state)" from the fields
// it has, or its JSON when it has none of them.
function moveText(m) {
  if (!m || typeof m !== "object") return String(m);
  const index = m.index ?? m.partition;
  const from = m.from ?? m.source;
  const to = m.to ?? m.target ?? m.destination;
  const state = m.state ?? m.status ?? m.phase;
  if (m.table === undefined && from === undefined && to === undefined) return JSON.stringify(m);
  const what = [m.table, index !== undefined ? `partition ${index}` : null].filter((x) => x !== undefined && x !== null).join(" ");
  const kind = m.kind ?? m.type ?? m.role;
  return [what || "partition", kind ? ` (${kind})` : "", ": ", from ?? "?", " → ", to ?? "?", state ? ` · ${state}` : ""].join("");
}

function underSection(cl) {
  return [
    h("h2", {}, "Partitions without a full replica group"),
    cl.under_replicated_count === 0
      ? h("p", { class: "ok" }, `All ${cl.partition_count} partitions have every replica their table asks for.`)
      : [
          h("p", { class: "warn-text" }, `${cl.under_replicated_count} of ${cl.partition_count} partitions ${cl.under_replicated_count === 1 ? "has" : "have"} fewer replicas than their table asks for` +
            (cl.under_replicated.length < cl.under_replicated_count ? ` (the first ${cl.under_replicated.length} are listed).` : ".")),
          h("table", { class: "grid" },
            h("thead", {}, h("tr", {}, h("th", {}, "Table"), h("th", { class: "num" }, "Partition"), h("th", { class: "num" }, "Replicas"), h("th", {}, "Primary"), h("th", {}, "Secondaries"))),
            h("tbody", {}, cl.under_replicated.map((p) => h("tr", {},
              h("td", {}, h("a", { href: hrefs.table(p.table) }, p.table)),
              h("td", { class: "num" }, p.index),
              h("td", { class: "num" }, `${p.replicas} of ${p.replica_count}`),
              h("td", {}, h("code", {}, p.primary || "none")),
              h("td", {}, p.secondaries.length ? p.secondaries.map((s) => h("code", {}, s, " ")) : h("span", { class: "muted" }, "none")))))),
        ],
  ];
}

// --- The partition maps ---------------------------------------------------------

// The rows of every map: the nodes that hold data, in the cluster's order,
// then any address a partition names that is not a node of the cluster.
function mapRows(nodes, details) {
  const rows = nodes.filter(holdsData).map((n) => ({ address: n.address, state: n.state, roles: n.roles || [] }));
  const known = new Set(nodes.map((n) => n.address));
  const strays = new Set();
  for (const d of details) {
    if (!d || d.error) continue;
    for (const p of d.partitions) {
      for (const a of [p.primary, ...(p.secondaries || []), ...(p.learners || [])]) {
        if (a && !known.has(a)) strays.add(a);
      }
    }
  }
  for (const a of [...strays].sort()) rows.push({ address: a, state: "not in the cluster", roles: [] });
  return rows;
}

// Why a partition is unhealthy (an empty list when it is not).
function reasons(table, p, replicaCount, states, under) {
  const why = [];
  if (!p.primary) why.push("no primary");
  else if (!states.has(p.primary)) why.push(`its primary ${p.primary} is not a node of the cluster`);
  else if (states.get(p.primary) !== "alive") why.push(`its primary ${p.primary} is ${states.get(p.primary)}`);
  const have = (p.primary ? 1 : 0) + (p.secondaries || []).length;
  const listed = under.get(`${table}\u0000${p.index}`);
  if (have < replicaCount) why.push(`${have} of ${replicaCount} replicas`);
  else if (listed) why.push(`${listed.replicas} of ${listed.replica_count} replicas (as the cluster counts them)`);
  return why;
}

const ROLE = { P: "primary", S: "secondary", L: "learner" };

function headTitle(name, p, w) {
  const t = `${name} partition ${p.index} · ballot ${p.ballot} · last committed ${p.last_committed}`;
  return w.length ? `${t}\nUnhealthy: ${w.join("; ")}` : t;
}

function tableMap(name, replicaCount, parts, error, rows, why) {
  if (!parts) {
    return [
      h("summary", {}, h("strong", {}, name)),
      h("p", { class: "warn-text" }, `Could not read this table's partitions: ${error ? error.message : "no answer"}`),
    ];
  }
  const holder = parts.map((p) => {
    const m = new Map();
    for (const a of p.learners || []) m.set(a, "L");
    for (const a of p.secondaries || []) m.set(a, "S");
    if (p.primary) m.set(p.primary, "P");
    return m;
  });
  const unhealthy = why.filter((w) => w.length).length;

  const bands = [];
  for (let start = 0; start < parts.length; start += BAND) {
    const band = parts.slice(start, start + BAND);
    const at = (j) => start + j;
    const head = h("tr", { class: "pmap-head" },
      h("th", { class: "corner", scope: "col" }, start === 0 ? "Partition" : ""),
      band.map((p, j) => {
        const w = why[at(j)];
        return h("th", { scope: "col", class: w.length ? "pidx warn" : "pidx", dataset: { p: p.index }, title: headTitle(name, p, w) }, p.index);
      }));
    const body = rows.map((r) => h("tr", { class: r.state === "alive" ? "pmap-node" : "pmap-node node-down", dataset: { mapNode: r.address } },
      h("th", { scope: "row", class: "node", title: `${r.address} · ${r.state}${r.roles.length ? ` · ${r.roles.join(", ")}` : ""}` },
        h("code", {}, r.address), r.state === "alive" ? null : [" ", stateBadge(r.state)]),
      band.map((p, j) => {
        const role = holder[at(j)].get(r.address);
        const w = why[at(j)];
        const cls = w.length ? "warn" : null;
        if (!role) return h("td", { class: cls, dataset: { p: p.index }, title: w.length ? `${name} partition ${p.index}: unhealthy: ${w.join("; ")}` : null });
        const title = `${name} partition ${p.index}: ${ROLE[role]} on ${r.address} (${r.state})` + (w.length ? `\nUnhealthy: ${w.join("; ")}` : "");
        return h("td", { class: cls, dataset: { p: p.index }, title }, h("span", { class: `rb rb-${role.toLowerCase()}` }, role));
      })));
    bands.push(h("tbody", {}, head, body));
  }

  return [
    h("summary", {},
      h("a", { href: hrefs.table(name), class: "strong" }, name),
      ` · ${parts.length} ${parts.length === 1 ? "partition" : "partitions"} · ${replicaCount} ${replicaCount === 1 ? "replica" : "replicas"} each · `,
      unhealthy
        ? h("span", { class: "badge warn" }, `${unhealthy} unhealthy`)
        : h("span", { class: "ok" }, "all healthy")),
    rows.length
      ? h("div", { class: "pmap-wrap" }, h("table", { class: "pmap", dataset: { table: name } }, bands))
      : h("p", { class: "muted" }, "No node holds data."),
    whyList(parts, why),
  ];
}

const WHY_SHOWN = 8; // unhealthy partitions spelled out under a map; the rest have titles

function whyList(parts, why) {
  const bad = parts.map((p, i) => [p.index, why[i]]).filter(([, w]) => w.length);
  if (!bad.length) return null;
  return h("ul", { class: "pmap-why" },
    bad.slice(0, WHY_SHOWN).map(([index, w]) => h("li", { dataset: { p: index } }, h("strong", {}, `Partition ${index}`), `: ${w.join("; ")}`)),
    bad.length > WHY_SHOWN ? h("li", { class: "muted" }, `and ${bad.length - WHY_SHOWN} more: point at a marked column to see why`) : null);
}

function legend() {
  return h("div", { class: "pmap-legend", "aria-label": "Legend" },
    h("span", {}, h("span", { class: "rb rb-p" }, "P"), " primary"),
    h("span", {}, h("span", { class: "rb rb-s" }, "S"), " secondary"),
    h("span", {}, h("span", { class: "rb rb-l" }, "L"), " learner"),
    h("span", {}, h("span", { class: "swatch warn" }), " unhealthy partition (point at it for why)"),
    h("span", {}, h("span", { class: "swatch down" }), " node not alive"));
}

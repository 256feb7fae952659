// cluster.js - the nodes (address, state, metadata leader, how many
// partitions each leads), the partitions short of replicas, and every
// table's partitions with their primary and secondaries. Written for any
// number of nodes: nothing assumes there is one.

import { call, paths } from "./api.js";
import { attempt, h, hrefs } from "./dom.js";

export async function renderCluster(root, scope) {
  document.title = "Cluster · Cellar";
  root.append(h("div", { class: "view-head" }, h("h1", {}, "Cluster")));
  const c = await attempt(() => call(paths.cluster(), { scope }));
  if (!c) return;
  const cl = c.data;

  root.append(h("section", { class: "card" },
    h("h2", {}, `Nodes (${cl.nodes.length})`),
    h("table", { class: "grid nodes" },
      h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", {}, "State"), h("th", {}, "Role"), h("th", { class: "num" }, "Primaries"), h("th", { class: "num" }, "Secondaries"))),
      h("tbody", {}, cl.nodes.map((n) => h("tr", { dataset: { node: n.address } },
        h("td", {}, h("code", {}, n.address)),
        h("td", {}, h("span", { class: `status status-${n.state === "alive" ? "available" : "dropped"}` }, n.state)),
        h("td", {}, n.address === cl.meta_leader ? h("span", { class: "badge" }, "metadata leader") : ""),
        h("td", { class: "num" }, n.primaries),
        h("td", { class: "num" }, n.secondaries)))))));

  const under = h("section", { class: "card under-replicated" },
    h("h2", {}, "Partitions without a full replica group"),
    cl.under_replicated_count === 0
      ? h("p", { class: "ok" }, `All ${cl.partition_count} partitions have every replica their table asks for.`)
      : [
          h("p", { class: "warn-text" }, `${cl.under_replicated_count} of ${cl.partition_count} partitions have fewer replicas than their table asks for` +
            (cl.under_replicated.length < cl.under_replicated_count ? ` (the first ${cl.under_replicated.length} are listed).` : ".")),
          h("table", { class: "grid" },
            h("thead", {}, h("tr", {}, h("th", {}, "Table"), h("th", { class: "num" }, "Partition"), h("th", { class: "num" }, "Replicas"), h("th", {}, "Primary"), h("th", {}, "Secondaries"))),
            h("tbody", {}, cl.under_replicated.map((p) => h("tr", {},
              h("td", {}, h("a", { href: hrefs.table(p.table) }, p.table)),
              h("td", { class: "num" }, p.index),
              h("td", { class: "num" }, `${p.replicas} of ${p.replica_count}`),
              h("td", {}, h("code", {}, p.primary || "none")),
              h("td", {}, p.secondaries.length ? p.secondaries.map((s) => h("code", {}, s)) : h("span", { class: "muted" }, "none")))))),
        ]);
  root.append(under);

  // Every table's partitions and where they live.
  const maps = h("section", { class: "card partitions" }, h("h2", {}, "Partitions by table"));
  root.append(maps);
  const t = await attempt(() => call(paths.tables(), { scope }));
  if (!t) return;
  if (!t.data.tables.length) {
    maps.append(h("p", { class: "muted" }, "No tables."));
    return;
  }
  const details = await Promise.all(t.data.tables.map((table) => attempt(() => call(paths.table(table.name), { scope }))));
  t.data.tables.forEach((table, i) => {
    const d = details[i];
    if (!d) return;
    const byPrimary = new Map();
    for (const p of d.data.partitions) byPrimary.set(p.primary, (byPrimary.get(p.primary) || 0) + 1);
    const summary = [...byPrimary].map(([node, n]) => `${n} on ${node || "no primary"}`).join(", ");
    maps.append(h("details", { class: "partition-map", dataset: { table: table.name } },
      h("summary", {}, h("strong", {}, table.name), ` · ${d.data.partitions.length} partitions · ${table.replica_count} ${table.replica_count === 1 ? "replica" : "replicas"} · primaries: ${summary}`),
      h("table", { class: "grid compact" },
        h("thead", {}, h("tr", {}, h("th", { class: "num" }, "Partition"), h("th", {}, "Primary"), h("th", {}, "Secondaries"), h("th", { class: "num" }, "Ballot"), h("th", { class: "num" }, "Last committed"))),
        h("tbody", {}, d.data.partitions.map((p) => h("tr", {},
          h("td", { class: "num" }, p.index),
          h("td", {}, h("code", {}, p.primary || "none")),
          h("td", {}, p.secondaries.length ? p.secondaries.map((s) => h("code", {}, s, " ")) : h("span", { class: "muted" }, "none")),
          h("td", { class: "num" }, p.ballot),
          h("td", { class: "num" }, p.last_committed)))))));
  });
}

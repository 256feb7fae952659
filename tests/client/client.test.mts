/*
 * client.test.mts - the TypeScript client generated from openapi.yaml
 * (openapi-typescript types + openapi-fetch), driven against a real node.
 *
 * tests/client/run generates schema.d.ts from openapi.yaml, type-checks and
 * compiles this file with tsc (strict), then runs it with node and
 * CELLAR_URL pointing at a fresh cellard. A call that the document does not
 * describe, or a field it does not have, fails at compile time (see the
 * @ts-expect-error lines); a response that differs from what the test
 * expects fails at run time. Prints one line per test and "N passed, N
 * failed".
 */
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

declare const process: {
    env: Record<string, string | undefined>;
    exitCode: number | undefined;
};

type Problem = components["schemas"]["Problem"];
type RowCell = components["schemas"]["RowCell"];
type ScanItem = components["schemas"]["ScanItem"];

const baseUrl = process.env.CELLAR_URL;
if (!baseUrl) throw new Error("set CELLAR_URL");
const client = createClient<paths>({ baseUrl });
const table = `client-${Date.now()}`;

function assert(cond: unknown, msg: string): asserts cond {
    if (!cond) throw new Error("assertion failed: " + msg);
}

function eq<T>(got: T, want: T, msg: string): void {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    if (g !== w) throw new Error(`${msg}: got ${g}, want ${w}`);
}

function problem(error: unknown, status: number, code: Problem["code"], res: Response): Problem {
    eq(res.status, status, "status");
    assert(res.headers.get("content-type")?.startsWith("application/problem+json"), "problem+json");
    const p = error as Problem;
    eq(p.code, code, "problem code");
    eq(p.status, status, "problem status");
    eq(p.type, "/problems/" + code.toLowerCase().replace(/_/g, "-"), "problem type");
    return p;
}

function b64(bytes: Uint8Array): string {
    let s = "";
    bytes.forEach((b) => (s += String.fromCharCode(b)));
    return btoa(s);
}

function b64url(bytes: Uint8Array): string {
    return b64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function sortkeyOf(c: RowCell | ScanItem): string {
    if (c.sortkey !== undefined) return c.sortkey;
    return atob(c.sortkey_base64 as string);
}

const raw = { bodySerializer: (b: unknown) => b as string };

const tests: [string, () => Promise<void>][] = [];
function test(name: string, fn: () => Promise<void>): void {
    tests.push([name, fn]);
}

// ---------------------------------------------------------------- tests

test("healthz and readyz", async () => {
    const h = await client.GET("/healthz");
    eq(h.data?.status, "ok", "healthz");
    const r = await client.GET("/readyz");
    eq(r.data?.status, "ready", "readyz");
});

test("create, get and list a table", async () => {
    const { data, error, response } = await client.PUT("/v1/tables/{table}", {
        params: { path: { table } },
        body: { partition_count: 4, envs: { owner: "client-test" } },
    });
    assert(!error, "create: " + JSON.stringify(error));
    eq(response.status, 201, "created");
    eq(response.headers.get("location"), `/v1/tables/${table}`, "Location");
    eq(data?.partition_count, 4, "partition_count");
    eq(data?.replica_count, 1, "replica_count");
    eq(data?.status, "available", "status");

    const dup = await client.PUT("/v1/tables/{table}", { params: { path: { table } }, body: {} });
    problem(dup.error, 409, "TABLE_EXISTS", dup.response);

    const got = await client.GET("/v1/tables/{table}", { params: { path: { table } } });
    eq(got.data?.partitions.map((p) => p.index), [0, 1, 2, 3], "partitions");
    eq(got.data?.envs, { owner: "client-test" }, "envs");

    const list = await client.GET("/v1/tables", { params: { query: { include_dropped: false } } });
    assert(list.data?.tables.some((t) => t.name === table), "listed");

    const bad = await client.PUT("/v1/tables/{table}", {
        params: { path: { table: table + "-bad" } },
        // @ts-expect-error partition_count must be a power of two (an enum in the document)
        body: { partition_count: 3 },
    });
    problem(bad.error, 400, "INVALID_ARGUMENT", bad.response);
});

test("put and get a cell, raw and as JSON", async () => {
    const path = { table, hashkey: "alice", sortkey: "email" };
    const put = await client.PUT("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path, query: { ttl: 3600 } },
        body: "alice@example.com",
        headers: { "Content-Type": "text/plain" },
        ...raw,
    });
    eq(put.response.status, 201, "created");
    const etag = put.response.headers.get("etag");
    assert(etag && /^"\d+"$/.test(etag), "ETag " + etag);

    const rawGet = await client.GET("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path },
        parseAs: "text",
    });
    eq(rawGet.data, "alice@example.com", "raw value");
    eq(rawGet.response.headers.get("content-type"), "text/plain", "stored Content-Type");

    const j = await client.GET("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path },
        headers: { Accept: "application/json" },
        parseAs: "json",
    });
    const cell = j.data as components["schemas"]["CellJson"];
    eq(cell.value, "alice@example.com", "JSON value");
    eq(cell.etag, etag.slice(1, -1), "etag field");
    assert(typeof cell.ttl === "number" && cell.ttl > 3500, "ttl " + cell.ttl);

    const cond = await client.GET("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path, header: { "If-None-Match": etag } },
    });
    eq(cond.response.status, 304, "If-None-Match");

    const stale = await client.PUT("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path, header: { "If-Match": '"999999"' } },
        body: "x",
        ...raw,
    });
    const p = problem(stale.error, 412, "PRECONDITION_FAILED", stale.response);
    eq(p.current_etag, etag.slice(1, -1), "current_etag");

    const del = await client.DELETE("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path, header: { "If-Match": etag } },
    });
    eq(del.response.status, 204, "deleted");
    const gone = await client.GET("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path },
        headers: { Accept: "application/json" },
    });
    problem(gone.error, 404, "CELL_NOT_FOUND", gone.response);
});

test("binary keys by base64url and _base64 fields", async () => {
    const hk = new Uint8Array([0xff, 0x00, 0x2f]);
    const patch = await client.PATCH("/v1/tables/{table}/rows/{hashkey}", {
        params: { path: { table, hashkey: b64url(hk) }, query: { key_encoding: "base64url" } },
        body: { set: [{ sortkey_base64: b64(new Uint8Array([0])), value_base64: b64(new Uint8Array([0, 1])) }] },
    });
    eq(patch.data, { applied: true }, "patch");
    const got = await client.GET("/v1/tables/{table}/rows/{hashkey}", {
        params: { path: { table, hashkey: b64url(hk) }, query: { key_encoding: "base64url" } },
    });
    eq(got.data?.hashkey_base64, b64(hk), "hashkey_base64");
    eq(got.data?.cells.map((c) => [c.sortkey_base64, c.value_base64]), [["AA==", "AAE="]], "cells");
});

test("multi-get with paging, reverse and filters", async () => {
    const hashkey = "paged";
    const keys = Array.from({ length: 23 }, (_, i) => `k${String(i).padStart(2, "0")}`);
    const patch = await client.PATCH("/v1/tables/{table}/rows/{hashkey}", {
        params: { path: { table, hashkey } },
        body: { set: keys.map((k) => ({ sortkey: k, value: "v-" + k })) },
    });
    eq(patch.data?.applied, true, "patch");

    for (const reverse of [false, true]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let page = 0; ; page++) {
            assert(page < 100, "too many pages");
            const { data, error } = await client.GET("/v1/tables/{table}/rows/{hashkey}", {
                params: { path: { table, hashkey }, query: { limit: 5, reverse, cursor } },
            });
            assert(data && !error, "page");
            assert(data.cells.length <= 5, "limit");
            seen.push(...data.cells.map(sortkeyOf));
            if (data.next_cursor === null) break;
            cursor = data.next_cursor;
        }
        eq(seen, reverse ? [...keys].reverse() : keys, `every cell once (reverse=${reverse})`);
    }
    const f = await client.GET("/v1/tables/{table}/rows/{hashkey}", {
        params: {
            path: { table, hashkey },
            query: { start: "k05", stop: "k20", filter_type: "postfix", filter: "1", values: false },
        },
    });
    eq(f.data?.cells.map(sortkeyOf), ["k11"], "filtered range");
    eq(f.data?.cells[0] && "value" in f.data.cells[0], false, "values=false");
    const n = await client.GET("/v1/tables/{table}/rows/{hashkey}/count", {
        params: { path: { table, hashkey }, query: { start: "k10" } },
    });
    eq(n.data?.count, 13, "count");
    const del = await client.DELETE("/v1/tables/{table}/rows/{hashkey}", {
        params: { path: { table, hashkey }, query: { start: "k20" } },
    });
    eq(del.data?.deleted, 3, "range delete");
    const bad = await client.GET("/v1/tables/{table}/rows/{hashkey}", {
        params: { path: { table, hashkey }, query: { cursor: "!!" } },
    });
    problem(bad.error, 400, "INVALID_CURSOR", bad.response);
});

test("check-and-mutate", async () => {
    const path = { table, hashkey: "lock" };
    const body: components["schemas"]["CheckAndMutateRequest"] = {
        check: { sortkey: "owner", type: "value_not_exist" },
        set: [{ sortkey: "owner", value: "me" }],
        return_check_value: true,
    };
    const first = await client.POST("/v1/tables/{table}/rows/{hashkey}/check-and-mutate", { params: { path }, body });
    eq(first.data, { applied: true, check_value_exists: false, check_value: null }, "first");
    const second = await client.POST("/v1/tables/{table}/rows/{hashkey}/check-and-mutate", { params: { path }, body });
    eq(second.data, { applied: false, check_value_exists: true, check_value: "me" }, "second");
    const bad = await client.POST("/v1/tables/{table}/rows/{hashkey}/check-and-mutate", {
        params: { path },
        // @ts-expect-error not a check type of the document
        body: { check: { sortkey: "owner", type: "value_equals" } },
    });
    problem(bad.error, 400, "INVALID_ARGUMENT", bad.response);
});

test("incr", async () => {
    const path = { table, hashkey: "counters", sortkey: "hits" };
    const a = await client.POST("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}/incr", { params: { path } });
    eq(a.data?.value, 1, "default by");
    const b = await client.POST("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}/incr", {
        params: { path },
        body: { by: 41, ttl: 60 },
    });
    eq(b.data?.value, 42, "by 41");
    await client.PUT("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}", {
        params: { path: { ...path, sortkey: "text" } },
        body: "abc",
        ...raw,
    });
    const c = await client.POST("/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}/incr", {
        params: { path: { ...path, sortkey: "text" } },
        body: { by: 1 },
    });
    problem(c.error, 422, "NOT_AN_INTEGER", c.response);
});

test("batch-write, batch-get and scan", async () => {
    const set = Array.from({ length: 30 }, (_, i) => ({ hashkey: `b${i % 6}`, sortkey: `s${i}`, value: `${i}` }));
    const w = await client.POST("/v1/tables/{table}/batch-write", { params: { path: { table } }, body: { set } });
    eq(w.data?.results.map((r) => [r.hashkey, r.status]), [0, 1, 2, 3, 4, 5].map((i) => [`b${i}`, 200]), "rows");
    const g = await client.POST("/v1/tables/{table}/batch-get", {
        params: { path: { table } },
        body: { keys: [{ hashkey: "b1", sortkey: "s7" }, { hashkey: "b1", sortkey: "nope" }] },
    });
    eq(g.data?.results.map((r) => [r.found, r.value ?? null]), [[true, "7"], [false, null]], "batch-get");

    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; ; page++) {
        assert(page < 200, "too many pages");
        const { data } = await client.GET("/v1/tables/{table}/scan", {
            params: { path: { table }, query: { limit: 4, hashkey_prefix: "b", cursor } },
        });
        assert(data, "scan page");
        for (const item of data.items) {
            const k = `${item.hashkey}/${sortkeyOf(item)}`;
            assert(!seen.has(k), "twice: " + k);
            seen.add(k);
        }
        if (data.next_cursor === null) break;
        cursor = data.next_cursor;
    }
    eq(seen.size, 30, "scan saw every cell once");
});

test("errors are typed problems", async () => {
    const missing = await client.GET("/v1/tables/{table}", { params: { path: { table: "no-such-table" } } });
    problem(missing.error, 404, "TABLE_NOT_FOUND", missing.response);
    const name = await client.GET("/v1/tables/{table}", { params: { path: { table: "bad name" } } });
    problem(name.error, 400, "INVALID_TABLE_NAME", name.response);
    const many = await client.POST("/v1/tables/{table}/batch-get", {
        params: { path: { table } },
        body: { keys: Array.from({ length: 1001 }, (_, i) => ({ hashkey: "h", sortkey: `${i}` })) },
    });
    problem(many.error, 400, "TOO_MANY_ITEMS", many.response);
    // @ts-expect-error not a path of the document
    const nope = await client.GET("/v1/nothing");
    problem(nope.error, 404, "NOT_FOUND", nope.response);
});

test("drop and recall", async () => {
    const d = await client.DELETE("/v1/tables/{table}", { params: { path: { table } } });
    eq(d.data?.status, "dropped", "dropped");
    assert(typeof d.data?.drop_time_ms === "number", "drop_time_ms");
    const r = await client.POST("/v1/tables/{table}/recall", { params: { path: { table } }, body: {} });
    eq(r.data?.status, "available", "recalled");
    const p = await client.DELETE("/v1/tables/{table}", { params: { path: { table }, query: { purge: true } } });
    eq(p.data?.name, table, "purged");
});

// ---------------------------------------------------------------- runner

let passed = 0, failed = 0;
for (const [name, fn] of tests) {
    try {
        await fn();
        console.log(`  ok    ${name}`);
        passed++;
    } catch (e) {
        console.log(`  FAIL  ${name}\n        ${(e as Error).stack ?? e}`);
        failed++;
    }
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;

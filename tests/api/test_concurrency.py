"""Atomicity under concurrency: parallel incr on one cell sum exactly;
parallel value_not_exist check-and-mutates on one cell have exactly one
winner; parallel PATCHes of one row never leave (or show) a mix."""
import random
import threading

from helpers import cell, row, unique

THREADS = 12


def run_threads(n, fn):
    errors, threads = [], []

    def wrap(i):
        try:
            fn(i)
        except BaseException as e:  # reported by the caller
            errors.append(e)
    for i in range(n):
        t = threading.Thread(target=wrap, args=(i,))
        threads.append(t)
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a worker hung"
    assert not errors, errors[:3]


def test_parallel_incr_sums_exactly(api, table):
    h = unique("h")
    per = 40
    results = [[] for _ in range(THREADS)]
    bys = [[random.Random(i * 1000 + k).randint(1, 1000) for k in range(per)] for i in range(THREADS)]

    def worker(i):
        for by in bys[i]:
            results[i].append(api.post(cell(table, h, "n") + "/incr", {"by": by}).ok()["value"])
    run_threads(THREADS, worker)
    total = sum(map(sum, bys))
    assert api.get(cell(table, h, "n")).body == b"%d" % total
    seen = [v for r in results for v in r]
    assert len(set(seen)) == len(seen) == THREADS * per, "two increments saw the same value"
    assert max(seen) == total
    for r in results:
        assert r == sorted(r), "one client's increments went backwards"


def test_parallel_check_and_mutate_has_one_winner(api, table):
    for round_ in range(5):
        h = unique("h")
        applied = []

        def worker(i):
            res = api.post(row(table, h) + "/check-and-mutate", {
                "check": {"sortkey": "lock", "type": "value_not_exist"},
                "set": [{"sortkey": "lock", "value": "owner-%d" % i},
                        {"sortkey": "by-%d" % i, "value": "x"}],
                "return_check_value": True}).ok()
            if res["applied"]:
                applied.append(i)
            else:
                assert res["check_value_exists"] is True and res["check_value"].startswith("owner-")
        run_threads(THREADS, worker)
        assert len(applied) == 1, "winners: %s" % applied
        assert api.get(cell(table, h, "lock")).body == b"owner-%d" % applied[0]
        cells = [c["sortkey"] for c in api.read_row(table, h)[0]]
        assert cells == sorted(["lock", "by-%d" % applied[0]]), cells


def test_parallel_if_none_match_has_one_creator(api, table):
    h = unique("h")
    statuses = []

    def worker(i):
        statuses.append(api.put(cell(table, h, "s"), b"%d" % i, headers={"If-None-Match": "*"}).status)
    run_threads(THREADS, worker)
    assert sorted(statuses) == [201] + [412] * (THREADS - 1), statuses


def test_parallel_patches_never_mix(api, table):
    h = unique("h")
    cols = ["c%02d" % k for k in range(12)]
    rounds = 25
    mixed = []
    stop = threading.Event()

    def writer(i):
        for r in range(rounds):
            tag = "w%d-r%d" % (i, r)
            api.patch(row(table, h), {"set": [{"sortkey": c, "value": tag} for c in cols],
                                      "delete": [{"sortkey": "gone-%d" % i}]}).ok()

    def reader():
        while not stop.is_set():
            doc = api.get(row(table, h), query={"limit": 100}).ok()
            vals = {c["value"] for c in doc["cells"]}
            if doc["cells"] and (len(vals) != 1 or len(doc["cells"]) != len(cols)):
                mixed.append(doc["cells"])
    rt = threading.Thread(target=reader)
    rt.start()
    try:
        run_threads(THREADS, writer)
    finally:
        stop.set()
        rt.join()
    cells = api.read_row(table, h)[0]
    assert [c["sortkey"] for c in cells] == cols
    assert len({c["value"] for c in cells}) == 1, "the row is a mix of PATCHes: %s" % cells
    assert len({c["etag"] for c in cells}) == 1
    assert not mixed, "a reader saw a partly applied PATCH: %s" % mixed[0]


def test_parallel_batch_writes_are_atomic_per_row(api, table):
    hs = [unique("h") for _ in range(4)]

    def worker(i):
        for r in range(15):
            tag = "w%d-%d" % (i, r)
            res = api.post("/v1/tables/%s/batch-write" % table,
                           {"set": [{"hashkey": h, "sortkey": "c%d" % k, "value": tag}
                                    for h in hs for k in range(5)]}).ok()
            assert [x["status"] for x in res["results"]] == [200] * len(hs)
    run_threads(8, worker)
    for h in hs:
        cells = api.read_row(table, h)[0]
        assert len(cells) == 5 and len({c["value"] for c in cells}) == 1, cells

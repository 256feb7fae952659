"""The linearizability checker (linearizability.py) on hand-written
histories that must pass and that must fail, against a brute-force checker
on small random histories, on random linearizable histories simulated with
real overlapping intervals (and the same with one read corrupted), on a
history of 3000 operations, and its Recorder from many threads.

Needs no cellard: runs anywhere with `python3 tests/cluster/test_linearizability.py`.
"""
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearizability as lz  # noqa: E402
from linearizability import (FAIL, MISSING, OK, PRECONDITION_FAILED, UNKNOWN, Op,  # noqa: E402
                             check)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cellar import run_tests  # noqa: E402


# --- building histories by hand --------------------------------------------
# Times are plain numbers; t1=None with outcome unknown.

def R(p, t0, t1, result, version=None, key="k", outcome=OK):
    return Op(p, key, "read", t0, t1, outcome, result=result, version=version)


def W(p, t0, t1, value, version=None, key="k", outcome=OK):
    return Op(p, key, "write", t0, t1, outcome, value=value, version=version)


def D(p, t0, t1, version=None, key="k", outcome=OK):
    return Op(p, key, "delete", t0, t1, outcome, version=version)


def CAS(p, t0, t1, expected, value, version=None, failed=False, key="k", outcome=OK):
    """failed: answered 412; version is then the current version reported
    (an int, MISSING, or None)."""
    return Op(p, key, "cas", t0, t1, outcome, value=value, expected=expected,
              result=PRECONDITION_FAILED if failed else None, version=version)


def INC(p, t0, t1, by, result=None, version=None, key="k", outcome=OK):
    return Op(p, key, "incr", t0, t1, outcome, by=by, result=result, version=version)


def U(op):
    """op with an unknown outcome: no completion, no result."""
    op.outcome = UNKNOWN
    op.complete = None
    op.result = None
    op.version = None
    return op


def must_pass(history, **kw):
    r = check(history, **kw)
    assert r.status == OK, "expected linearizable:\n%s" % r.describe()
    assert r and r.ok
    return r


def must_fail(history, **kw):
    r = check(history, **kw)
    assert r.status == "violation", "expected a violation, got %s:\n%s" % (r.status, r.describe())
    assert not r
    text = r.describe()
    assert "NOT linearizable" in text and r.violations[0].blocked is not None, text
    return r


# --- histories that must pass ------------------------------------------------

def test_sequential():
    must_pass([
        R(0, 0, 1, MISSING),
        W(0, 2, 3, b"a", 1), R(0, 4, 5, b"a", 1),
        W(0, 6, 7, b"b", 4), R(0, 8, 9, b"b", 4), R(0, 10, 11, b"b"),
        D(0, 12, 13), R(0, 14, 15, MISSING),
        W(0, 16, 17, b"c", 9), R(0, 18, 19, b"c", 9),
    ])


def test_empty_and_trivial_histories():
    assert check([]).ok
    must_pass([W(0, 0, 1, b"a", 1)])
    must_pass([R(0, 0, 1, MISSING)])
    must_pass([U(W(0, 0, 1, b"a")), U(D(1, 0, 1))])     # only unknown operations
    must_pass([R(0, 0, 1, b"zzz", outcome=FAIL)])        # failed reads are dropped


def test_concurrent_writes_read_sees_either():
    for seen in (b"a", b"b"):
        must_pass([W(0, 0, 10, b"a"), W(1, 1, 9, b"b"), R(2, 11, 12, seen), R(2, 13, 14, seen)])
    # a read concurrent with a write sees the old value or the new one
    for seen in (b"a", b"b"):
        must_pass([W(0, 0, 1, b"a"), W(1, 2, 6, b"b"), R(2, 3, 5, seen), R(2, 7, 8, b"b")])
    # two readers see the writes' two orders' effects in a consistent order
    must_pass([W(0, 0, 10, b"a"), W(1, 0, 10, b"b"),
               R(2, 1, 2, b"a"), R(3, 3, 4, b"b"), R(2, 11, 12, b"b")])
    # with versions: whichever write came second has the larger version
    must_pass([W(0, 0, 10, b"a", 7), W(1, 1, 9, b"b", 5), R(2, 11, 12, b"a", 7)])


def test_unknown_write_that_happened():
    must_pass([W(0, 0, 1, b"a", 1), U(W(1, 2, None, b"b")), R(2, 3, 4, b"b")])
    # it may take effect long after its client gave up on it
    must_pass([W(0, 0, 1, b"a", 1), U(W(1, 2, None, b"b")),
               R(2, 5, 6, b"a", 1), R(2, 7, 8, b"a", 1), R(2, 50, 51, b"b")])
    # its version is not known: a read pins it, a later write is larger
    must_pass([W(0, 0, 1, b"a", 1), U(W(1, 2, None, b"b")), R(2, 3, 4, b"b", 6),
               W(0, 5, 6, b"c", 7), R(2, 7, 8, b"c", 7)])


def test_unknown_write_that_did_not_happen():
    must_pass([W(0, 0, 1, b"a", 1), U(W(1, 2, None, b"b")),
               R(2, 3, 4, b"a", 1), W(0, 5, 6, b"c", 2), R(2, 7, 8, b"c", 2)])
    # failed writes are dropped
    must_pass([W(0, 0, 1, b"a"), W(1, 2, 3, b"b", outcome=FAIL), R(2, 4, 5, b"a")])


def test_many_unknown_writes():
    h = [W(0, 0, 1, b"w0", 1)]
    for i in range(1, 30):
        h.append(U(W(i, 2 + i, None, b"u%d" % i)))
    # reads see some of them, in invocation order or not
    for t, i in enumerate([3, 1, 7, 20, 12, 29]):
        h.append(R(99, 100 + 2 * t, 101 + 2 * t, b"u%d" % i))
    must_pass(h)


def test_cas_interleavings():
    # one of two cas with the same expected version wins; the other is 412
    must_pass([W(0, 0, 1, b"a", 1),
               CAS(1, 2, 5, 1, b"b", 2), CAS(2, 2, 5, 1, b"c", 2, failed=True),
               R(0, 6, 7, b"b", 2)])
    # the 412 may come first in real time if the winner overlaps it
    must_pass([W(0, 0, 1, b"a", 1),
               CAS(2, 2, 3, 1, b"c", 5, failed=True), CAS(1, 2, 6, 1, b"b", 5),
               R(0, 7, 8, b"b", 5)])
    # a 412 caused by a concurrent plain write
    must_pass([W(0, 0, 1, b"a", 1), CAS(1, 2, 5, 1, b"b", 3, failed=True),
               W(2, 3, 4, b"c", 3), R(0, 6, 7, b"c", 3)])
    # or before that write: the cas succeeded, the write came after
    must_pass([W(0, 0, 1, b"a", 1), CAS(1, 2, 5, 1, b"b", 2),
               W(2, 3, 4, b"c", 3), R(0, 6, 7, b"c", 3)])
    # a 412 on a missing cell; versions unknown to the client
    must_pass([CAS(0, 0, 1, 4, b"x", MISSING, failed=True), W(0, 2, 3, b"a"),
               CAS(1, 4, 5, 99, b"y", None, failed=True), R(0, 6, 7, b"a")])
    # a cas whose outcome is unknown: it happened (later read) ...
    must_pass([W(0, 0, 1, b"a", 1), U(CAS(1, 2, None, 1, b"b")), R(2, 3, 4, b"b")])
    # ... or not, and a cas chain
    must_pass([W(0, 0, 1, b"a", 1), U(CAS(1, 2, None, 1, b"b")), R(2, 3, 4, b"a", 1),
               CAS(2, 5, 6, 1, b"c", 2), CAS(2, 7, 8, 2, b"d", 8), R(2, 9, 10, b"d", 8)])


def test_incr_with_unknowns():
    must_pass([INC(0, 0, 1, 1, 1), INC(0, 2, 3, 1, 2), INC(0, 4, 5, 5, 7), R(0, 6, 7, b"7")])
    # concurrent increments: results in either order
    must_pass([INC(0, 0, 5, 1, 2), INC(1, 1, 4, 1, 1), R(2, 6, 7, b"2")])
    # an unknown incr that happened ...
    must_pass([INC(0, 0, 1, 1, 1), U(INC(1, 2, None, 1)), INC(0, 3, 4, 1, 3)])
    # ... did not ...
    must_pass([INC(0, 0, 1, 1, 1), U(INC(1, 2, None, 1)), INC(0, 3, 4, 1, 2)])
    # ... or did so late
    must_pass([INC(0, 0, 1, 1, 1), U(INC(1, 2, None, 10)), INC(0, 3, 4, 1, 2),
               R(0, 5, 6, b"2"), R(0, 7, 8, b"12"), INC(0, 9, 10, 1, 13)])
    # many identical unknown incrs: any number of them may have happened
    h = [INC(0, 0, 1, 1, 1)] + [U(INC(i, 2, None, 1)) for i in range(1, 40)]
    h += [INC(0, 3, 4, 1, 5), R(0, 5, 6, b"5"), INC(0, 7, 8, 1, 30)]
    must_pass(h)
    # missing counts as 0; a delete resets; a written number goes on
    must_pass([INC(0, 0, 1, -3, -3), D(0, 2, 3), INC(0, 4, 5, 2, 2), W(0, 6, 7, b"40"),
               INC(0, 8, 9, 2, 42), W(0, 10, 11, b""), INC(0, 12, 13, 1, 1)])


def test_deletes():
    must_pass([W(0, 0, 1, b"a", 1), D(0, 2, 3), R(0, 4, 5, MISSING),
               W(0, 6, 7, b"b", 3), R(0, 8, 9, b"b", 3)])
    # a read concurrent with a delete sees the value or nothing
    for seen in (b"a", MISSING):
        must_pass([W(0, 0, 1, b"a"), D(1, 2, 5), R(2, 3, 4, seen), R(2, 6, 7, MISSING)])
    # an unknown delete
    must_pass([W(0, 0, 1, b"a"), U(D(1, 2, None)), R(2, 3, 4, b"a"), R(2, 5, 6, MISSING)])
    # a delete takes a version: a later write's version is at least 2 past
    must_pass([W(0, 0, 1, b"a", 1), D(0, 2, 3), W(0, 4, 5, b"b", 3)])


def test_versions_only_grow():
    # gaps are fine (other cells' writes share the counter)
    must_pass([W(0, 0, 1, b"a", 3), W(0, 2, 3, b"b", 40), R(0, 4, 5, b"b", 40),
               INC(0, 6, 7, 1, 1, 41, key="c"), CAS(0, 8, 9, 40, b"c", 1000)])
    # with the initial state given
    must_pass([R(0, 0, 1, b"x", 5), CAS(0, 2, 3, 5, b"y", 6)], initial={"k": (b"x", 5)})


def test_keys_are_independent():
    # each key alone is linearizable; across keys it would not be
    # sequentially consistent, which is not linearizability's business
    must_pass([W(0, 0, 1, b"a", key="x"), W(1, 0, 1, b"a", key="y"),
               R(0, 2, 3, b"a", key="y"), R(1, 2, 3, b"a", key="x")])
    r = check([W(0, 0, 1, b"a", key="x"), R(0, 2, 3, b"b", key="y"), R(0, 2, 3, b"a", key="x")])
    assert r.status == "violation" and r.key == "y" and r.keys["x"].ok, r.describe()


# --- histories that must fail -------------------------------------------------

def test_fail_stale_read():
    r = must_fail([W(0, 0, 1, b"a"), W(0, 2, 3, b"b"), R(1, 4, 5, b"a")])
    kr = r.violations[0]
    assert kr.blocked.kind == "read" and kr.blocked.result == b"a", kr.describe()
    assert [op.value for op, _ in kr.prefix] == [b"a", b"b"], kr.describe()


def test_fail_value_never_written():
    must_fail([W(0, 0, 1, b"a"), R(1, 0, 5, b"zz")])
    must_fail([R(1, 0, 5, b"zz")])
    # nor by a write that surely failed
    must_fail([W(0, 0, 1, b"a"), W(1, 2, 3, b"b", outcome=FAIL), R(2, 4, 5, b"b")])
    # nor by a write invoked after the read completed
    must_fail([W(0, 0, 1, b"a"), R(1, 2, 3, b"b"), W(0, 4, 5, b"b")])
    must_fail([W(0, 0, 1, b"a"), R(1, 2, 3, b"b"), U(W(0, 4, None, b"b"))])


def test_fail_two_cas_same_version():
    must_fail([W(0, 0, 1, b"a", 1), CAS(1, 2, 5, 1, b"b", 2), CAS(2, 2, 5, 1, b"c", 3)])
    must_fail([W(0, 0, 1, b"a"), CAS(1, 2, 5, 1, b"b"), CAS(2, 2, 5, 1, b"c")],
              initial={"k": (MISSING, None)})
    # a cas on a missing cell cannot succeed
    must_fail([CAS(1, 2, 5, 1, b"b")])
    # a 412 while the cell had the expected version and nothing overlapped
    must_fail([W(0, 0, 1, b"a", 1), CAS(1, 2, 3, 1, b"b", None, failed=True)])
    must_fail([W(0, 0, 1, b"a", 1), CAS(1, 2, 3, 1, b"b", 1, failed=True)])
    # a 412 claiming the cell missing while it was there
    must_fail([W(0, 0, 1, b"a", 1), CAS(1, 2, 3, 7, b"b", MISSING, failed=True)])


def test_fail_lost_acknowledged_write():
    must_fail([W(0, 0, 1, b"a"), W(0, 2, 3, b"b"), R(1, 4, 5, b"b"), R(1, 6, 7, b"a")])
    # concurrent writes: once a read saw the later one, nothing goes back
    must_fail([W(0, 0, 10, b"a"), W(1, 0, 10, b"b"),
               R(2, 1, 2, b"a"), R(2, 3, 4, b"b"), R(2, 5, 6, b"a")])
    # an unknown write cannot be undone either
    must_fail([W(0, 0, 1, b"a"), U(W(1, 2, None, b"b")), R(2, 3, 4, b"b"), R(2, 5, 6, b"a")])


def test_fail_incr_skip_or_repeat():
    must_fail([INC(0, 0, 1, 1, 1), INC(0, 2, 3, 1, 3)])                  # skip
    must_fail([INC(0, 0, 5, 1, 1), INC(1, 1, 4, 1, 1)])                  # repeat
    must_fail([INC(0, 0, 1, 1, 1), U(INC(1, 2, None, 1)), INC(0, 3, 4, 1, 4)])
    must_fail([INC(0, 0, 1, 1, 1), R(0, 2, 3, b"2")])
    must_fail([W(0, 0, 1, b"abc"), INC(0, 2, 3, 1, 1)])                  # not an integer
    must_fail([W(0, 0, 1, b"9223372036854775807"), INC(0, 2, 3, 1, -(1 << 63))])


def test_fail_read_after_delete():
    must_fail([W(0, 0, 1, b"a", 1), D(1, 2, 3), R(2, 4, 5, b"a", 1)])
    must_fail([W(0, 0, 1, b"a"), D(1, 2, 3), R(2, 4, 5, b"a")])
    must_fail([W(0, 0, 1, b"a"), D(1, 2, 3), R(2, 4, 5, MISSING), R(2, 6, 7, b"a")])


def test_fail_version_backwards():
    must_fail([W(0, 0, 1, b"a", 5), W(0, 2, 3, b"b", 3)])
    must_fail([W(0, 0, 1, b"a", 5), W(0, 2, 3, b"b", 5)])
    must_fail([W(0, 0, 1, b"a", 5), R(0, 2, 3, b"a", 4)])
    # a read's version is its writer's
    must_fail([W(0, 0, 1, b"a", 5), W(0, 2, 3, b"b", 7), R(0, 4, 5, b"b", 6)])
    # a delete takes a version: the next write is not just one past
    must_fail([W(0, 0, 1, b"a", 1), D(0, 2, 3), W(0, 4, 5, b"b", 2)])
    # an incr, a cas likewise
    must_fail([INC(0, 0, 1, 1, 1, 9), INC(0, 2, 3, 1, 2, 8)])
    must_fail([W(0, 0, 1, b"a", 5), CAS(0, 2, 3, 5, b"b", 5)])
    # a pinned unknown version then a smaller one
    must_fail([W(0, 0, 1, b"a", 1), U(W(1, 2, None, b"b")), R(2, 3, 4, b"b", 6),
               W(0, 5, 6, b"c", 6)])


def test_bound_gives_unknown_never_ok():
    h = [W(i, 0, 10, b"w%d" % i) for i in range(8)] + [R(9, 11, 12, b"w3")]
    r = check(h, max_states=3)
    assert r.status == UNKNOWN and not r.ok and r.unknown, r.describe()
    assert "max_states" in r.describe()
    must_pass(h)


def test_malformed_operations_are_refused():
    bad = [Op(0, "k", "frob", 0, 1), Op(0, "k", "read", 0, 1, OK),
           Op(0, "k", "write", 0, 1, OK), Op(0, "k", "read", 2, 1, OK, result=b"a"),
           Op(0, "k", "cas", 0, 1, OK, value=b"a"), Op(0, "k", "incr", 0, 1, OK, by=1),
           Op(0, "k", "read", 0, None, OK, result=b"a"),
           Op(0, "k", "read", 0, 1, OK, result=MISSING, version=3)]
    for op in bad:
        try:
            check([op])
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (op,))


def test_describe_a_violation():
    h = [W(0, 0, 1, b"a", 1), W(1, 2, 3, b"b", 2), R(2, 2.5, 4, b"b", 2), R(3, 5, 6, b"a", 1)]
    r = must_fail(h)
    text = r.describe()
    assert "key 'k'" in text and "3 of the 4" in text and "read -> b'a' v1" in text, text
    assert r.violations[0].state == (b"b", 2, True), text


# --- a brute-force reference on small random histories -----------------------

def brute_force(history, init=None):
    """Linearizable? By trying every order that respects real time (and
    every subset of the unknown operations), with the same model."""
    ops = [op for op in history
           if op.outcome == OK or (op.outcome == UNKNOWN and op.kind != "read")]
    fin = [i for i, op in enumerate(ops) if op.outcome == OK]
    need_fin = sum(1 << i for i in fin)
    before = [sum(1 << j for j in fin if ops[j].complete < ops[i].invoke)
              for i in range(len(ops))]
    seen = set()

    def go(done, state):
        if done & need_fin == need_fin:
            return True
        if (done, state) in seen:
            return False
        seen.add((done, state))
        for i in range(len(ops)):
            if done >> i & 1 or before[i] & done != before[i]:
                continue
            ns = lz.step(ops[i], state)
            if ns is not None and go(done | 1 << i, ns):
                return True
        return False
    return go(0, init or lz.initial_state())


def random_small_history(rng):
    vals = [b"a", b"b", b"1", b"2"]
    h = []
    for p in range(rng.randint(1, 6)):
        t0 = rng.randint(0, 8)
        t1 = t0 + rng.randint(0, 4)
        kind = rng.choice(["read", "read", "write", "write", "delete", "cas", "incr"])
        outcome = rng.choice([OK, OK, OK, OK, UNKNOWN, FAIL])
        v = rng.choice([None, None, 1, 2, 3, 4])
        if kind == "read":
            op = R(p, t0, t1, rng.choice(vals + [MISSING]), v)
            if op.result is MISSING:
                op.version = None
        elif kind == "write":
            op = W(p, t0, t1, rng.choice(vals), v)
        elif kind == "delete":
            op = D(p, t0, t1, v)
        elif kind == "cas":
            failed = rng.random() < 0.5
            op = CAS(p, t0, t1, rng.randint(1, 3), rng.choice(vals),
                     rng.choice([None, MISSING, 1, 2, 3]) if failed else v, failed)
        else:
            op = INC(p, t0, t1, rng.choice([1, 1, 2]), rng.randint(0, 4), v)
        if outcome == UNKNOWN:
            U(op)
        op.outcome = outcome
        h.append(op)
    return h


def test_agrees_with_brute_force():
    rng = random.Random(1)
    counts = {OK: 0, "violation": 0}
    for n in range(4000):
        h = random_small_history(rng) if n % 2 else simulate(
            rng, rng.randint(2, 8), keys=["k"], counters=[] if n % 4 else ["k"], procs=3,
            p_unknown=0.2, versions=rng.random() < 0.7)
        if n % 2 == 0 and rng.random() < 0.5:
            corrupt_randomly(rng, h)
        expect = brute_force(h)
        r = check(h)
        assert r.status == (OK if expect else "violation"), (
            "history %d: brute force says %s, check says:\n%s\n%s"
            % (n, expect, r.describe(), "\n".join(map(repr, h))))
        counts[r.status] += 1
    print("        %d linearizable, %d not" % (counts[OK], counts["violation"]))
    assert min(counts.values()) > 500, counts


def corrupt_randomly(rng, h):
    """Changes one result at random (it may or may not stay linearizable)."""
    oks = [op for op in h if op.outcome == OK]
    if not oks:
        return
    op = rng.choice(oks)
    if op.kind == "read":
        op.result = rng.choice([b"a", b"b", b"1", b"2", MISSING])
        op.version = None if op.result is MISSING else rng.choice([None, 1, 2, 3, 4, 5])
    elif op.kind == "incr":
        op.result += rng.choice([-1, 1])
    elif op.version is not None and op.version is not MISSING:
        op.version += rng.choice([-1, 1])


# --- random linearizable histories: a simulated register ---------------------

def simulate(rng, n_ops, keys, counters, procs, p_unknown=0.03, p_never=0.3,
             versions=True, p_fail=0.02):
    """A history of n_ops on keys (those in counters are counters: incr,
    read, an occasional delete or write of a number; the others registers:
    read, write, cas, delete, with unique values) by procs processes, each
    one operation at a time over real intervals. Every operation takes
    effect at a point chosen inside its interval, against one version
    counter shared by all keys; an unknown one (its client gave up) takes
    effect at a point up to three times its interval after its invocation,
    or never. Results are what the cell held at that point."""
    clock = [rng.random() for _ in range(procs)]
    specs = []
    for i in range(n_ops):
        p = i % procs
        invoke = clock[p] + rng.expovariate(10.0)
        dur = rng.uniform(0.02, 1.0)
        key = rng.choice(keys)
        if key in counters:
            kind = rng.choices(["incr", "read", "delete", "write"], [6, 4, 0.3, 0.3])[0]
        else:
            kind = rng.choices(["read", "write", "cas", "delete"], [5, 3, 2, 0.5])[0]
        unknown = kind != "read" and rng.random() < p_unknown
        failed = not unknown and rng.random() < p_fail
        if unknown:
            at = None if rng.random() < p_never else invoke + rng.random() * 3 * dur
        else:
            at = None if failed else invoke + rng.random() * dur
        op = Op(p, key, kind, invoke, None if unknown else invoke + dur,
                UNKNOWN if unknown else FAIL if failed else OK)
        specs.append((op, at))
        clock[p] = invoke + dur
    events = [(op.invoke, 0, n) for n, (op, _) in enumerate(specs)]
    events += [(at, 1, n) for n, (_, at) in enumerate(specs) if at is not None]
    events.sort()
    cells = {k: [None, 0] for k in keys}    # value, version
    known = {}                               # (process, key) -> version seen
    counter = [0]
    serial = [0]

    def new_version():
        counter[0] += rng.choice([1, 1, 1, 2, 3])
        return counter[0]
    for _, typ, n in events:
        op, _ = specs[n]
        cell = cells[op.key]
        if typ == 0:   # the client chooses its arguments
            serial[0] += 1
            if op.kind == "write":
                op.value = (b"%d" % rng.randint(0, 50) if op.key in counters
                            else b"p%d.%d" % (op.process, serial[0]))
            elif op.kind == "cas":
                op.value = b"p%d.%d" % (op.process, serial[0])
                v = known.get((op.process, op.key))
                op.expected = v if v and rng.random() < 0.8 else rng.randint(1, counter[0] + 2)
            elif op.kind == "incr":
                op.by = rng.choice([1, 1, 1, 2, -1, 10])
            continue
        # the operation takes effect
        if op.kind == "read":
            op.result = MISSING if cell[0] is None else cell[0]
            op.version = cell[1] if versions and cell[0] is not None else None
        elif op.kind in ("write", "delete"):
            cell[0] = op.value if op.kind == "write" else None
            cell[1] = new_version()
            op.version = cell[1] if versions and op.kind == "write" else None
        elif op.kind == "cas":
            if cell[0] is not None and cell[1] == op.expected:
                cell[0] = op.value
                cell[1] = new_version()
                op.version = cell[1] if versions else None
            else:
                op.result = PRECONDITION_FAILED
                op.version = ((MISSING if cell[0] is None else cell[1]) if versions
                              else rng.choice([None, MISSING if cell[0] is None else None]))
        elif op.kind == "incr":
            cur = 0 if cell[0] in (None, b"") else int(cell[0])
            cell[0] = b"%d" % (cur + op.by)
            cell[1] = new_version()
            op.result = cur + op.by
            op.version = cell[1] if versions else None
        if op.outcome == UNKNOWN:
            op.result = op.version = None
        elif op.version is not None and op.version is not MISSING:
            known[(op.process, op.key)] = op.version
    return [op for op, _ in specs]


def corrupt_read(rng, h, how, counters=("c",)):
    """Changes the result of one ok read of a register (a key not in
    counters) so that the history surely is not linearizable any more;
    returns False when the history offers no read to do it to."""
    writes = [op for op in h if op.outcome == OK and op.key not in counters and (
        op.kind == "write" or (op.kind == "cas" and op.result is None))]
    muts = [op for op in h if op.outcome == OK and op.kind in ("write", "cas", "delete")
            and op.result is None]
    reads = [op for op in h if op.outcome == OK and op.kind == "read"
             and op.key not in counters]
    rng.shuffle(reads)
    for r in reads:
        if how == "never":
            r.result, r.version = b"never written", None
            return True
        if how == "future":
            later = [w for w in h if w.key == r.key and w.kind in ("write", "cas")
                     and w.value is not None and w.invoke > r.complete]
            if later:
                w = rng.choice(later)
                r.result = w.value
                r.version = None
                return True
        if how == "stale":
            for b in muts:
                if b.key != r.key or not b.complete < r.invoke:
                    continue
                older = [a for a in writes if a.key == r.key and a.complete < b.invoke]
                if older:
                    a = rng.choice(older)
                    r.result, r.version = a.value, a.version
                    return True
        if how == "version" and r.version is not None:
            src = [w for w in writes if w.key == r.key and w.value == r.result]
            if src and src[0].version == r.version:
                r.version += rng.choice([-1, 1])
                return True
    return False


def test_random_linearizable_histories_pass():
    rng = random.Random(2)
    for n in range(150):
        h = simulate(rng, rng.randint(20, 200), keys=["a", "b", "c"], counters=["c"],
                     procs=rng.randint(1, 8), p_unknown=rng.choice([0, 0.05, 0.2]),
                     versions=n % 3 != 0)
        r = check(h)
        assert r.ok, "history %d:\n%s" % (n, r.describe())


def test_random_histories_with_a_corrupted_read_fail():
    rng = random.Random(3)
    done = {"never": 0, "future": 0, "stale": 0, "version": 0}
    for n in range(400):
        how = list(done)[n % 4]
        h = simulate(rng, rng.randint(20, 150), keys=["a", "b", "c"], counters=["c"],
                     procs=rng.randint(2, 8), p_unknown=rng.choice([0, 0.05, 0.2]),
                     versions=how == "version" or n % 3 != 0)
        assert check(h).ok
        if not corrupt_read(rng, h, how):
            continue
        r = check(h)
        assert r.status == "violation", "history %d (%s):\n%s" % (n, how, r.describe())
        done[how] += 1
    print("        corrupted and caught: %s" % done)
    assert min(done.values()) >= 40, done


def test_random_counters_with_a_corrupted_incr_fail():
    rng = random.Random(4)
    for n in range(100):
        h = []
        clock = [0.0] * 6
        for i in range(rng.randint(5, 80)):
            p = i % 6
            t0 = clock[p] + rng.random() * 0.1
            clock[p] = t0 + rng.random()
            h.append(INC(p, t0, clock[p], 1))
        at = sorted(range(len(h)), key=lambda i: rng.uniform(h[i].invoke, h[i].complete))
        for value, i in enumerate(at, 1):
            h[i].result = value
        assert check(h).ok
        victim = rng.choice(h)
        victim.result += rng.choice([-1, 1]) if victim.result > 1 else 1
        r = check(h)
        assert r.status == "violation", "history %d:\n%s" % (n, r.describe())


# --- performance --------------------------------------------------------------

def timed_check(h, what):
    t = time.monotonic()
    r = check(h)
    dt = time.monotonic() - t
    print("        %s: %d ops, %s in %.2fs, %d states" % (what, len(h), r.status, dt, r.states))
    assert r.status != UNKNOWN, r.describe()
    return r


def test_performance_3000_ops():
    rng = random.Random(5)
    h = simulate(rng, 3000, keys=["k1", "k2", "k3", "k4", "c"], counters=["c"], procs=10,
                 p_unknown=0.02)
    assert timed_check(h, "linearizable, versions").ok
    h = simulate(rng, 3000, keys=["k1", "k2", "k3", "k4", "c"], counters=["c"], procs=10,
                 p_unknown=0.02, versions=False)
    assert timed_check(h, "linearizable, no versions").ok
    assert corrupt_read(rng, h, "stale")
    assert timed_check(h, "a stale read, no versions").status == "violation"


# --- the recorder -------------------------------------------------------------

def test_outcome_classification():
    cases = [("read", 200, OK), ("read", 404, OK), ("read", None, FAIL), ("read", 503, FAIL),
             ("read", 504, FAIL), ("write", 201, OK), ("write", 204, OK),
             ("write", None, UNKNOWN), ("write", 504, UNKNOWN), ("write", 500, UNKNOWN),
             ("write", 503, FAIL), ("write", 507, FAIL), ("write", 400, FAIL),
             ("cas", 412, OK), ("cas", 504, UNKNOWN), ("delete", 204, OK),
             ("incr", 422, FAIL), ("incr", 200, OK), ("incr", None, UNKNOWN)]
    for kind, status, want in cases:
        assert lz.outcome_of(kind, status) == want, (kind, status)
    assert lz.etag_version('"42"') == 42 and lz.etag_version('W/"42"') is None
    assert lz.etag_version(None) is None


def test_recorder_complete_http():
    rec = lz.Recorder()
    r1 = rec.complete_http(rec.invoke(0, "k", "read"), 200, {"ETag": '"7"'}, b"v")
    r2 = rec.complete_http(rec.invoke(0, "k", "read"), 404, {},
                           json.dumps({"code": "CELL_NOT_FOUND"}).encode())
    r3 = rec.complete_http(rec.invoke(0, "k", "read"), 404, {},
                           json.dumps({"code": "TABLE_NOT_FOUND"}).encode())
    w = rec.complete_http(rec.invoke(1, "k", "write", value="x"), 201, {"etag": '"9"'})
    c1 = rec.complete_http(rec.invoke(1, "k", "cas", value=b"y", expected=3), 412, {},
                           json.dumps({"code": "PRECONDITION_FAILED", "current_etag": "9"}))
    c2 = rec.complete_http(rec.invoke(1, "k", "cas", value=b"y", expected=3), 412, {},
                           json.dumps({"code": "PRECONDITION_FAILED"}))
    c3 = rec.complete_http(rec.invoke(1, "k", "cas", value=b"y", expected=9), None)
    i = rec.complete_http(rec.invoke(2, "k", "incr", by=2), 200, {"etag": '"11"'},
                          json.dumps({"value": 5, "etag": "11"}).encode())
    d = rec.complete_http(rec.invoke(2, "k", "delete"), 204, {})
    rec.invoke(3, "k", "write", value=b"z")  # still open
    assert (r1.outcome, r1.result, r1.version) == (OK, b"v", 7)
    assert (r2.outcome, r2.result) == (OK, MISSING) and r3.outcome == FAIL
    assert (w.outcome, w.value, w.version) == (OK, b"x", 9)
    assert (c1.result, c1.version) == (PRECONDITION_FAILED, 9)
    assert (c2.result, c2.version) == (PRECONDITION_FAILED, MISSING)
    assert c3.outcome == UNKNOWN and (i.result, i.version) == (5, 11) and d.outcome == OK
    assert all(op.invoke <= op.complete for op in rec.history() if op.complete is not None)
    hist = rec.history()
    assert hist[-1].outcome == UNKNOWN and hist[-1].complete is None
    try:
        rec.ok(w)
        raise AssertionError("completed twice")
    except ValueError:
        pass


class FakeCell:
    """An atomic in-memory cell answering as Cellar does (linearizable)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.value = None
        self.version = 0
        self.counter = 0

    def request(self, kind, value=None, expected=None, by=None):
        with self.lock:
            time.sleep(0)
            if kind == "read":
                if self.value is None:
                    return 404, {}, b'{"code":"CELL_NOT_FOUND"}'
                return 200, {"etag": '"%d"' % self.version}, self.value
            if kind == "cas" and (self.value is None or self.version != expected):
                doc = {"code": "PRECONDITION_FAILED"}
                if self.value is not None:
                    doc["current_etag"] = str(self.version)
                return 412, {}, json.dumps(doc).encode()
            self.counter += 1
            self.version = self.counter
            if kind == "delete":
                self.value = None
                return 204, {}, b""
            if kind == "incr":
                n = int(self.value or b"0") + by
                self.value = b"%d" % n
                return 200, {"etag": '"%d"' % self.version}, json.dumps(
                    {"value": n, "etag": str(self.version)}).encode()
            self.value = value
            return 201, {"etag": '"%d"' % self.version}, b""


def test_recorder_threads_end_to_end():
    rec = lz.Recorder()
    cells = {"a": FakeCell(), "n": FakeCell()}

    def client(p):
        rng = random.Random(p)
        seen = {}
        for i in range(150):
            key = rng.choice(["a", "n"])
            if key == "n":
                kind = rng.choice(["incr", "incr", "read"])
                args = {"by": 1} if kind == "incr" else {}
            else:
                kind = rng.choice(["read", "write", "cas", "delete"])
                args = {"value": b"p%d-%d" % (p, i)} if kind in ("write", "cas") else {}
                if kind == "cas":
                    args["expected"] = seen.get(key, 1)
            op = rec.invoke(p, key, kind, **args)
            status, headers, body = cells[key].request(kind, **args)
            if rng.random() < 0.03 and kind != "read":
                status, body = 504, b""      # it took effect; the answer was lost
            rec.complete_http(op, status, headers, body)
            if op.version is not None and op.version is not MISSING:
                seen[key] = op.version
    threads = [threading.Thread(target=client, args=(p,)) for p in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h = rec.history()
    assert len(h) == 8 * 150 and all(op.outcome != UNKNOWN or op.kind != "read" for op in h)
    r = rec.check()
    assert r.ok, r.describe()
    # the same history with one acknowledged write dropped from the record
    # (as if it were lost): a read of its value now has no writer
    victim = next(op for op in h if op.kind == "write" and op.outcome == OK and any(
        o.kind == "read" and o.result == op.value for o in h))
    victim.outcome = FAIL
    assert check(h).status == "violation"


if __name__ == "__main__":
    run_tests(globals())

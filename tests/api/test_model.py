"""A property-based model test: random sequences of cell and row operations
run against the real node and against a small in-memory model of the
contract, and must agree step by step.

Each Hypothesis example gets fresh rows (a unique hashkey prefix) in one
table, so examples never see each other's cells. TTLs are 0 (none) or one
hour, so nothing expires during a run; the model tracks whether a cell has
a TTL, and the node's remaining seconds are checked to be near an hour.
Example counts are kept small: the whole test runs in well under a minute.
"""
import base64
import itertools
import os
import re

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from helpers import cell, count_all, jbytes, jfield, row

HOUR = 3600
SORTKEYS = [b"", b"a", b"ab", b"b", b"a/b", b"\xff", b"\x00"]
VALUES = [b"", b"0", b"7", b"-5", b"12", b"x", b"xy", b"\x00\xff", b"9223372036854775807"]
OPERANDS = [b"", b"x", b"0", b"7", b"12", b"-5", b"y", b"abc"]
CHECK_TYPES = ["no_check", "value_not_exist", "value_not_exist_or_empty", "value_exist",
               "value_not_empty", "value_match_prefix", "value_match_anywhere", "value_match_postfix",
               "value_bytes_less", "value_bytes_equal", "value_bytes_greater_or_equal",
               "value_int_less", "value_int_equal", "value_int_greater"]
INT = re.compile(rb"-?[0-9]+")
INT64 = (-(2 ** 63), 2 ** 63 - 1)
_ids = itertools.count()

sortkeys = st.sampled_from(SORTKEYS)
values = st.sampled_from(VALUES)
ttls = st.sampled_from([None, 0, HOUR])
bounds = st.sampled_from(SORTKEYS + [b"aa", b"c"])


def as_int(b):
    if not INT.fullmatch(b):
        return None
    n = int(b)
    return n if INT64[0] <= n <= INT64[1] else None


class Cell:
    __slots__ = ("value", "ttl")

    def __init__(self, value, ttl):
        self.value, self.ttl = value, ttl  # ttl: True when the cell has one

    def __repr__(self):
        return "Cell(%r%s)" % (self.value, ", ttl" if self.ttl else "")


def in_range(k, start, stop, si, so):
    if k < start or (k == start and not si):
        return False
    if stop != b"" and (k > stop or (k == stop and not so)):
        return False
    return True


def check_passes(check_type, c, operand):
    """(passes, error status or None)."""
    if check_type.startswith("value_int_"):
        op = as_int(operand)
        if op is None:
            return False, 400
        if c is None:
            return False, None
        v = as_int(c.value)
        if v is None:
            return False, 422
        return {"value_int_less": v < op, "value_int_equal": v == op,
                "value_int_greater": v > op}[check_type], None
    v = c.value if c is not None else None
    return {
        "no_check": True,
        "value_not_exist": c is None,
        "value_not_exist_or_empty": c is None or v == b"",
        "value_exist": c is not None,
        "value_not_empty": c is not None and v != b"",
        "value_match_prefix": c is not None and v.startswith(operand),
        "value_match_anywhere": c is not None and operand in v,
        "value_match_postfix": c is not None and v.endswith(operand),
        "value_bytes_less": c is not None and v < operand,
        "value_bytes_equal": c is not None and v == operand,
        "value_bytes_greater_or_equal": c is not None and v >= operand,
    }[check_type], None


def make_machine(api, table):
    class CellarModel(RuleBasedStateMachine):
        @initialize()
        def fresh_rows(self):
            run = next(_ids)
            self.hashkeys = [b"model-%d-%d-%s" % (id(api), run, x) for x in (b"p", b"q\xff")]
            self.model = {h: {} for h in self.hashkeys}

        hashkey_index = st.integers(0, 1)

        def _h(self, i):
            return self.hashkeys[i]

        def _apply_set(self, rowm, s, v, ttl):
            rowm[s] = Cell(v, bool(ttl))

        # -- cells ------------------------------------------------------
        @rule(i=hashkey_index, s=sortkeys, v=values, ttl=ttls)
        def put(self, i, s, v, ttl):
            h = self._h(i)
            r = api.call("PUT", cell(table, h, s), body=v, query={"ttl": ttl} if ttl is not None else None)
            assert r.status == (204 if s in self.model[h] else 201), r
            self.model[h][s] = Cell(v, bool(ttl))

        @rule(i=hashkey_index, s=sortkeys)
        def delete(self, i, s):
            h = self._h(i)
            assert api.call("DELETE", cell(table, h, s)).status == 204
            self.model[h].pop(s, None)

        @rule(i=hashkey_index, s=sortkeys, by=st.sampled_from([1, -1, 5, 0, 2 ** 62, -(2 ** 62)]),
              ttl=st.sampled_from([None, 0, -1, HOUR]))
        def incr(self, i, s, by, ttl):
            h = self._h(i)
            doc = {"by": by}
            if ttl is not None:
                doc["ttl"] = ttl
            r = api.call("POST", cell(table, h, s) + "/incr", json_body=doc)
            c = self.model[h].get(s)
            base = 0 if c is None or c.value == b"" else as_int(c.value)
            if base is None:
                r.problem(422, "NOT_AN_INTEGER")
                return
            if not INT64[0] <= base + by <= INT64[1]:
                r.problem(422, "INTEGER_OVERFLOW")
                return
            assert r.ok()["value"] == base + by
            keep = c.ttl if c is not None else False
            self.model[h][s] = Cell(b"%d" % (base + by), {None: keep, 0: keep, -1: False, HOUR: True}[ttl])

        # -- rows -------------------------------------------------------
        @rule(i=hashkey_index,
              sets=st.lists(st.tuples(sortkeys, values, ttls), max_size=4),
              deletes=st.lists(sortkeys, max_size=3), ttl=ttls)
        def patch(self, i, sets, deletes, ttl):
            h = self._h(i)
            doc = {"set": [dict(jfield("sortkey", s), **jfield("value", v), **({"ttl": t} if t is not None else {}))
                           for s, v, t in sets],
                   "delete": [jfield("sortkey", s) for s in deletes]}
            if ttl is not None:
                doc["ttl"] = ttl
            r = api.call("PATCH", row(table, h), json_body=doc)
            assert r.ok() == {"applied": True}  # an empty one too: a no-op
            for s in deletes:
                self.model[h].pop(s, None)
            for s, v, t in sets:
                self.model[h][s] = Cell(v, bool(t or ttl))  # an item's ttl 0 is the same as none

        @rule(i=hashkey_index, start=bounds, stop=bounds, si=st.booleans(), so=st.booleans())
        def delete_range(self, i, start, stop, si, so):
            h = self._h(i)
            r = api.call("DELETE", row(table, h), query=[("start", start), ("stop", stop),
                                                        ("start_inclusive", si), ("stop_inclusive", so)])
            gone = [k for k in self.model[h] if in_range(k, start, stop, si, so)]
            assert r.ok() == {"deleted": len(gone)}, (gone, r)
            for k in gone:
                del self.model[h][k]

        @rule(i=hashkey_index, check_s=sortkeys, check_type=st.sampled_from(CHECK_TYPES),
              operand=st.sampled_from(OPERANDS), sets=st.lists(st.tuples(sortkeys, values), max_size=2),
              deletes=st.lists(sortkeys, max_size=2), ret=st.booleans())
        def check_and_mutate(self, i, check_s, check_type, operand, sets, deletes, ret):
            h = self._h(i)
            doc = {"check": dict(jfield("sortkey", check_s), type=check_type, **jfield("operand", operand)),
                   "set": [dict(jfield("sortkey", s), **jfield("value", v)) for s, v in sets],
                   "delete": [jfield("sortkey", s) for s in deletes], "return_check_value": ret}
            r = api.call("POST", row(table, h) + "/check-and-mutate", json_body=doc)
            c = self.model[h].get(check_s)
            passes, err = check_passes(check_type, c, operand)
            if err:
                r.problem(err)
                return
            res = r.ok()
            assert res["applied"] is passes, (c, res)
            # no_check: the server does not read the cell yet; see
            # test_check_and_mutate.py::test_no_check_reports_the_check_cell.
            if check_type != "no_check":
                assert res["check_value_exists"] is (c is not None), (c, res)
            if ret and check_type != "no_check":
                assert jbytes(res, "check_value") == (c.value if c else None), (c, res)
            elif not ret:
                assert "check_value" not in res and "check_value_base64" not in res
            if passes:
                for s in deletes:
                    self.model[h].pop(s, None)
                for s, v in sets:
                    self.model[h][s] = Cell(v, False)

        # -- reads ------------------------------------------------------
        @rule(i=hashkey_index, start=bounds, stop=bounds, si=st.booleans(), so=st.booleans(),
              reverse=st.booleans(), limit=st.sampled_from([1, 2, 3, 100]), vals=st.booleans())
        def multi_get(self, i, start, stop, si, so, reverse, limit, vals):
            h = self._h(i)
            q = [("start", start), ("stop", stop), ("start_inclusive", si), ("stop_inclusive", so),
                 ("reverse", reverse), ("limit", limit), ("values", vals)]
            got, cursor = [], None
            for _ in range(50):
                doc = api.call("GET", row(table, h), query=q + ([("cursor", cursor)] if cursor else [])).ok()
                assert len(doc["cells"]) <= limit
                got += doc["cells"]
                cursor = doc["next_cursor"]
                if cursor is None:
                    break
            assert cursor is None
            want = sorted(k for k in self.model[h] if in_range(k, start, stop, si, so))
            if reverse:
                want.reverse()
            assert [jbytes(c, "sortkey") for c in got] == want, (got, self.model[h])
            for c in got:
                m = self.model[h][jbytes(c, "sortkey")]
                if vals:
                    assert jbytes(c, "value") == m.value
                else:
                    assert "value" not in c and "value_base64" not in c
                self._check_ttl(c["ttl"], m)

        @rule(i=hashkey_index, ss=st.lists(sortkeys, min_size=1, max_size=4))
        def get_sortkeys(self, i, ss):
            h = self._h(i)
            doc = api.call("GET", row(table, h), query=[("sortkey", s) for s in ss]).ok()
            want = sorted({s for s in ss if s in self.model[h]})
            assert [jbytes(c, "sortkey") for c in doc["cells"]] == want
            assert [jbytes(c, "value") for c in doc["cells"]] == [self.model[h][s].value for s in want]

        @rule(i=hashkey_index, s=sortkeys)
        def get_cell(self, i, s):
            h = self._h(i)
            r = api.call("GET", cell(table, h, s), headers={"Accept": "application/json"})
            m = self.model[h].get(s)
            if m is None:
                r.problem(404, "CELL_NOT_FOUND")
                return
            doc = r.ok()
            assert jbytes(doc, "value") == m.value and jbytes(doc, "sortkey") == s
            self._check_ttl(doc["ttl"], m)

        @invariant()
        def counts_agree(self):
            if not hasattr(self, "model"):
                return
            for h in self.hashkeys:
                assert count_all(api, row(table, h) + "/count")[0] == len(self.model[h])

        def _check_ttl(self, ttl, m):
            if m.ttl:
                assert ttl is not None and HOUR - 120 <= ttl <= HOUR + 1, (ttl, m)
            else:
                assert ttl is None, (ttl, m)

        def teardown(self):
            if hasattr(self, "hashkeys"):
                for h in self.hashkeys:
                    api.call("DELETE", row(table, h))

    return CellarModel


def test_model(api, table):
    machine = make_machine(api, table)
    # Deterministic by default, so that CI is repeatable; CELLAR_MODEL_RANDOM=1
    # and CELLAR_MODEL_EXAMPLES=N explore further.
    machine.TestCase.settings = settings(
        max_examples=int(os.environ.get("CELLAR_MODEL_EXAMPLES", "150")), stateful_step_count=40,
        deadline=None, derandomize=not os.environ.get("CELLAR_MODEL_RANDOM"), database=None,
        suppress_health_check=list(HealthCheck), print_blob=True)
    machine.TestCase().runTest()


def test_model_matches_base64_helpers():
    """The request encoding the model uses (guards the test itself)."""
    assert jfield("value", b"\xff") == {"value_base64": base64.b64encode(b"\xff").decode()}
    assert jfield("value", b"ok") == {"value": "ok"}
    assert check_passes("value_int_less", None, b"x") == (False, 400)
    assert check_passes("value_int_less", Cell(b"x", False), b"1") == (False, 422)
    assert check_passes("value_match_prefix", Cell(b"", False), b"") == (True, None)

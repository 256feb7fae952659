"""A linearizability checker for histories that clients recorded against a
Cellar cluster, one cell (key) at a time, and a thread-safe recorder for
tests to build such histories with.

Standard library only. The search is Wing and Gong's, with Lowe's
memoization, as Porcupine and Knossos do it: the calls and returns of a
key's operations in time order, in a doubly linked list; the search walks
it, linearizes one operation that is pending (called before the first
return still in the list) at a time, and backtracks when it meets a return
whose operation it has not linearized. A cache of (operations linearized,
as a bitset; model state) pairs already explored keeps it from exploring
the same configuration twice, which is what makes histories of thousands
of operations with ten concurrent clients tractable.

Histories
---------
A history is a list of Op, in any order. Each Op has:

  process   who issued it (any value; only for reports)
  key       the cell: keys are checked independently of each other
  kind      "read", "write" (PUT), "delete", "cas" (PUT with If-Match),
            "incr"
  value     bytes: what a write or cas stores (a str is taken as UTF-8)
  expected  int: the version a cas names in If-Match
  by        int: what an incr adds
  invoke    when the request was sent (time.monotonic())
  complete  when its answer came back (None while open; ignored for
            "unknown" operations)
  outcome   "ok": it took effect, with the result below;
            "fail": it surely did not take effect (a read's failure of any
            kind, 503, 507, 4xx);
            "unknown": it may or may not have taken effect (504, a timeout)
  result    read: the value (bytes) or MISSING;
            cas: None when it succeeded, PRECONDITION_FAILED when it was
            answered 412 (that is an "ok" operation: it observed a version
            other than the expected one);
            incr: the new integer value;
            write, delete: None
  version   the version the operation left or saw, when the answer told it
            (None when it did not): the ETag of a write, of a successful
            cas, of an incr, of a read; for a 412 cas the current version
            (current_etag), or MISSING when the answer said the cell was
            missing (Cellar omits current_etag then), or None when unknown.

Operations that surely did not take effect ("fail"), and reads whose result
is not known ("fail" or "unknown"), are dropped before the check: they
constrain nothing.

The model (the sequential specification of one cell)
----------------------------------------------------
A state is a tuple (value, version, exact): value is the cell's bytes or
None when it is missing; when exact, the cell's version is `version`;
otherwise it is some integer >= `version`, not observed. Versions are only
known to grow (other cells' writes share the counter), so:

  * every write, cas, incr and delete that takes effect gives the cell a
    new version larger than its previous one (a delete leaves it missing);
    a reported new version is accepted when it is larger than the previous
    one (for an unobserved previous version: larger than its lower bound),
    and it becomes the exact version; an unreported one is only known to be
    at least the previous one plus 1;
  * a read returns the value; a version it returns must be the version of
    the write it read from (when that was not observed, the read pins it);
  * a cas succeeds only if the cell exists with the expected version (its
    new version is then larger than that); a 412 needs the cell missing or
    another version (the current version it reports, when given, must be
    the cell's);
  * an incr parses the value as a decimal int64 (missing or empty: 0),
    adds `by` and stores the sum as a decimal string; a value that is not
    an integer, or an overflow, means it cannot take effect (Cellar answers
    422); its result is the sum.
TTLs are not modelled: histories must not use them.

Unknown outcomes: an "unknown" operation may take effect at any time after
its invocation, or never, and its result is unconstrained: it has a call
entry at its invocation and its return is at infinity, so it stays pending
to the end; the search may linearize it at any point after its call (with
its effect and no result to match), and when every operation with a known
outcome is linearized, the unknown ones left over are the ones that never
happened. The search tries operations with known outcomes first and an
unknown one only when those are stuck. Three reductions keep unknown
operations from multiplying the configurations, each sound (if the history
has a linearization, it has one of the form the search still explores):
  * among identical unknown operations (same kind and arguments) only the
    earliest one not yet linearized is tried;
  * after an unknown operation U taken in state s, an operation O is not
    tried next when O taken in s instead (U never happening) reaches a
    state that covers the one it reaches after U: so a blind write or
    delete never directly follows an unknown operation (it overwrites the
    value, and without U the version's lower bound is lower);
  * a read (or a 412 cas) that leaves the state unchanged where it is tried
    is linearized there and nothing else is tried instead of it.

Cost: a history of 3000 operations over 5 keys with 10 concurrent clients
and a few per cent of unknown outcomes checks in well under a second, a
violation in it too. Each explored configuration takes some 200 bytes plus
a bit per operation of its key: the default bound, 500000 per key, is
about 150 MB for a key of 600 operations (and some 2 s).

API
---
  check(history, max_states=DEFAULT_MAX_STATES, initial=None,
        max_seconds=None) -> Result
      Splits the history by key and checks each key. max_states bounds the
      configurations explored per key (and max_seconds the time per key):
      beyond them a key is "unknown", never "ok". initial maps a key to
      (value or MISSING, version or None), its state before the history
      (default: missing).
  check_key(ops, key=None, ...) -> KeyResult: one key's operations.

  Result: .status "ok" | "violation" | "unknown"; .ok; bool(result) is
      result.ok; .keys (key -> KeyResult); .violations, .unknown (lists of
      KeyResult); .key (the first key that is not linearizable, or None);
      .describe() (str(result) too).
  KeyResult: .key, .status, .ok, .ops (the operations checked),
      .dropped (how many were left out), .states (configurations
      explored), .reason (for "unknown"); for a violation: .prefix, the
      longest linearizable prefix found, as a list of (op, state after);
      .state, the state after it; .blocked, the operation whose completion
      came before it could be linearized; .pending, the operations that
      were pending there (any of them could have come next); .describe().

  step(op, state) -> state or None: the model above (None: not allowed).
  initial_state(value=MISSING, version=None) -> state.
  format_state(state) -> str.

  Recorder: thread-safe; records invoke/complete times with
      time.monotonic():
        op = rec.invoke(process, key, "cas", value=b"v", expected=7)
        status, headers, body = node.request(...)      # the real request
        rec.complete_http(op, status, headers, body)   # or ok/fail/unknown
      rec.ok(op, result=None, version=None), rec.fail(op),
      rec.unknown(op), rec.complete(op, outcome, result, version);
      rec.history() (operations still open count as unknown);
      rec.check(**kw).
  outcome_of(kind, status) -> "ok" | "fail" | "unknown": how an HTTP
      status (None: no answer) classifies. etag_version(etag) -> int/None.
"""
import json
import threading
import time

__all__ = [
    "MISSING", "PRECONDITION_FAILED", "OK", "FAIL", "UNKNOWN", "KINDS",
    "DEFAULT_MAX_STATES", "Op", "Result", "KeyResult", "check", "check_key",
    "step", "initial_state", "format_state", "Recorder", "outcome_of",
    "etag_version",
]


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


MISSING = _Sentinel("MISSING")
PRECONDITION_FAILED = _Sentinel("PRECONDITION_FAILED")

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
KINDS = ("read", "write", "delete", "cas", "incr")
MUTATIONS = ("write", "delete", "cas", "incr")
DEFAULT_MAX_STATES = 500000

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class Op:
    """One operation of a history (see the module docstring)."""
    __slots__ = ("process", "key", "kind", "value", "expected", "by", "invoke", "complete",
                 "outcome", "result", "version")

    def __init__(self, process, key, kind, invoke, complete=None, outcome=OK, value=None,
                 expected=None, by=None, result=None, version=None):
        self.process = process
        self.key = key
        self.kind = kind
        self.value = value
        self.expected = expected
        self.by = by
        self.invoke = invoke
        self.complete = complete
        self.outcome = outcome
        self.result = result
        self.version = version

    def copy(self):
        return Op(self.process, self.key, self.kind, self.invoke, self.complete, self.outcome,
                  self.value, self.expected, self.by, self.result, self.version)

    def call_text(self):
        """The call: kind and arguments."""
        if self.kind in ("write",):
            return "write %r" % (self.value,)
        if self.kind == "cas":
            return "cas if v%s %r" % (self.expected, self.value)
        if self.kind == "incr":
            return "incr %s" % (self.by,)
        return self.kind

    def result_text(self):
        """The answer: outcome and result."""
        if self.outcome != OK:
            return self.outcome
        v = "" if self.version is None else " v%s" % self.version
        if self.kind == "read":
            return ("missing" if self.result is MISSING else repr(self.result)) + v
        if self.kind == "cas" and self.result is PRECONDITION_FAILED:
            if self.version is MISSING:
                return "412 (missing)"
            return "412" + ("" if self.version is None else " (current v%s)" % self.version)
        if self.kind == "incr":
            return "%s%s" % (self.result, v)
        return "ok" + v

    def __repr__(self):
        end = "?" if self.outcome == UNKNOWN or self.complete is None else "%.6f" % self.complete
        return "<%s %s: %s -> %s [%.6f, %s]>" % (self.process, self.key, self.call_text(),
                                                 self.result_text(), self.invoke, end)


# --- the model -----------------------------------------------------------

def initial_state(value=MISSING, version=None):
    """The state of a cell before a history: missing by default."""
    if value is MISSING or value is None:
        return (None, version or 0, version is not None)
    return (_bytes(value), version or 0, version is not None)


def format_state(state):
    value, version, exact = state
    text = "missing" if value is None else repr(value)
    if exact:
        return "%s v%d" % (text, version)
    if version > 0:
        return "%s v>=%d" % (text, version)
    return text


def _parse_i64(b):
    """Cellar's cellar_parse_i64, and the empty value as 0."""
    if not b:
        return 0
    digits = b[1:] if b[:1] == b"-" else b
    if not digits or not digits.isdigit():
        return None
    n = int(b)
    return n if INT64_MIN <= n <= INT64_MAX else None


def _compile(op):
    """The model's transition for op, as a function state -> state or None
    (None: op cannot take effect, or cannot have its result, there)."""
    kind = op.kind
    unknown = op.outcome == UNKNOWN

    if kind == "read":
        want = None if op.result is MISSING else op.result
        rv = op.version
        if rv is None:
            def read(s):
                return s if s[0] == want else None
            return read

        def read_version(s):
            if s[0] != want:
                return None
            if s[2]:
                return s if s[1] == rv else None
            return (want, rv, True) if rv >= s[1] else None
        return read_version

    if kind in ("write", "delete"):
        new_value = op.value if kind == "write" else None
        nv = None if unknown else op.version
        if nv is None:
            def mutate(s):
                return (new_value, s[1] + 1, False)
            return mutate

        def mutate_version(s):
            return (new_value, nv, True) if nv > s[1] else None
        return mutate_version

    if kind == "cas":
        e = op.expected
        w = op.value
        if unknown or op.result is not PRECONDITION_FAILED:
            nv = None if unknown else op.version

            def cas(s):
                if s[0] is None:
                    return None
                if (s[1] != e) if s[2] else (e < s[1]):
                    return None
                if nv is None:
                    return (w, e + 1, False)
                return (w, nv, True) if nv > e else None
            return cas
        cv = op.version
        if cv is MISSING:
            def cas_missing(s):
                return s if s[0] is None else None
            return cas_missing
        if cv is None:
            def cas_other(s):
                if s[0] is not None and s[2] and s[1] == e:
                    return None
                return s
            return cas_other
        if cv == e:
            return lambda s: None  # a 412 that saw the expected version

        def cas_current(s):
            if s[0] is None:
                return None
            if s[2]:
                return s if s[1] == cv else None
            return (s[0], cv, True) if cv >= s[1] else None
        return cas_current

    if kind == "incr":
        by = op.by
        want = None if unknown else op.result
        nv = None if unknown else op.version

        def incr(s):
            cur = 0 if s[0] is None else _parse_i64(s[0])
            if cur is None:
                return None
            total = cur + by
            if total < INT64_MIN or total > INT64_MAX:
                return None
            if want is not None and total != want:
                return None
            if nv is None:
                return (str(total).encode(), s[1] + 1, False)
            return (str(total).encode(), nv, True) if nv > s[1] else None
        return incr

    raise ValueError("unknown kind %r" % (kind,))


def step(op, state):
    """The model: the state after op takes effect with its recorded result
    in state, or None when it cannot."""
    return _compile(op)(state)


# --- validation ------------------------------------------------------------

def _bytes(v):
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    raise ValueError("a value must be bytes, not %r" % (v,))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _normalize(op):
    """A validated copy of op (str values as bytes); ValueError names what
    is wrong."""
    def bad(why):
        raise ValueError("%s: %r" % (why, op))
    if op.kind not in KINDS:
        bad("kind must be one of %s" % ", ".join(KINDS))
    if op.outcome not in (OK, FAIL, UNKNOWN):
        bad("outcome must be ok, fail or unknown")
    if not isinstance(op.invoke, (int, float)):
        bad("invoke must be a time")
    op = op.copy()
    if op.outcome != UNKNOWN:
        if not isinstance(op.complete, (int, float)):
            bad("an ok or failed operation needs its completion time")
        if op.complete < op.invoke:
            bad("completed before it was invoked")
    if op.kind in ("write", "cas"):
        if op.value is None:
            bad("a %s needs a value" % op.kind)
        op.value = _bytes(op.value)
    if op.kind == "cas" and not _is_int(op.expected):
        bad("a cas needs the expected version (an int)")
    if op.kind == "incr" and not _is_int(op.by):
        bad("an incr needs by (an int)")
    if op.outcome != OK:
        return op
    if op.kind == "read":
        if op.result is None:
            bad("an ok read needs its result (bytes or MISSING)")
        if op.result is not MISSING:
            op.result = _bytes(op.result)
        elif op.version is not None:
            bad("a read of a missing cell has no version")
    elif op.kind == "cas":
        if op.result not in (None, PRECONDITION_FAILED):
            bad("a cas result is None (it succeeded) or PRECONDITION_FAILED")
    elif op.kind == "incr":
        if not _is_int(op.result):
            bad("an ok incr needs its result (an int)")
    elif op.result is not None:
        bad("a %s has no result" % op.kind)
    if op.version is not None and not _is_int(op.version):
        if not (op.version is MISSING and op.kind == "cas" and op.result is PRECONDITION_FAILED):
            bad("a version is an int (or MISSING for a 412 on a missing cell)")
    return op


def _relevant(op):
    """Whether op constrains anything: ok operations, and mutations that
    may have taken effect."""
    if op.outcome == OK:
        return True
    return op.outcome == UNKNOWN and op.kind in MUTATIONS


# --- results ---------------------------------------------------------------

class KeyResult:
    """The verdict on one key (see the module docstring)."""

    def __init__(self, key, status, ops, dropped=0, states=0, reason=None, prefix=None,
                 state=None, blocked=None, pending=None, elapsed=0.0):
        self.key = key
        self.status = status
        self.ops = ops
        self.dropped = dropped
        self.states = states
        self.reason = reason
        self.prefix = prefix or []
        self.state = state
        self.blocked = blocked
        self.pending = pending or []
        self.elapsed = elapsed

    @property
    def ok(self):
        return self.status == OK

    def __bool__(self):
        return self.ok

    def describe(self, last=10):
        """A report for people: the verdict and, for a violation, where the
        search got furthest and which operation could not be placed."""
        head = "key %r: %s (%d operations checked, %d dropped, %d states explored)" % (
            self.key, {"ok": "linearizable", "violation": "NOT linearizable",
                       "unknown": "UNKNOWN"}[self.status],
            len(self.ops), self.dropped, self.states)
        if self.status == UNKNOWN:
            return head + ": " + (self.reason or "")
        if self.status != "violation":
            return head
        t0 = min((op.invoke for op in self.ops), default=0.0)

        def line(op):
            end = "inf" if op.outcome == UNKNOWN else "%.6f" % (op.complete - t0)
            return "[%.6f, %s] %s: %s -> %s" % (op.invoke - t0, end, op.process,
                                                 op.call_text(), op.result_text())
        finite = sum(1 for op, _ in self.prefix if op.outcome != UNKNOWN)
        total = sum(1 for op in self.ops if op.outcome != UNKNOWN)
        out = [head, "  longest linearizable prefix: %d of the %d operations with a known "
               "outcome%s (times from the key's first invocation)" % (
                   finite, total, "; its last ones" if len(self.prefix) > last else "")]
        if not self.prefix:
            out.append("    (none)")
        for op, st in self.prefix[-last:]:
            out.append("    %s   => %s" % (line(op), format_state(st)))
        out.append("  then, in state %s, this operation completed without any "
                   "linearization placing it:" % format_state(self.state))
        out.append("    " + line(self.blocked))
        if self.pending:
            out.append("  pending there (each could have come next):")
            for op in self.pending:
                out.append("    " + line(op))
        return "\n".join(out)

    def __repr__(self):
        return "<KeyResult %r %s>" % (self.key, self.status)


class Result:
    """The verdict on a whole history: per key, and overall."""

    def __init__(self, keys):
        self.keys = keys
        self.violations = [r for r in keys.values() if r.status == "violation"]
        self.unknown = [r for r in keys.values() if r.status == UNKNOWN]
        self.status = "violation" if self.violations else UNKNOWN if self.unknown else OK
        self.key = self.violations[0].key if self.violations else None

    @property
    def ok(self):
        return self.status == OK

    def __bool__(self):
        return self.ok

    @property
    def states(self):
        return sum(r.states for r in self.keys.values())

    def describe(self):
        if self.ok:
            return "linearizable: %d keys, %d operations checked, %d states explored" % (
                len(self.keys), sum(len(r.ops) for r in self.keys.values()), self.states)
        parts = [r.describe() for r in self.violations + self.unknown]
        return "\n".join(["history %s" % ("NOT linearizable" if self.violations else
                                          "UNKNOWN (a bound was reached)")] + parts)

    __str__ = describe

    def __repr__(self):
        return "<Result %s>" % self.status


# --- the search ------------------------------------------------------------

def check(history, max_states=DEFAULT_MAX_STATES, initial=None, max_seconds=None):
    """Checks a history key by key; see the module docstring."""
    by_key = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    initial = initial or {}
    results = {}
    for key, ops in by_key.items():
        init = initial.get(key)
        results[key] = check_key(ops, key, max_states=max_states,
                                 initial=init, max_seconds=max_seconds)
    return Result(results)


def check_key(ops, key=None, max_states=DEFAULT_MAX_STATES, initial=None, max_seconds=None):
    """Checks the operations of one key (their own key fields are not
    looked at). initial: (value or MISSING, version or None)."""
    started = time.monotonic()
    ops = [_normalize(op) for op in ops]
    kept = [op for op in ops if _relevant(op)]
    fin = [op for op in kept if op.outcome == OK]
    unk = [op for op in kept if op.outcome == UNKNOWN]
    unk.sort(key=lambda op: op.invoke)
    init = initial_state(*initial) if initial else initial_state()
    deadline = started + max_seconds if max_seconds else None
    verdict, states, info = _search(fin, unk, init, max_states, deadline)
    elapsed = time.monotonic() - started
    common = dict(dropped=len(ops) - len(kept), states=states, elapsed=elapsed)
    if verdict == OK:
        return KeyResult(key, OK, kept, **common)
    if verdict == UNKNOWN:
        return KeyResult(key, UNKNOWN, kept, reason=info, **common)
    path, state, blocked, pending = info
    prefix = []
    s = init
    for op in path:
        s = step(op, s)
        prefix.append((op, s))
    return KeyResult(key, "violation", kept, prefix=prefix, state=state, blocked=blocked,
                     pending=pending, **common)


def _search(fin, unk, init, max_states, deadline):
    """Wing and Gong's search with Lowe's cache over one key. fin: the
    operations with known outcomes; unk: the unknown ones (by invocation).
    Returns (verdict, states explored, info): info is a reason for
    "unknown", and (path, state, blocked op, pending ops) for a violation."""
    f, u = len(fin), len(unk)
    if f == 0:
        return OK, 0, None

    # The finite operations' calls and returns in time order (calls first
    # on a tie: operations that touch in time are concurrent), linked.
    events = []
    for i, op in enumerate(fin):
        events.append((op.invoke, 0, i))
        events.append((op.complete, 1, i))
    events.sort()
    n = 2 * f
    HEAD, TAIL = n, n + 1
    is_call = [False] * (n + 2)    # HEAD and TAIL are not calls
    e_op = [0] * n
    e_time = [0.0] * n
    ret_of = [0] * f
    for e, (t, typ, i) in enumerate(events):
        e_op[e] = i
        e_time[e] = t
        if typ == 0:
            is_call[e] = True
        else:
            ret_of[i] = e
    nxt, prv = _linked(n)

    # The unknown operations' calls, linked the same way.
    UHEAD, UTAIL = u, u + 1
    unxt, uprv = _linked(u)
    uinv = [op.invoke for op in unk]
    # Identical unknown operations are interchangeable: only the earliest
    # one not yet linearized is tried.
    prev_same = [-1] * u
    last = {}
    for j, op in enumerate(unk):
        sig = (op.kind, op.value, op.expected, op.by)
        prev_same[j] = last.get(sig, -1)
        last[sig] = j

    fstep = [_compile(op) for op in fin]
    ustep = [_compile(op) for op in unk]
    # An unknown operation U right before an operation O is dominated by U
    # never happening when O, taken from the state before U, reaches a
    # state that covers the one it reaches after U: so after U, such an O
    # is not tried (O is tried without U). Blind operations (a write, a
    # delete) always are such an O: they overwrite the value, and without
    # U the version's lower bound is lower.
    fblind = [op.kind in ("write", "delete") for op in fin]
    ublind = [op.kind in ("write", "delete") for op in unk]
    fbit = [1 << i for i in range(f)]
    ubit = [1 << (f + j) for j in range(u)]

    cache = set()
    stack = []   # (entry (finite >= 0, unknown ~j), state before, bound, greedy)
    state = init
    after_unknown = False   # whether the last operation linearized is unknown
    pre = None              # if so, the state before it
    lin = 0
    rem = f

    def snapshot():
        path = [fin[e_op[ent]] if ent >= 0 else unk[~ent] for ent, _, _, _ in stack]
        pending = []
        e = nxt[HEAD]
        while is_call[e]:
            pending.append(fin[e_op[e]])
            e = nxt[e]
        blocked = fin[e_op[e]]
        j = unxt[UHEAD]
        while j != UTAIL and uinv[j] <= e_time[e]:
            pending.append(unk[j])
            j = unxt[j]
        return path, state, blocked, pending

    best = 0
    best_info = snapshot()
    pos = nxt[HEAD]
    in_unknown = False
    upos = UTAIL
    bound = 0.0
    while True:
        backtrack = False
        if not in_unknown:
            e = pos
            if is_call[e]:
                i = e_op[e]
                if not after_unknown:
                    ns = fstep[i](state)
                elif fblind[i]:
                    ns = None
                else:
                    ns = fstep[i](state)
                    if ns is not None:
                        alt = fstep[i](pre)
                        if alt is not None and _covers(alt, ns):
                            ns = None
                if ns is not None:
                    nl = lin | fbit[i]
                    k = (nl, ns)
                    if k not in cache:
                        if len(cache) >= max_states:
                            return UNKNOWN, len(cache), (
                                "explored more than max_states=%d states" % max_states)
                        cache.add(k)
                        if deadline and not len(cache) & 1023 and time.monotonic() > deadline:
                            return UNKNOWN, len(cache), "ran out of time (max_seconds)"
                        stack.append((e, state, bound, ns == state))
                        after_unknown = False
                        # lift the call and its return
                        r = ret_of[i]
                        a, b = prv[e], nxt[e]
                        nxt[a] = b
                        prv[b] = a
                        a, b = prv[r], nxt[r]
                        nxt[a] = b
                        prv[b] = a
                        state = ns
                        lin = nl
                        rem -= 1
                        if rem == 0:
                            return OK, len(cache), None
                        if f - rem > best:
                            best = f - rem
                            best_info = snapshot()
                        pos = nxt[HEAD]
                        continue
                    if ns == state:
                        # A read-like operation already explored from here
                        # failed: so does this configuration.
                        backtrack = True
                if not backtrack:
                    pos = nxt[e]
                    continue
            else:
                # e is the first return: the finite candidates are done;
                # the unknown operations called before it are next.
                bound = e_time[e]
                upos = unxt[UHEAD]
                in_unknown = True
        if not backtrack:
            j = upos
            found = False
            while j != UTAIL and uinv[j] <= bound:
                p = prev_same[j]
                if (p < 0 or (lin >> (f + p)) & 1) and not (after_unknown and ublind[j]):
                    ns = ustep[j](state)
                    if ns is not None and after_unknown:
                        alt = ustep[j](pre)
                        if alt is not None and _covers(alt, ns):
                            ns = None
                    if ns is not None:
                        nl = lin | ubit[j]
                        k = (nl, ns, state)
                        if k not in cache:
                            if len(cache) >= max_states:
                                return UNKNOWN, len(cache), (
                                    "explored more than max_states=%d states" % max_states)
                            cache.add(k)
                            if deadline and not len(cache) & 1023 and \
                                    time.monotonic() > deadline:
                                return UNKNOWN, len(cache), "ran out of time (max_seconds)"
                            stack.append((~j, state, bound, False))
                            after_unknown = True
                            pre = state
                            a, b = uprv[j], unxt[j]
                            unxt[a] = b
                            uprv[b] = a
                            state = ns
                            lin = nl
                            found = True
                            break
                j = unxt[j]
            if found:
                in_unknown = False
                pos = nxt[HEAD]
                continue
        # Backtrack: undo the last linearization and try what comes after
        # it; a greedy one (that left the state unchanged) takes its
        # configuration down with it.
        while True:
            if not stack:
                return "violation", len(cache), best_info
            ent, state, b, greedy = stack.pop()
            after_unknown = bool(stack) and stack[-1][0] < 0
            if after_unknown:
                pre = stack[-1][1]
            if ent >= 0:
                i = e_op[ent]
                lin ^= fbit[i]
                r = ret_of[i]
                nxt[prv[r]] = r
                prv[nxt[r]] = r
                nxt[prv[ent]] = ent
                prv[nxt[ent]] = ent
                rem += 1
                if greedy:
                    continue
                in_unknown = False
                pos = nxt[ent]
            else:
                j = ~ent
                lin ^= ubit[j]
                unxt[uprv[j]] = j
                uprv[unxt[j]] = j
                in_unknown = True
                upos = unxt[j]
                bound = b
            break


def _linked(n):
    """next and previous arrays of a doubly linked list of 0..n-1 between
    a head (n) and a tail (n + 1)."""
    order = [n] + list(range(n)) + [n + 1]
    nxt = [n + 1] * (n + 2)
    prv = [n] * (n + 2)
    for a, b in zip(order, order[1:]):
        nxt[a] = b
        prv[b] = a
    return nxt, prv


def _covers(big, small):
    """Whether state big stands for every cell state small does: the same
    value, and every version small allows."""
    if big[0] != small[0]:
        return False
    if big[2]:
        return small[2] and small[1] == big[1]
    return small[1] >= big[1]


# --- recording -------------------------------------------------------------

def outcome_of(kind, status):
    """How an HTTP status (None: no answer at all, e.g. a timeout or a
    refused or reset connection) classifies for an operation of kind:
    "ok" (2xx; 404 for a read: missing; 412 for a cas: an ok
    PRECONDITION_FAILED), "unknown" (a mutation without an answer, 504, or
    another 5xx that does not say nothing was applied), or "fail" (surely
    not applied: 503, 507, 4xx; for a read anything else)."""
    if status is not None and 200 <= status < 300:
        return OK
    if kind == "read":
        return OK if status == 404 else FAIL
    if kind == "cas" and status == 412:
        return OK
    if status is None or status == 504:
        return UNKNOWN
    if status in (503, 507) or 400 <= status < 500:
        return FAIL
    return UNKNOWN


def etag_version(etag):
    """The version of a strong Cellar ETag ('"42"'), else None."""
    if not etag:
        return None
    etag = etag.strip()
    if len(etag) >= 3 and etag[0] == '"' and etag[-1] == '"' and etag[1:-1].isdigit():
        return int(etag[1:-1])
    return None


class Recorder:
    """Records a history from many threads: invoke() before sending a
    request, then one of ok/fail/unknown/complete/complete_http after its
    answer. Times come from clock (time.monotonic)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._ops = []
        self._open = set()

    def invoke(self, process, key, kind, value=None, expected=None, by=None):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(KINDS))
        if value is not None:
            value = _bytes(value)
        with self._lock:
            op = Op(process, key, kind, self._clock(), None, UNKNOWN, value=value,
                    expected=expected, by=by)
            self._ops.append(op)
            self._open.add(id(op))
        return op

    def complete(self, op, outcome, result=None, version=None):
        if outcome not in (OK, FAIL, UNKNOWN):
            raise ValueError("outcome must be ok, fail or unknown")
        with self._lock:
            if id(op) not in self._open:
                raise ValueError("not an open operation of this recorder: %r" % (op,))
            op.complete = self._clock()
            op.outcome = outcome
            op.result = result
            op.version = version
            self._open.discard(id(op))
        return op

    def ok(self, op, result=None, version=None):
        return self.complete(op, OK, result, version)

    def fail(self, op):
        return self.complete(op, FAIL)

    def unknown(self, op):
        return self.complete(op, UNKNOWN)

    def complete_http(self, op, status, headers=None, body=b""):
        """Completes op from Cellar's answer (status None: none came):
        a read is a raw GET (value in the body, ETag header; 404
        CELL_NOT_FOUND: missing), a write a PUT, a cas a PUT with If-Match
        (412: PRECONDITION_FAILED with current_etag, or MISSING without
        it), a delete a DELETE, an incr the POST .../incr JSON answer."""
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        outcome = outcome_of(op.kind, status)
        if outcome != OK:
            return self.complete(op, outcome)
        version = etag_version(headers.get("etag"))
        if op.kind == "read":
            if status == 404:
                doc = _json(body)
                if not isinstance(doc, dict) or doc.get("code") != "CELL_NOT_FOUND":
                    return self.fail(op)   # no such table or route: not an answer
                return self.ok(op, MISSING)
            return self.ok(op, bytes(body or b""), version)
        if op.kind == "cas" and status == 412:
            doc = _json(body)
            if not isinstance(doc, dict):
                return self.ok(op, PRECONDITION_FAILED, None)
            cur = doc.get("current_etag")
            if cur is None:
                return self.ok(op, PRECONDITION_FAILED, MISSING)
            return self.ok(op, PRECONDITION_FAILED, int(cur) if str(cur).isdigit() else None)
        if op.kind == "incr":
            doc = _json(body)
            if not isinstance(doc, dict) or not _is_int(doc.get("value")):
                return self.unknown(op)   # applied, but the answer is unreadable
            if version is None and str(doc.get("etag", "")).isdigit():
                version = int(doc["etag"])
            return self.ok(op, doc["value"], version)
        if op.kind == "delete":
            return self.ok(op)
        return self.ok(op, None, version)

    def history(self):
        """A copy of the operations so far; those still open are unknown."""
        with self._lock:
            ops = [op.copy() for op in self._ops]
        return ops

    def check(self, **kw):
        return check(self.history(), **kw)


def _json(body):
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None

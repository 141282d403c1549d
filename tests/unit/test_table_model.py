"""A hypothesis state machine: random puts, deletes, row mutations,
increments, flushes, compactions and splits on a tablet server's logic
(over the in-memory file system), every read checked against a dict."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stackyard.table.memfs import MemFS
from stackyard.table.model import Family, Kind, Schema, TabletInfo, now_ms
from stackyard.table.serving import Serving

ROWS = st.sampled_from([b"a", b"b", b"c", b"k", b"m", b"q", b"x", b"z"])
COLS = st.sampled_from([("cf", b"1"), ("cf", b"2"), ("cg", b"1")])
VALUES = st.binary(min_size=0, max_size=6)
P = int(Kind.PUT)


class TabletModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.fs = MemFS()
        self.s = Serving(self.fs, "srv", flush_bytes=600, split_bytes=1 << 40,
                         cache_bytes=1 << 16, roll_bytes=4096)
        self.schema = Schema("t", {"cf": Family("cf"), "cg": Family("cg", compression="zstd")})
        self.s.on_split = lambda parent, kids, schema: [self.s.open(k, schema) for k in kids]
        self.s.open(TabletInfo("t", "root"), self.schema)
        self.model: dict[bytes, dict[tuple, bytes]] = {}
        self.ts = 0

    def teardown(self):
        self.s.stop()

    def _tick(self) -> int:
        # client timestamps that never fall behind the server's clock, which
        # stamps increments
        self.ts = max(self.ts + 1, now_ms())
        return self.ts

    def tablet(self, row: bytes) -> str:
        for tid, h in self.s.tablets.items():
            if h.core.info.contains(row):
                return tid
        raise AssertionError(f"no tablet holds {row!r}")

    @rule(row=ROWS, col=COLS, value=VALUES)
    def put(self, row, col, value):
        self.s.mutate(self.tablet(row), row, [[col[0], col[1], self._tick(), P, value]])
        self.model.setdefault(row, {})[col] = value

    @rule(row=ROWS, col=COLS)
    def delete_column(self, row, col):
        self.s.mutate(self.tablet(row), row,
                      [[col[0], col[1], self._tick(), int(Kind.DELETE_COLUMN), b""]])
        self.model.get(row, {}).pop(col, None)

    @rule(row=ROWS, fam=st.sampled_from(["cf", "cg"]))
    def delete_family(self, row, fam):
        self.s.mutate(self.tablet(row), row, [[fam, b"", self._tick(), int(Kind.DELETE_FAMILY),
                                              b""]])
        for col in [c for c in self.model.get(row, {}) if c[0] == fam]:
            del self.model[row][col]

    @rule(row=ROWS, puts=st.lists(st.tuples(COLS, VALUES), max_size=3), wipe=st.booleans())
    def row_mutation(self, row, puts, wipe):
        ts = self._tick()
        edits = [[f, b"", ts - 1, int(Kind.DELETE_FAMILY), b""] for f in ("cf", "cg")] if wipe \
            else []
        edits += [[c[0], c[1], ts, P, v] for c, v in puts]
        self.s.mutate(self.tablet(row), row, edits)
        if wipe:
            self.model[row] = {}
        for c, v in puts:
            self.model.setdefault(row, {})[c] = v

    @rule(row=ROWS, n=st.integers(-5, 5))
    def increment(self, row, n):
        col = ("cg", b"n")
        have = self.model.get(row, {}).get(col)
        if have is not None and len(have) != 8:
            return
        got = self.s.increment(self.tablet(row), row, [["cg", b"n", n]])[0]
        want = (int.from_bytes(have, "big", signed=True) if have else 0) + n
        assert got == want
        self._tick()
        self.model.setdefault(row, {})[col] = want.to_bytes(8, "big", signed=True)

    @rule()
    def flush(self):
        for tid in list(self.s.tablets):
            self.s.flush(tid)

    @rule(major=st.booleans())
    def compact(self, major):
        self.s.background.submit(lambda: None).result()
        for tid in list(self.s.tablets):
            self.s.compact(tid, major=major)

    @precondition(lambda self: len(self.s.tablets) < 4)
    @rule(at=ROWS)
    def split(self, at):
        tid = self.tablet(at)
        if self.s.tablets[tid].core.info.start == at:
            return
        self.s.split(tid, at)

    def _wait(self):
        # flushes a full memtable asked for run in the background: let them land
        self.s.background.submit(lambda: None).result()

    @invariant()
    def reads_match_the_model(self):
        self._wait()
        for row in (b"a", b"b", b"c", b"k", b"m", b"q", b"x", b"z"):
            got = {(f, q): v for f, q, _ts, v in self.s.get(self.tablet(row), row)}
            assert got == self.model.get(row, {}), row
        scanned = {}
        for tid in self.s.tablets:
            rows, more, _ = self.s.scan(tid, limit=1000)
            assert not more
            for row, cells in rows:
                scanned[row] = {(f, q): v for f, q, _ts, v in cells}
        assert scanned == {r: c for r, c in self.model.items() if c}


TabletModel.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
test_tablet_matches_a_dict = TabletModel.TestCase

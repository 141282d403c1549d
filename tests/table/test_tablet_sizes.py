"""Tablets follow their size, against real daemons: a tablet that grows past
`split_bytes` splits by itself, adjacent small tablets merge by themselves
(once old enough), and an admin merge under a stream of writes loses and
duplicates nothing."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.table.conftest import TABLES
from tests.table.test_table_faults import Writers

SIZES = {**TABLES, "thrift": False, "tablet_flush_bytes": 128 * 1024,
         "tablet_split_bytes": 512 * 1024, "tablet_merge_min_age": 2.0}


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **SIZES)
    yield c
    c.close()


def test_a_growing_tablet_splits_by_itself_and_loses_nothing(sized):
    tc = sized.client.tables
    tc.create_table("grow", ["f"])
    t = sized.client.table("grow")
    value = b"x" * 1000
    t.put_rows((f"g{i:05d}", {b"f:v": value}) for i in range(2000))     # ~2 MB
    wait_until(lambda: len(tc.tablets("grow")) >= 2, 60, "an automatic split")
    tablets = sorted(tc.tablets("grow"), key=lambda x: x["tablet"]["start"])
    assert tablets[0]["tablet"]["start"] == b"" and tablets[-1]["tablet"]["end"] == b""
    for a, b in zip(tablets, tablets[1:], strict=False):
        assert a["tablet"]["end"] == b["tablet"]["start"]
    rows = [r for r, _ in t.scan()]
    assert rows == [f"g{i:05d}".encode() for i in range(2000)]


def test_small_neighbours_merge_by_themselves(sized):
    tc = sized.client.tables
    tc.create_table("pre", ["f"], splits=[b"g", b"p"])
    t = sized.client.table("pre")
    for key in (b"a", b"h", b"q", b"z"):
        t.put(key, {b"f:v": key})
    wait_until(lambda: len(tc.tablets("pre")) == 1, 60, "small tablets to merge")
    (only,) = tc.tablets("pre")
    assert (only["tablet"]["start"], only["tablet"]["end"]) == (b"", b"")
    assert [r for r, _ in t.scan()] == [b"a", b"h", b"q", b"z"]
    assert t.row(b"h") == {b"f:v": b"h"}
    assert tc.admin("status")["merges"] >= 2


def test_an_admin_merge_under_writes_loses_and_duplicates_nothing(sized):
    tc = sized.client.tables
    # two tablets of 200 KB each, small enough not to split again once merged;
    # the table's own small tablets do not merge by themselves
    tc.create_table("mg", ["f"], splits=[b"w1", b"w2"], merge=False)
    t = sized.client.table("mg")
    t.put_rows((f"w1-pad{i:04d}", {b"f:pad": b"p" * 1000}) for i in range(200))
    t.put_rows((f"w0-pad{i:04d}", {b"f:pad": b"p" * 1000}) for i in range(200))
    tc.admin("flush", table="mg")
    with Writers(t) as w:
        wait_until(lambda: w.count() > 100, 30, "writes")
        left, right = sorted(tc.tablets("mg"), key=lambda x: x["tablet"]["start"])[:2]
        tc.merge_tablets(left["tablet"]["tablet_id"], right["tablet"]["tablet_id"])
        mark = w.count()
        wait_until(lambda: w.count() > mark + 100, 30, "writes after the merge")
    tablets = sorted(tc.tablets("mg"), key=lambda x: x["tablet"]["start"])
    assert [(x["tablet"]["start"], x["tablet"]["end"]) for x in tablets] == [
        (b"", b"w2"), (b"w2", b"")]
    acked = [(r, v) for r, v in w.acked]
    rows = [r for r, _ in t.scan(prefix=b"w")]
    assert len(rows) == len(set(rows)) and rows == sorted(rows)
    check_all_but_pad(t, acked)
    tc.admin("compact", table="mg", major=True)
    check_all_but_pad(t, acked)
    assert sum(1 for r in rows if b"-pad" in r) == 400


def check_all_but_pad(t, acked) -> None:
    got = {row: cells for row, cells in t.scan(prefix=b"w") if b"-pad" not in row}
    for row, value in acked:
        assert got.get(row) == {b"f:a": value, b"f:b": value}, row
    for row, cells in got.items():
        assert cells[b"f:a"] == cells[b"f:b"], f"{row!r} is half done: {cells}"


def test_merging_tablets_that_are_not_neighbours_is_refused(sized):
    tc = sized.client.tables
    tc.create_table("far", ["f"], splits=[b"b", b"c"], merge=False)
    time.sleep(4)       # twice the minimum age: a table that asks for no merges keeps its tablets
    assert len(tc.tablets("far")) == 3
    a, _b, c = sorted(tc.tablets("far"), key=lambda x: x["tablet"]["start"])
    with pytest.raises(Exception, match="not adjacent"):
        tc.merge_tablets(a["tablet"]["tablet_id"], c["tablet"]["tablet_id"])
    with pytest.raises(Exception, match="no tablet"):
        tc.merge_tablets(a["tablet"]["tablet_id"], "nope")

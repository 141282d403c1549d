"""The table store's pure parts: merge rules, SSTable format, WAL records,
the filter language, the compaction policy, and a tablet server's logic
stepped in one process over the in-memory file system."""

from __future__ import annotations

import io

import pytest

from stackyard.table import compaction, filters, merge, sstable, wal
from stackyard.table.memfs import MemFS
from stackyard.table.model import Family, Kind, Schema, TabletInfo, sort_key
from stackyard.table.serving import Serving

P, D, DC, DF = int(Kind.PUT), int(Kind.DELETE), int(Kind.DELETE_COLUMN), int(Kind.DELETE_FAMILY)


def spec(**kw):
    base = dict(versions=3, family_versions=3)
    return merge.ReadSpec(**{**base, **kw})


def test_markers_hide_what_they_cover_and_nothing_newer():
    cells = sorted([(b"r", b"a", 5, P, b"a5"), (b"r", b"a", 3, P, b"a3"), (b"r", b"a", 4, DC, b""),
                    (b"r", b"b", 2, P, b"b2"), (b"r", b"b", 1, P, b"b1"), (b"r", b"b", 1, D, b""),
                    (b"r", b"c", 9, P, b"c9"), (b"r", b"", 8, DF, b""), (b"r", b"c", 7, P, b"c7")],
                   key=sort_key)
    got = [(c[1], c[4]) for c in merge.visible(cells, spec())]
    assert got == [(b"c", b"c9")]
    cells2 = [c for c in cells if c[3] != DF]
    got = [(c[1], c[4]) for c in merge.visible(cells2, spec())]
    assert got == [(b"a", b"a5"), (b"b", b"b2"), (b"c", b"c9"), (b"c", b"c7")]


def test_versions_time_range_and_ttl():
    cells = [(b"r", b"a", ts, P, str(ts).encode()) for ts in (50, 40, 30, 20)]
    assert [c[2] for c in merge.visible(cells, spec(versions=2))] == [50, 40]
    # the family keeps 3 versions: the fourth is gone even inside the range
    assert [c[2] for c in merge.visible(cells, spec(min_ts=0, max_ts=35))] == [30]
    assert [c[2] for c in merge.visible(cells, spec(ttl_ms=15, now=60))] == [50]


def test_newer_source_wins_the_same_key():
    old = [(b"r", b"a", 1, P, b"old")]
    new = [(b"r", b"a", 1, P, b"new")]
    assert [c[4] for c in merge.merge_sources([new, old])] == [b"new"]


def test_major_compaction_drops_the_dead_minor_keeps_markers():
    cells = sorted([(b"r", b"a", 5, P, b"x"), (b"r", b"a", 6, DC, b""), (b"s", b"a", 1, P, b"y")],
                   key=sort_key)
    assert list(merge.compact(iter(cells), False, 1, 0, 0)) == cells
    assert list(merge.compact(iter(cells), True, 1, 0, 0)) == [(b"s", b"a", 1, P, b"y")]


@pytest.mark.parametrize("codec", ["none", "zstd", "lz4", "snappy"])
def test_sstable_round_trip_with_each_codec(codec):
    cells = sorted([(f"row{i:05d}".encode(), b"q%d" % (i % 3), 1000 - i, P, b"v" * (i % 50))
                    for i in range(5000)], key=sort_key)
    out = io.BytesIO()
    meta = sstable.write(out, cells, codec=codec, block_size=4096)
    data = out.getvalue()
    r = sstable.Reader("t.sst", sstable.bytes_pread(data), len(data))
    assert meta["cells"] == 5000 and len(r.index) > 10
    assert list(r.scan()) == cells
    assert list(r.scan(b"row00100", b"row00200")) == [c for c in cells
                                                       if b"row00100" <= c[0] < b"row00200"]
    assert r.row(b"row04321") == [c for c in cells if c[0] == b"row04321"]
    assert r.row(b"nope") == [] and not r.may_contain(b"zzz")
    back = list(r.scan_reverse(b"row00010", b"row00005"))
    assert [c[0] for c in back] == sorted({c[0] for c in cells
                                           if b"row00005" < c[0] <= b"row00010"}, reverse=True)


def test_a_flipped_byte_in_a_block_is_caught_by_its_crc():
    cells = [(b"r%04d" % i, b"q", 1, P, b"x" * 100) for i in range(2000)]
    out = io.BytesIO()
    sstable.write(out, cells, block_size=8192)
    data = bytearray(out.getvalue())
    data[20000] ^= 0x40
    r = sstable.Reader("bad.sst", sstable.bytes_pread(bytes(data)), len(data))
    with pytest.raises(sstable.CorruptBlock, match=r"bad\.sst: checksum mismatch in the block at"):
        list(r.scan())
    with pytest.raises(sstable.CorruptBlock, match="trailer"):
        sstable.Reader("x.sst", sstable.bytes_pread(b"\0" * 100), 100)


def test_wal_reader_stops_at_a_torn_tail():
    recs = [wal.encode(i, "t1", {"cf": [[b"r", b"q", i, P, b"v"]]}) for i in range(1, 6)]
    data = b"".join(recs)
    assert [s for s, _, _ in wal.records(data)] == [1, 2, 3, 4, 5]
    assert [s for s, _, _ in wal.records(data[:-3])] == [1, 2, 3, 4]
    bad = bytearray(data)
    bad[len(recs[0]) + 10] ^= 1
    assert [s for s, _, _ in wal.records(bytes(bad))] == [1]


def test_filter_language():
    cells = [("cf", b"age", 1, b"30"), ("cf", b"name", 1, b"Ann"), ("cg", b"x", 1, b"1")]
    f = filters.parse("FamilyFilter (=, 'binary:cf') AND QualifierFilter (=, 'regexstring:^n')")
    assert f.apply(b"r", cells) == [cells[1]]
    f = filters.parse("ValueFilter (=, 'substring:ann') OR ColumnPrefixFilter ('x')")
    assert f.apply(b"r", cells) == [cells[1], cells[2]]
    f = filters.parse("SingleColumnValueFilter ('cf', 'age', >, 'binary:25', true, true)")
    assert f.apply(b"r", cells) == cells and f.apply(b"r", cells[1:]) == []
    assert filters.parse("KeyOnlyFilter () AND FirstKeyOnlyFilter ()").apply(b"r", cells) == \
        [("cf", b"age", 1, b"")]
    assert filters.parse("RowFilter (>=, 'binaryprefix:m')").apply(b"n1", cells) == cells
    page = filters.parse("PageFilter (1)")
    assert page.apply(b"a", cells) == cells
    with pytest.raises(filters.StopScan):
        page.apply(b"b", cells)
    for bad, where in [("PrefixFilter ('a'", "position"), ("Nope ()", "unknown filter"),
                       ("ValueFilter (<, 'regexstring:a')", "only = and !="),
                       ("ValueFilter (=, 'wat:a')", "comparator"), ("PageFilter ('x')", "number")]:
        with pytest.raises(filters.FilterError, match=where):
            filters.parse(bad)


def test_compaction_policy_skips_the_big_old_file():
    assert compaction.choose([1000, 10, 10, 10]) == (1, 4)
    assert compaction.choose([10, 10]) is None
    assert compaction.choose([100, 90, 80, 70, 60]) == (0, 5)


def _server(fs=None, flush=1 << 20):
    fs = fs or MemFS()
    s = Serving(fs, "srv1", flush_bytes=flush, split_bytes=1 << 40, cache_bytes=1 << 20,
                roll_bytes=1 << 14)
    schema = Schema("t", {"cf": Family("cf", max_versions=2), "cg": Family("cg")})
    return fs, s, schema


def _edit(fam, q, ts, v, kind=P):
    return [fam, q, ts, kind, v]


def test_recovery_replays_the_log_of_a_dead_server_from_its_flush_mark():
    from stackyard.table import files, logsplit
    fs, s, schema = _server()
    info = TabletInfo("t", "tab1")
    s.open(info, schema)
    s.mutate("tab1", b"a", [_edit("cf", b"q", 1, b"flushed")])
    s.flush("tab1")
    s.mutate("tab1", b"a", [_edit("cf", b"q", 2, b"only-in-log")])
    s.mutate("tab1", b"b", [_edit("cf", b"q", 3, b"x"), _edit("cg", b"q", 3, b"y")])
    s.log.thread.join(0.1)
    # the server "dies": its log is fenced and split; a new server opens the tablet
    logsplit.split(fs, "srv1")
    with pytest.raises(wal.SyncFailed):
        s.mutate("tab1", b"c", [_edit("cf", b"q", 4, b"after the fence")])
    _, s2, _ = _server(fs)
    s2.name = "srv2"
    s2.open(info, schema)
    assert s2.get("tab1", b"a", versions=2) == [("cf", b"q", 2, b"only-in-log"),
                                                ("cf", b"q", 1, b"flushed")]
    assert s2.get("tab1", b"b") == [("cf", b"q", 3, b"x"), ("cg", b"q", 3, b"y")]
    assert s2.get("tab1", b"c") == []
    assert not fs.exists(f"{files.tablet_dir('t', 'tab1')}/recovered/srv1.00000001.edits")


def test_a_memtable_is_scanned_a_stretch_at_a_time_with_the_same_cells():
    import threading

    from sortedcontainers import SortedDict

    from stackyard.table.tablet import _memtable_range, _memtable_scan
    m = SortedDict()
    for i in range(1000):
        for q in (b"a", b"b"):
            k = (b"r%04d" % i, q, -1)
            m[k] = (b"r%04d" % i, q, 1, 0, b"v")
    lock = threading.RLock()
    for start, stop in ((b"", b""), (b"r0100", b"r0900"), (b"r0999", b""), (b"r0500", b"r0501")):
        for reverse in (False, True):
            lo, hi = (stop, start) if reverse else (start, stop)
            want = _memtable_scan(m, lo, hi, reverse)
            got = list(_memtable_range(m, lo, hi, reverse, lock, chunk=7))
            assert got == want, (start, stop, reverse)

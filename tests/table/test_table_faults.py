"""The table store under failures, against real processes: a tablet server
killed mid-stream, the active master killed beside a standby, a server cut
off from the cell (a paused process), a corrupt SSTable, splits under load."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from stackyard import errors
from stackyard.cluster import process
from tests.conftest import wait_until
from tests.table.conftest import servers_of


class Writers:
    """Threads writing row mutations of two cells (equal values) and noting
    each acknowledged one."""

    def __init__(self, table, threads: int = 3, prefix: str = "w"):
        self.table, self.acked, self.errors = table, [], []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(f"{prefix}{i}",), daemon=True)
                        for i in range(threads)]

    def run(self, name: str) -> None:
        n = 0
        while not self.stop.is_set():
            row = f"{name}-{n:06d}".encode()
            value = b"%d" % n
            try:
                self.table.mutate_row(row, puts={b"f:a": value, b"f:b": value})
                with self.lock:
                    self.acked.append((row, value))
            except Exception as exc:  # noqa: BLE001 - an unacknowledged write is allowed to fail
                self.errors.append(exc)
            n += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(120)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def check_all(table, acked) -> None:
    got = {row: cells for row, cells in table.scan(prefix=b"w")}
    for row, value in acked:
        assert got.get(row) == {b"f:a": value, b"f:b": value}, row
    for row, cells in got.items():
        assert cells[b"f:a"] == cells[b"f:b"], f"{row!r} is half done: {cells}"


def test_acknowledged_writes_survive_a_killed_tablet_server(fresh_tables):
    c = fresh_tables
    c.client.tables.create_table("k", ["f"], splits=[b"w1", b"w2"])
    t = c.client.table("k")
    with Writers(t) as w:
        wait_until(lambda: w.count() > 150, 60, "writes before the kill")
        victim = servers_of(c)[0]
        c.kill(victim["name"])
        before = w.count()
        wait_until(lambda: w.count() > before + 150, 90, "writes after recovery")
    check_all(t, w.acked)
    st = c.client.tables.admin("status")
    assert len(st["servers"]) == 1 and st["recoveries"] >= 1
    # every tablet, METADATA's too, is served by the survivor
    assert {x["server"] for x in c.client.tables.tablets("k")} == set(st["servers"])


def test_a_standby_master_takes_over_and_the_data_path_never_waits(fresh_tables):
    c = fresh_tables
    conf = c.home.conf("tablemaster")
    standby_conf = conf.with_name("tablemaster-2.toml")
    text = conf.read_text().replace(str(c.home.addr_file("tablemaster")),
                                    str(c.home.addr_file("tablemaster-2")))
    standby_conf.write_text(text)
    log = c.home.log("tablemaster-2")
    proc = process.spawn("tablemaster", standby_conf, log)
    try:
        process.wait_for_file(c.home.addr_file("tablemaster-2"), proc, log)
        c.client.tables.create_table("m", ["f"])
        t = c.client.table("m")
        t.put(b"w0-x", {b"f:a": b"1", b"f:b": b"1"})
        with Writers(t, threads=2) as w:
            wait_until(lambda: w.count() > 50, 30, "writes")
            c.kill("tablemaster")
            killed = time.monotonic()
            marks = []
            while time.monotonic() - killed < 5:
                marks.append(w.count())
                time.sleep(0.5)
        # writes went on, tablet servers answering, while no master was active
        assert marks[-1] > marks[0] + 20 and not w.errors
        wait_until(lambda: c.client.tables.admin("status")["active"] != "", 30,
                   "the standby to take over")
        c.client.tables.create_table("after", ["f"])
        assert "after" in c.client.tables.tables()
        check_all(t, w.acked)
    finally:
        process.stop(proc.pid, standby_conf)


def test_a_server_cut_off_from_the_cell_stops_before_its_tablets_move(fresh_tables):
    c = fresh_tables
    c.client.tables.create_table("p", ["f"])
    t = c.client.table("p")
    t.put(b"w0-1", {b"f:a": b"1", b"f:b": b"1"})
    holder = next(x for x in c.client.tables.tablets("p"))
    victim = next(d for d in servers_of(c) if d["address"] == holder["address"])
    os.kill(victim["pid"], signal.SIGSTOP)
    try:
        # the master gives the tablet to the other server once the session expires
        wait_until(lambda: c.client.tables.tablets("p")[0]["address"] not in ("", victim["address"]),
                   60, "the tablet to move")
        t.put(b"w0-2", {b"f:a": b"2", b"f:b": b"2"})
    finally:
        os.kill(victim["pid"], signal.SIGCONT)
    # woken, the old server finds its lock gone and stops; it never acknowledged for the tablet
    wait_until(lambda: not process.alive(victim["pid"], victim["config"]), 30,
               "the cut-off server to stop")
    pool = c.client.fs.pool
    with pytest.raises((errors.ClusterUnavailable, errors.NotServingError)):
        pool.call(victim["address"], "mutate", tablet=holder["tablet"]["tablet_id"], row=b"w0-3",
                  edits=[["f", b"a", None, 4, b"3"]])
    assert t.row(b"w0-2") == {b"f:a": b"2", b"f:b": b"2"}
    assert t.row(b"w0-1") == {b"f:a": b"1", b"f:b": b"1"}


def test_a_corrupt_sstable_block_is_detected_and_named(tcluster):
    tc = tcluster.client.tables
    tc.create_table("crc", ["f"])
    t = tcluster.client.table("crc")
    for i in range(300):
        t.put(f"r{i:04d}", {b"f:v": b"x" * 200})
    tc.admin("flush", table="crc")
    tc.disable_table("crc")
    fs = tcluster.fs
    ssts = [p for p in fs.ls("/stackyard/table/data/crc", detail=False, recursive=True)
            if p.endswith(".sst")]
    assert ssts
    data = bytearray(fs.cat(ssts[0]))
    data[100] ^= 0xFF
    with fs.open(ssts[0], "wb") as f:
        f.write(bytes(data))
    tc.enable_table("crc")
    with pytest.raises(errors.CorruptDataError, match=r"\.sst: checksum mismatch in the block"):
        list(t.scan())


def test_splits_under_load_lose_and_duplicate_nothing(tcluster):
    tc = tcluster.client.tables
    tc.create_table("sp", ["f"])
    t = tcluster.client.table("sp")
    with Writers(t) as w:
        wait_until(lambda: w.count() > 100, 30, "writes")
        tc.admin("split", table="sp", row=b"w1")
        wait_until(lambda: w.count() > 250, 30, "writes after the first split")
        tc.admin("split", table="sp", row=b"w2")
        mark = w.count()
        wait_until(lambda: w.count() > mark + 100, 30, "writes after the second split")
    assert len(tc.tablets("sp")) == 3
    rows = [r for r, _ in t.scan()]
    assert len(rows) == len(set(rows)) and rows == sorted(rows)
    check_all(t, w.acked)
    tc.admin("compact", table="sp", major=True)
    check_all(t, w.acked)

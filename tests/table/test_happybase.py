"""happybase, unmodified, against the Thrift gateway: every call the issue
lists, and the gateway's refusal of a process of another user."""

from __future__ import annotations

import os

import happybase
import pytest


@pytest.fixture(scope="module")
def conn(tcluster):
    d = next(x for x in tcluster.home.read_state()["daemons"] if x["role"] == "thrift")
    host, port = d["address"].rsplit(":", 1)
    c = happybase.Connection(host, int(port), autoconnect=True)
    c.address = (host, int(port))
    yield c
    c.close()


def test_tables_descriptors_regions(conn):
    conn.create_table("hb", {"cf": dict(max_versions=3), "cg": dict()})
    assert b"hb" in conn.tables()
    t = conn.table("hb")
    fams = t.families()
    assert set(fams) == {b"cf", b"cg"} and fams[b"cf"]["max_versions"] == 3
    regions = t.regions()
    assert len(regions) == 1 and regions[0]["start_key"] == b"" and regions[0]["port"] > 0
    assert conn.is_table_enabled("hb")
    conn.disable_table("hb")
    assert not conn.is_table_enabled("hb")
    conn.enable_table("hb")
    conn.compact_table("hb")
    conn.compact_table("hb", major=True)
    with pytest.raises(Exception, match="already exists"):
        conn.create_table("hb", {"cf": {}})


def test_rows_versions_batches_counters_scans(conn):
    t = conn.table("hb")
    t.put(b"r1", {b"cf:a": b"1", b"cg:b": b"2"})
    t.put(b"r1", {b"cf:a": b"old"}, timestamp=10)
    t.put(b"r1", {b"cf:a": b"older"}, timestamp=5)
    assert t.row(b"r1") == {b"cf:a": b"1", b"cg:b": b"2"}
    assert t.row(b"r1", columns=[b"cf:a"], timestamp=11) == {b"cf:a": b"old"}
    assert t.cells(b"r1", b"cf:a", versions=3)[1:] == [b"old", b"older"]
    assert t.cells(b"r1", b"cf:a", versions=2, timestamp=11, include_timestamp=True) == \
        [(b"old", 10), (b"older", 5)]
    row = t.row(b"r1", include_timestamp=True)
    assert row[b"cg:b"][0] == b"2" and row[b"cg:b"][1] > 10
    with t.batch() as b:
        for i in range(50):
            b.put(f"row{i:02d}".encode(), {b"cf:n": str(i).encode()})
        b.delete(b"r1", columns=[b"cg:b"])
    assert t.row(b"r1") == {b"cf:a": b"1"}
    assert dict(t.rows([b"row01", b"row02"])) == {b"row01": {b"cf:n": b"1"},
                                                 b"row02": {b"cf:n": b"2"}}
    assert t.counter_inc(b"c", b"cf:hits") == 1
    assert t.counter_inc(b"c", b"cf:hits", value=10) == 11
    assert t.counter_get(b"c", b"cf:hits") == 11
    assert t.counter_dec(b"c", b"cf:hits", 2) == 9
    keys = [k for k, _ in t.scan(row_prefix=b"row")]
    assert keys == [f"row{i:02d}".encode() for i in range(50)]
    assert [k for k, _ in t.scan(row_start=b"row10", row_stop=b"row13")] == \
        [b"row10", b"row11", b"row12"]
    assert len(list(t.scan(row_prefix=b"row", limit=7, batch_size=3))) == 7
    assert [k for k, _ in t.scan(row_prefix=b"row0", reverse=True)][:2] == [b"row09", b"row08"]
    got = dict(t.scan(filter=b"PrefixFilter ('row4') AND ValueFilter (=, 'binary:42')"))
    assert got == {b"row42": {b"cf:n": b"42"}}
    assert dict(t.scan(row_prefix=b"row1", columns=[b"cf"], filter=b"KeyOnlyFilter ()"))[
        b"row11"] == {b"cf:n": b""}
    t.delete(b"row00")
    assert t.row(b"row00") == {}
    with pytest.raises(Exception, match="PrefixFilter|position"):
        list(t.scan(filter=b"PrefixFilter ("))


def test_delete_table(conn):
    conn.create_table("gone", {"f": {}})
    conn.delete_table("gone", disable=True)
    assert b"gone" not in conn.tables()


def _as_nobody(address, work) -> str:
    """WORK(happybase connection) in a child process that became uid 65534;
    what it reported."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.setuid(65534)
            c = happybase.Connection(*address)
            os.write(write, work(c).encode())
        except Exception as e:  # noqa: BLE001
            os.write(write, f"error {type(e).__name__}: {e}".encode()[:1000])
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    got = os.read(read, 1000).decode()
    os.close(read)
    return got


def test_a_process_of_another_user_is_refused(conn):
    if os.getuid() != 0:
        pytest.skip("needs root to become another uid")
    # the child becomes nobody, then tries happybase
    got = _as_nobody(conn.address, lambda c: "served" if c.tables() is not None else "")
    assert got.startswith("error"), got
    assert conn.tables()                # the owner is still served


def test_a_mapped_user_is_served_as_that_user_and_its_rights_hold(tcluster, conn):
    if os.getuid() != 0:
        pytest.skip("needs root to become another uid")
    from stackyard.cluster.config import ThriftConfig, dump, load
    home, cluster = tcluster.home, tcluster.cluster
    cfg = load("thrift", home.conf("thrift"))
    dump(ThriftConfig(**{**cfg.__dict__, "port": 0, "users": "65534=alice",
                         "addr_file": str(home.addr_file("thrift-mapped"))}),
         home.conf("thrift-mapped"))
    state = home.read_state()           # recorded first, so the cluster's `down` stops it
    state["daemons"].append({"name": "thrift-mapped", "role": "thrift", "pid": 0, "address": "",
                             "config": str(home.conf("thrift-mapped")),
                             "log": str(home.log("thrift-mapped"))})
    home.write_state(state)
    d = cluster.start(dict(cluster.daemon("thrift-mapped")))
    address = tuple(d["address"].rsplit(":", 1))
    address = (address[0], int(address[1]))
    tc = tcluster.client.tables
    tc.create_table("alices", ["cf"])
    tcluster.client.table("alices").put(b"r1", {b"cf:a": b"1"})
    tc.admin("grant", table="alices", to="alice", rights=["read"])
    try:
        def read_then_write(c):
            t = c.table("alices")
            got = t.row(b"r1")
            try:
                t.put(b"r2", {b"cf:a": b"2"})
                wrote = "wrote"
            except Exception as e:  # noqa: BLE001
                wrote = f"refused {e}"
            return f"read {got.get(b'cf:a')!r}; {wrote}"

        got = _as_nobody(address, read_then_write)
        assert got.startswith("read b'1'; refused"), got
        assert "alice" in got                       # it acted as alice, not as root or nobody
        assert tcluster.client.table("alices").row(b"r2") == {}
    finally:
        cluster.kill("thrift-mapped", sig=15)

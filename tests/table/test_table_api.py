"""The table store's API against real daemons: the data model, row
mutations, scans with HBase filters, admin, access control, pages."""

from __future__ import annotations

import pytest

from stackyard import errors
from stackyard.table.filters import FilterError


@pytest.fixture(scope="module")
def t(tcluster):
    tc = tcluster.client.tables
    tc.create_table("people", {"info": {"max_versions": 3}, "stats": {"compression": "zstd"}},
                    splits=[b"g", b"p"])
    return tcluster.client.table("people")


def test_cells_versions_and_deletes(t):
    t.put(b"ann", {b"info:name": b"Ann"}, timestamp=100)
    t.put(b"ann", {b"info:name": b"Anna"}, timestamp=200)
    t.put(b"ann", {b"info:name": b"Annie", b"stats:age": b"31"}, timestamp=300)
    t.put(b"ann", {b"info:name": b"Ann4"}, timestamp=50)        # past VERSIONS: never seen
    assert t.row(b"ann") == {b"info:name": b"Annie", b"stats:age": b"31"}
    assert [(v, ts) for _c, v, ts in t.cells(b"ann", [b"info:name"], versions=5)] == \
        [(b"Annie", 300), (b"Anna", 200), (b"Ann", 100)]
    assert t.row(b"ann", [b"info:name"], timestamp=250) == {b"info:name": b"Anna"}
    assert [ts for *_, ts in t.cells(b"ann", [b"info"], min_ts=150, max_ts=301, versions=3)] \
        == [300, 200]
    t.delete_cell(b"ann", b"info:name", 300)
    assert t.row(b"ann", [b"info:name"]) == {b"info:name": b"Anna"}
    t.delete(b"ann", [b"info:name"], timestamp=200)
    assert t.row(b"ann", [b"info"]) == {}
    t.delete(b"ann", [b"stats"])
    assert t.row(b"ann") == {}
    t.put(b"bob", {b"info:a": b"1", b"stats:b": b"2"})
    t.delete(b"bob")
    assert t.row(b"bob") == {}


def test_row_mutations_check_and_mutate_increment_append(t):
    t.mutate_row(b"hal", puts={b"info:x": b"1", b"info:y": b"2"})
    t.mutate_row(b"hal", puts={b"info:z": b"3"}, deletes=[b"info:x"])
    assert t.row(b"hal") == {b"info:y": b"2", b"info:z": b"3"}
    assert not t.check_and_mutate(b"hal", b"info:y", b"nope", puts={b"info:w": b"!"})
    assert t.check_and_mutate(b"hal", b"info:y", b"2", puts={b"info:w": b"!"})
    assert t.check_and_mutate(b"hal", b"info:absent", None, deletes=[b"info:z"])
    assert t.row(b"hal") == {b"info:y": b"2", b"info:w": b"!"}
    assert [t.increment(b"hal", b"stats:n", k) for k in (5, -2, 10)] == [5, 3, 13]
    assert t.counter(b"hal", b"stats:n") == 13
    assert t.append(b"hal", b"info:log", b"a") == b"a"
    assert t.append(b"hal", b"info:log", b"bc") == b"abc"
    with pytest.raises(ValueError, match="not an 8-byte counter"):
        t.increment(b"hal", b"info:y")


def test_scans_across_tablets_with_filters(t):
    names = [f"user{i:03d}" for i in range(60)] + ["aa", "zz", "h1", "q7"]
    for n in names:
        t.put(n, {b"info:name": n.encode(), b"stats:len": str(len(n)).encode()})
    everything = [r for r, _ in t.scan(columns=[b"info:name"])]
    assert everything == sorted(everything) and set(n.encode() for n in names) <= set(everything)
    assert [r for r, _ in t.scan(start=b"user010", stop=b"user015")] == \
        [f"user{i:03d}".encode() for i in range(10, 15)]
    assert [r for r, _ in t.scan(prefix=b"user05", batch_size=3)] == \
        [f"user{i:03d}".encode() for i in range(50, 60)]
    assert [r for r, _ in t.scan(prefix=b"user05", reverse=True)] == \
        [f"user{i:03d}".encode() for i in range(59, 49, -1)]
    back = [r for r, _ in t.scan(reverse=True)]
    assert back == sorted(back, reverse=True) and back[0] == b"zz"
    assert len(list(t.scan(limit=7, batch_size=2))) == 7
    got = dict(t.scan(filter="PrefixFilter ('user00') AND QualifierFilter (=, 'binary:name')"))
    assert got == {f"user00{i}".encode(): {b"info:name": f"user00{i}".encode()} for i in range(10)}
    got = dict(t.scan(prefix=b"user", filter="ValueFilter (=, 'regexstring:^user01[0-2]$') "
                                            "OR SingleColumnValueFilter ('info', 'name', =, "
                                            "'binary:user020', true, true)"))
    assert sorted(got) == [b"user010", b"user011", b"user012", b"user020"]
    assert dict(t.scan(prefix=b"user03", filter="KeyOnlyFilter () AND FirstKeyOnlyFilter ()")
                )[b"user031"] == {b"info:name": b""}
    with pytest.raises(FilterError, match="position"):
        list(t.scan(filter="PrefixFilter ('x'"))


def test_errors_name_the_problem(tcluster, t):
    with pytest.raises(ValueError, match="no column family 'nope'"):
        t.put(b"r", {b"nope:x": b"1"})
    with pytest.raises(ValueError, match="65537 bytes"):
        t.put(b"x" * 65537, {b"info:x": b"1"})
    with pytest.raises(errors.TableNotFoundError, match="'ghost'"):
        tcluster.client.table("ghost").row(b"r")
    with pytest.raises(errors.TableExistsError):
        tcluster.client.tables.create_table("people", ["info"])
    with pytest.raises(ValueError, match="COMPRESSION"):
        tcluster.client.tables.create_table("bad", {"f": {"compression": "gzip9"}})


def test_admin_flush_compact_split_alter_disable_drop(tcluster):
    tc = tcluster.client.tables
    tc.create_table("adm", ["f"])
    a = tcluster.client.table("adm")
    for i in range(200):
        a.put(f"r{i:04d}", {b"f:v": b"%d" % i})
    for _ in range(3):
        a.put(b"r0001", {b"f:v": b"again"})
        tc.admin("flush", table="adm")
    tc.admin("compact", table="adm", major=True)
    assert a.row(b"r0001") == {b"f:v": b"again"}
    tc.admin("split", table="adm", row=b"r0100")
    tablets = tc.tablets("adm")
    assert [(x["tablet"]["start"], x["tablet"]["end"]) for x in tablets] == \
        [(b"", b"r0100"), (b"r0100", b"")]
    assert len(list(a.scan())) == 200
    tc.admin("alter", table="adm", families=[{"name": "g", "max_versions": 2}])
    a.put(b"r0005", {b"g:new": b"yes"})
    assert a.row(b"r0005") == {b"f:v": b"5", b"g:new": b"yes"}
    tc.disable_table("adm")
    with pytest.raises(errors.TableDisabledError):
        tc.delete_table("adm") if False else a.row(b"r0005")
    tc.enable_table("adm")
    assert a.row(b"r0199") == {b"f:v": b"199"}
    with pytest.raises(errors.TableDisabledError, match="disable it first"):
        tc.delete_table("adm")
    tc.delete_table("adm", disable=True)
    assert "adm" not in tc.tables()
    assert not tcluster.fs.exists("/stackyard/table/data/adm")


def test_access_control_per_table_and_family(tcluster):
    from stackyard.table.client import TableClient
    tc = tcluster.client.tables
    tc.create_table("secret", ["pub", "priv"])
    tc.admin("grant", table="secret", to="bob", rights=["read"], family="pub")
    tcluster.client.table("secret").put(b"r", {b"pub:a": b"1", b"priv:b": b"2"})
    bob = TableClient(tcluster.cluster.coord_addresses(), tcluster.client._secret, user="bob")
    try:
        assert bob.table("secret").row(b"r", [b"pub"]) == {b"pub:a": b"1"}
        with pytest.raises(PermissionError, match="bob"):
            bob.table("secret").row(b"r", [b"priv"])
        with pytest.raises(PermissionError, match="may not write"):
            bob.table("secret").put(b"r", {b"pub:a": b"2"})
        with pytest.raises(PermissionError, match="administer"):
            bob.admin("disable", table="secret")
    finally:
        bob.close()


def test_status_pages_and_metrics(tcluster, t):
    pool = tcluster.client.fs.pool
    master = next(d for d in tcluster.home.read_state()["daemons"] if d["role"] == "tablemaster")
    page = pool.request(master["address"], "GET", "/").read().decode()
    assert "Tablet servers" in page and "people" in page
    metrics = pool.request(master["address"], "GET", "/metrics").read().decode()
    assert "stackyard_tablemaster_servers_live 2" in metrics
    server = next(d for d in tcluster.home.read_state()["daemons"] if d["role"] == "tabletserver")
    assert "Tablet server" in pool.request(server["address"], "GET", "/").read().decode()
    assert "stackyard_tabletserver_tablets" in \
        pool.request(server["address"], "GET", "/metrics").read().decode()


def test_table_endpoints_refuse_bad_requests(tcluster, t):
    from tests.conftest import assert_refuses_strangers
    daemons = tcluster.home.read_state()["daemons"]
    for role, read, write in (("tablemaster", "describe", "create"),
                              ("tabletserver", "get", "mutate")):
        address = next(d["address"] for d in daemons if d["role"] == role)
        assert_refuses_strangers(address, "status")
        pool = tcluster.client.fs.pool
        r = pool.request(address, "POST", f"/rpc/{read}", body=b"\xc1 not msgpack")
        assert r.status == 400, r.status
        r.read()
        r = pool.request(address, "POST", f"/rpc/{read}", body=b"\x91\x01")   # a list, not a map
        assert r.status == 400
        r.read()
        r = pool.request(address, "POST", f"/rpc/{write}", body=b"\0" * (65 << 20))
        assert 400 <= r.status < 500, r.status
        r.read()
    # a whole-row delete goes to the tablet server alone, and covers every family
    t.put(b"wipe", {b"info:a": b"1", b"stats:b": b"2"})
    t.delete(b"wipe")
    assert t.row(b"wipe") == {}

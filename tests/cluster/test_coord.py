"""The coordination cell: three real coord processes on loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from stackyard import errors
from stackyard.coord.client import CoordClient
from stackyard.coord.tree import BadVersion, NodeExists, NoNode, NotEmpty
from stackyard.net.auth import Secret
from tests.conftest import wait_until


def name_of(c, address: str) -> str:
    return next(d["name"] for d in c.home.read_state()["daemons"] if d["address"] == address)


def test_tree_operations_and_errors(cell):
    z = cell.coord
    assert z.create("/svc", b"v0") == "/svc"
    data, stat = z.get("/svc")
    assert data == b"v0" and stat["version"] == 0
    assert z.set("/svc", b"v1", version=0)["version"] == 1
    with pytest.raises(BadVersion):
        z.set("/svc", b"v2", version=0)
    with pytest.raises(NodeExists):
        z.create("/svc")
    with pytest.raises(NoNode):
        z.get("/nothing")
    z.create("/svc/a")
    with pytest.raises(NotEmpty):
        z.delete("/svc")
    assert z.children("/svc") == ["a"]
    assert z.exists("/svc/zzz") is None


def test_leader_killed_new_leader_and_nothing_acknowledged_lost(cell):
    z = cell.coord
    acked = {}
    for i in range(30):
        z.create(f"/k{i}", str(i).encode())
        acked[f"/k{i}"] = str(i).encode()
    eph = z.create("/mine", ephemeral=True)
    old = cell.cluster.wait_coord_leader()
    cell.kill(name_of(cell, old))
    # a new leader within a few election timeouts (1-2 s each)
    new = wait_until(lambda: cell.cluster.wait_coord_leader(timeout=1), 15, "a new leader")
    assert new != old
    for path, data in acked.items():               # the client carries on, same session
        assert z.get(path)[0] == data
    assert z.exists(eph) is not None and not z.expired
    z.create("/after", b"x")
    cell.start(name_of(cell, old))                  # the old leader rejoins and catches up
    wait_until(lambda: z.status(old)["applied"] >= z.status(new)["applied"], 20,
               "the old leader to catch up")


def test_lagging_replica_catches_up_by_snapshot(cell):
    z = cell.coord
    leader = cell.cluster.wait_coord_leader()
    follower = next(a for a in cell.cluster.coord_addresses() if a != leader)
    cell.kill(name_of(cell, follower))
    for i in range(120):                            # > snapshot_entries (40): log compacted
        z.create(f"/many{i}")
    assert z.status(leader)["snapshot_index"] > 0
    cell.start(name_of(cell, follower))
    wait_until(lambda: z.status(follower)["applied"] >= z.status(leader)["applied"]
               and z.status(follower)["snapshot_index"] > 0, 20, "catch-up by snapshot")
    assert z.status(follower)["nodes"] == z.status(leader)["nodes"]


def test_dead_clients_session_expires_its_ephemeral_goes_and_watchers_hear(cell):
    z = cell.coord
    z.start_session()
    script = textwrap.dedent(f"""
        import os
        from stackyard.coord.client import CoordClient
        from stackyard.net.auth import Secret
        c = CoordClient({cell.cluster.coord_addresses()!r},
                        Secret.load({str(cell.home.secret_file)!r}), session_timeout=2.0)
        c.create("/holder", ephemeral=True)
        print("created", flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert b"created" in proc.stdout, proc.stderr.decode()
    assert z.exists("/holder", watch=True) is not None
    events = wait_until(lambda: z.events(wait=2.0), 20, "the watch to fire")
    assert {"type": "deleted", "path": "/holder", "watch": "exists"} in events
    assert z.exists("/holder") is None


def test_wrong_secret_refused(cell):
    bad = CoordClient(cell.cluster.coord_addresses(), Secret(b"x" * 32), retry_seconds=1)
    with pytest.raises(errors.AuthError):
        bad.get("/")


def test_yard_coord_cli(cell):
    y = cell.yard
    assert y("coord", "create", "/cli", "v0", check=True).stdout.decode().strip() == "/cli"
    assert y("coord", "get", "/cli", check=True).stdout == b"v0\n"
    assert y("coord", "set", "/cli", "v1", "--version", "0", check=True).stdout.strip() == b"version 1"
    r = y("coord", "set", "/cli", "v2", "--version", "0")
    assert r.returncode == 1 and r.stderr.decode().strip() == "coord set: /cli: version mismatch"
    y("coord", "create", "/cli/kid", check=True)
    assert y("coord", "ls", "/cli", check=True).stdout.decode().split() == ["kid"]
    r = y("coord", "rm", "/cli")
    assert r.returncode == 1 and "node has children" in r.stderr.decode()
    y("coord", "rm", "-r", "/cli", check=True)
    r = y("coord", "get", "/cli")
    assert r.returncode == 1 and "no such node" in r.stderr.decode() and b"Traceback" not in r.stderr
    r = y("coord", "lock", "/locks/cli", "--", sys.executable, "-c",
          "import os; print(os.environ['STACKYARD_LOCK_TOKEN'])", check=True)
    assert int(r.stdout) > 0
    status = y("coord", "status", check=True).stdout.decode()
    assert status.count("leader") == 1 and status.count("follower") == 2


def test_five_replicas_survive_two_failures(make_cluster):
    c = make_cluster(chunkservers=1, replication=1, coords=5)
    z = CoordClient(c.cluster.coord_addresses(), Secret.load(c.home.secret_file))
    for i in range(10):
        z.create(f"/five{i}", b"x")
    leader = c.cluster.wait_coord_leader()
    other = next(a for a in c.cluster.coord_addresses() if a != leader)
    c.kill(name_of(c, leader))
    c.kill(name_of(c, other))
    z.create("/after-two-failures", b"ok")           # 3 of 5 are still a quorum
    assert [z.get(f"/five{i}")[0] for i in range(10)] == [b"x"] * 10
    assert z.get("/after-two-failures")[0] == b"ok"
    z.close()


def test_watch_survives_a_failover(cell):
    """The watch lived on the old leader; the client re-arms it on the new one
    and reports the change it would otherwise have missed."""
    z = cell.coord
    z.start_session()
    assert z.exists("/later", watch=True) is None
    z.create("/kids")
    assert z.children("/kids", watch=True) == []
    old = cell.cluster.wait_coord_leader()
    cell.kill(name_of(cell, old))
    other = cell.new_coord()
    other.create("/later", b"made during the failover")
    other.create("/kids/a")
    events = wait_until(lambda: z.events(wait=1.0), 20, "the events")
    assert {"type": "created", "path": "/later", "watch": "exists"} in events
    assert {"type": "children_changed", "path": "/kids", "watch": "children"} in events
    other.close()


def test_multi_applies_all_or_nothing(cell):
    from stackyard.coord.tree import Check, Create, Delete, SetData
    z = cell.coord
    z.create("/m", b"0")
    with pytest.raises(NoNode):
        z.multi([Create("/m/a"), SetData("/m", b"1"), Delete("/m/missing")])
    assert z.children("/m") == [] and z.get("/m")[0] == b"0"
    results = z.multi([Create("/m/a"), Check("/m", 0), SetData("/m", b"1", version=0)])
    assert results[0] == "/m/a" and results[2]["version"] == 1
    with pytest.raises(BadVersion):
        z.multi([Check("/m", 0), Delete("/m/a")])
    assert z.children("/m") == ["a"]

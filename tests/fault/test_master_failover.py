"""The replicated master (issue 16): three masters, one active. Killing the
active one mid-stream loses nothing acknowledged and the clients finish on
the new one; a standby answers reads marked stale and refuses the rest,
naming the active master; a paused active master that wakes up deposed
acknowledges nothing; each master's disk can be wiped in turn."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest

from stackyard import errors
from tests.conftest import MiB, wait_until


@pytest.fixture
def ha(make_cluster):
    return make_cluster(masters=3)


def masters(c) -> dict[str, str]:
    return {d["name"]: d["address"] for d in c.home.read_state()["daemons"]
            if d["role"] == "master"}


def roles(c) -> dict[str, str]:
    out = {}
    for name, address in masters(c).items():
        try:
            out[name] = c.fs.pool.call(address, "cluster")["role"]
        except errors.ClusterUnavailable:
            out[name] = "down"
    return out


def active(c) -> str:
    wait_until(lambda: "active" in roles(c).values(), 20, "an active master")
    return next(n for n, r in roles(c).items() if r == "active")


def caught_up(c, name: str) -> bool:
    """NAME has applied everything the active master has committed."""
    try:
        info = {n: c.fs.pool.call(a, "cluster") for n, a in masters(c).items()}
    except errors.ClusterUnavailable:
        return False
    lead = [i for i in info.values() if i["role"] == "active"]
    return bool(lead) and info[name]["txid"] >= lead[0]["txid"]


def test_killing_the_active_master_loses_nothing_acknowledged(ha, rng):
    c = ha
    first = active(c)
    acked: dict[str, bytes] = {}
    dirs: list[str] = []
    appended: dict[str, list[bytes]] = {}
    lock = threading.Lock()
    errors_seen: list[BaseException] = []
    killed = threading.Event()

    def client(n: int) -> None:
        from stackyard.dfs.client import FileSystem
        from stackyard.net.auth import Secret
        fs = FileSystem(c.master, Secret.load(c.home.secret_file), retry_seconds=30)
        log = f"/ha/c{n}/log"
        try:
            fs.mkdir(f"/ha/c{n}")
            fs.open(log, "wb").close()
            for i in range(14):
                d = f"/ha/c{n}/d{i}"
                fs.mkdir(d)
                with lock:
                    dirs.append(d)
                data = os.urandom(rng.randrange(1, 2 * MiB))
                with fs.open(f"{d}/f", "wb") as f:
                    f.write(data)
                with lock:
                    acked[f"{d}/f"] = data
                line = f"record {i}\n".encode()
                with fs.open(log, "ab") as f:
                    f.write(line)
                with lock:
                    appended.setdefault(log, []).append(line)
                if i == 4 and n == 0:
                    killed.wait(60)
        except BaseException as exc:
            errors_seen.append(exc)
        finally:
            fs.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 6, 60, "six files written")
    start = time.monotonic()
    c.kill(first)
    killed.set()
    second = active(c)
    print(f"a standby ({second}) became active {time.monotonic() - start:.2f} s after the kill")
    assert second != first
    for t in threads:
        t.join(240)
    assert not errors_seen, errors_seen
    assert len(acked) == 42 and len(dirs) == 42
    for d in dirs:
        assert c.fs.isdir(d), d
    for path, data in acked.items():
        assert c.fs.cat(path) == data, path
    for log, lines in appended.items():
        assert c.fs.cat(log) == b"".join(lines), log
    assert c.fs.fsck("/ha")["status"] == "HEALTHY"

    # the old master comes back (as `yard cluster up` starts what stopped) as a
    # standby, and catches up
    up = c.yard("cluster", "up", check=True)
    assert f"Started {first} again" in up.stdout.decode()
    wait_until(lambda: roles(c)[first] == "standby" and caught_up(c, first), 30,
               f"{first} back as a standby with every record")
    st = c.fs.pool.call(masters(c)[first], "stat", path=next(iter(acked)), stale=True,
                        user=c.fs.user)
    assert st["stale"] is True and st["length"] == len(acked[next(iter(acked))])


def test_a_standby_serves_stale_reads_and_names_the_active_master(ha):
    c = ha
    lead = active(c)
    c.fs.mkdir("/shadow/dir")
    standby = next(n for n, r in roles(c).items() if r == "standby")
    address = masters(c)[standby]
    wait_until(lambda: caught_up(c, standby), 10, "the standby to catch up")
    st = c.fs.pool.call(address, "stat", path="/shadow/dir", stale=True, user=c.fs.user)
    assert st["type"] == "directory" and st["stale"] is True
    listing = c.fs.pool.call(address, "list", path="/shadow", stale=True, user=c.fs.user)
    assert [e["name"] for e in listing] == ["dir"] and listing[0]["stale"] is True
    with pytest.raises(errors.StandbyError) as refused:
        c.fs.pool.call(address, "mkdir", path="/shadow/no", user=c.fs.user)
    assert refused.value.active == masters(c)[lead]
    with pytest.raises(errors.StandbyError):
        c.fs.pool.call(address, "stat", path="/shadow/dir", user=c.fs.user)   # not asked stale
    assert not c.fs.exists("/shadow/no")


def test_a_deposed_master_acknowledges_nothing(ha):
    c = ha
    old = active(c)
    pid = next(d["pid"] for d in c.home.read_state()["daemons"] if d["name"] == old)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: any(r == "active" for n, r in roles_without(c, old).items()), 20,
                   "a new active master while the old one sleeps")
        new = next(n for n, r in roles_without(c, old).items() if r == "active")
        c.fs.mkdir("/fenced/by-new")
    finally:
        os.kill(pid, signal.SIGCONT)
    # the old master still thinks it leads until it hears the new term; it must
    # not acknowledge a write meanwhile
    with pytest.raises(errors.StandbyError):
        c.fs.pool.call(masters(c)[old], "mkdir", path="/fenced/by-old", parents=True,
                       user=c.fs.user)
    assert not c.fs.exists("/fenced/by-old") and c.fs.isdir("/fenced/by-new")
    wait_until(lambda: roles(c)[old] == "standby", 10, f"{old} to step down")
    assert roles(c)[new] == "active"


def roles_without(c, name: str) -> dict[str, str]:
    out = {}
    for n, address in masters(c).items():
        if n == name:
            continue
        try:
            out[n] = c.fs.pool.call(address, "cluster")["role"]
        except errors.ClusterUnavailable:
            out[n] = "down"
    return out


def test_each_masters_disk_can_be_wiped_in_turn(ha):
    c = ha
    data = {}
    for i in range(3):
        data[f"/wipe/f{i}"] = os.urandom(MiB + 1000 * i)
        with c.fs.open(f"/wipe/f{i}", "wb") as f:
            f.write(data[f"/wipe/f{i}"])
    for name in masters(c):
        c.kill(name)
        shutil.rmtree(c.home.data(name))
        c.fs.mkdir(f"/wipe/while-{name}-was-gone")
        c.start(name)
        wait_until(lambda n=name: caught_up(c, n), 30, f"{name} re-synced from the others")
    for path, blob in data.items():
        assert c.fs.cat(path) == blob
    assert sorted(e["name"] for e in c.fs.ls("/wipe") if e["type"] == "directory") == sorted(
        f"while-{n}-was-gone" for n in masters(c))


@pytest.mark.parametrize("rpc", ["truncate", "setquota", "decommission", "move_replica",
                                 "server_chunks", "expunge", "server_defaults"])
def test_the_masters_new_rpcs_refuse_strangers_and_bad_bodies(cluster, rpc):
    from stackyard.net.client import decode_reply
    from tests.conftest import assert_refuses_strangers
    assert_refuses_strangers(cluster.master, rpc)
    resp = cluster.fs.pool.request(cluster.master, "POST", f"/rpc/{rpc}", body=b"\x93\x01\x02\x03",
                                   headers={"Content-Type": "application/x-msgpack"})
    with pytest.raises(ValueError, match="must be a map"):          # 400, not a crash
        decode_reply(resp.status, resp.read(), cluster.master)
    with pytest.raises(errors.RequestTooLarge):                     # 413
        cluster.fs.pool.call(cluster.master, rpc, path="/" + "x" * (65 << 20))


def test_raft_messages_come_only_from_the_masters(ha):
    from stackyard.net.client import decode_reply
    address = masters(ha)["master"]
    resp = ha.fs.pool.request(address, "POST", "/raft/step", body=b"\x90",
                              headers={"Content-Type": "application/x-msgpack"})
    with pytest.raises(errors.AuthError):                 # signed, but not as a master
        decode_reply(resp.status, resp.read(), address)

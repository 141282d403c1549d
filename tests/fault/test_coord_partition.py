"""An isolated old leader, in real network namespaces: it cannot commit, and
the clients on its side of the cut get errors, never stale success.

Three network namespaces joined by a bridge, one coord replica in each, on its
own 10.77.0.x address (this test's own hosts, made and removed here). Needs
root and iproute2, as on the project's machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from stackyard.cluster.config import CoordConfig, dump
from stackyard.cluster.process import stop
from stackyard.coord.client import CoordClient
from stackyard.net.auth import Secret
from tests.conftest import wait_until


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def netcell(tmp_path):
    tag = f"{os.getpid() % 100000}"
    bridge, names = f"yb{tag}", [f"yn{tag}{i}" for i in (1, 2, 3)]
    veths = [f"yv{tag}{i}" for i in (1, 2, 3)]
    procs = []
    try:
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "addr", "add", "10.77.0.254/24", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        for i, (ns, veth) in enumerate(zip(names, veths, strict=True), start=1):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", bridge)
            sh("ip", "link", "set", veth, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"10.77.0.{i}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        secret = Secret.generate()
        secret.save(tmp_path / "secret")
        peers = ",".join(f"n{i}=10.77.0.{i}:7100" for i in (1, 2, 3))
        for i, ns in enumerate(names, start=1):
            cfg = tmp_path / f"n{i}.toml"
            dump(CoordConfig(data_dir=str(tmp_path / f"n{i}"), secret_file=str(tmp_path / "secret"),
                             node_id=f"n{i}", peers=peers, host=f"10.77.0.{i}", port=7100,
                             addr_file=str(tmp_path / f"n{i}.addr")).validate(), cfg)
            log = open(tmp_path / f"n{i}.log", "wb")
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m",
                                           "stackyard", "daemon", "coord", "--config", str(cfg)],
                                          stdout=log, stderr=subprocess.STDOUT))
        yield {"names": names, "veths": veths, "secret": secret, "home": tmp_path,
               "addresses": [f"10.77.0.{i}:7100" for i in (1, 2, 3)]}
    finally:
        for p in procs:
            stop(p.pid)
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def leader_of(client: CoordClient, addresses: list[str]) -> str | None:
    leaders = []
    for a in addresses:
        try:
            if client.status(a)["role"] == "leader":
                leaders.append(a)
        except Exception:
            pass
    return leaders[0] if len(leaders) == 1 else None


def test_isolated_old_leader_cannot_commit_and_its_clients_get_errors(netcell):
    addresses = netcell["addresses"]
    z = CoordClient(addresses, netcell["secret"], retry_seconds=20)
    old = wait_until(lambda: leader_of(z, addresses), 30, "a leader")
    z.create("/part", b"before")
    k = addresses.index(old)
    sh("ip", "link", "set", netcell["veths"][k], "down")       # cut the leader off
    # a client on the old leader's side of the cut, talking to it alone
    script = textwrap.dedent(f"""
        import json
        from stackyard.coord.client import CoordClient
        from stackyard.net.auth import Secret
        c = CoordClient([{old!r}], Secret.load({str(netcell["home"] / "secret")!r}),
                        retry_seconds=3)
        out = {{}}
        for name, op in (("write", lambda: c.set("/part", b"isolated")),
                         ("read", lambda: c.get("/part"))):
            try:
                out[name] = ["ok", repr(op())]
            except Exception as exc:
                out[name] = ["error", type(exc).__name__ + ": " + str(exc)]
        print(json.dumps(out), flush=True)
    """)
    proc = subprocess.run(["ip", "netns", "exec", netcell["names"][k], sys.executable, "-c",
                           script], capture_output=True, timeout=120)
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    print("isolated client saw:", result)
    assert result["write"][0] == "error", result
    assert result["read"][0] == "error", result
    # the majority side elected a new leader and carries on
    majority = [a for a in addresses if a != old]
    zm = CoordClient(majority, netcell["secret"], retry_seconds=20)
    zm.set("/part", b"majority")
    new = leader_of(zm, majority)
    assert new is not None and new != old
    sh("ip", "link", "set", netcell["veths"][k], "up")         # heal
    wait_until(lambda: z.status(old)["role"] == "follower"
               and z.status(old)["applied"] >= z.status(new)["applied"], 30,
               "the old leader to rejoin as a follower")
    assert z.get("/part")[0] == b"majority"                    # the isolated write never landed
    time.sleep(0.2)
    for a in addresses:
        assert z.status(a)["applied"] >= z.status(new)["applied"] - 1


def test_a_follower_back_from_a_partition_leaves_the_leader_alone(netcell):
    """Pre-vote with check-quorum: the cut-off follower's election timer fires
    again and again, but it never raises its term, so when the link comes back
    the leader keeps its leadership and its term."""
    addresses = netcell["addresses"]
    z = CoordClient(addresses, netcell["secret"], retry_seconds=20)
    leader = wait_until(lambda: leader_of(z, addresses), 30, "a leader")
    z.create("/stay", b"before")
    term = z.status(leader)["term"]
    k = next(i for i, a in enumerate(addresses) if a != leader)
    sh("ip", "link", "set", netcell["veths"][k], "down")       # cut a follower off
    try:
        for i in range(30):                                    # many election timeouts pass
            z.set("/stay", f"v{i}".encode())
            time.sleep(0.1)
    finally:
        sh("ip", "link", "set", netcell["veths"][k], "up")      # heal
    wait_until(lambda: z.status(addresses[k])["applied"] >= z.status(leader)["applied"], 30,
               "the follower to catch up")
    assert leader_of(z, addresses) == leader
    assert z.status(leader)["term"] == term == z.status(addresses[k])["term"]
    assert z.get("/stay")[0] == b"v29"

"""`yard cluster up` on a new and on an existing home: unique ports, a saved
shape that comes back whole, growth applied, shrinking refused, and a clear
message when a saved port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib

import pytest

from stackyard.cluster.home import Home
from stackyard.cluster.local import LocalCluster, Ports, Settings, ShapeError

FAST = ["--heartbeat", "0.3", "--dead-after", "2", "--chunk-size", "1m"]


def yard(home, *args, timeout=120):
    env = {**os.environ, "STACKYARD_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "stackyard", *args], capture_output=True,
                       env=env, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def running(home) -> dict[str, int]:
    """role -> how many daemons of that role `cluster status` shows running."""
    rows = LocalCluster(Home.at(home)).status()
    out: dict[str, int] = {}
    for r in rows:
        if r["state"] == "running":
            out[r["role"]] = out.get(r["role"], 0) + 1
    return out


@pytest.fixture
def home(tmp_path):
    root = tmp_path / "yard"
    yield root
    if (root / "cluster.json").exists():
        LocalCluster(Home.at(root)).down()


def test_ports_are_never_handed_out_twice():
    ports = Ports("127.0.0.1", taken={1, 2})
    try:
        got = [ports.take() for _ in range(300)]
    finally:
        ports.release()
    assert len(set(got)) == len(got) and not {1, 2} & set(got)


def test_a_new_cluster_gets_distinct_ports(tmp_path):
    cluster = LocalCluster(Home.at(tmp_path), Settings(chunkservers=5, coords=5, workers=2))
    cluster._configure()
    ports = [tomllib.loads(p.read_text()).get("port") for p in (tmp_path / "conf").glob("*.toml")]
    ports = [p for p in ports if p]
    from stackyard.cluster.local import connect_available
    # three masters, chunkservers, coords, scheduler, the Spark Connect server where it can run,
    # and HBase's Thrift gateway on its fixed 9090 (table master and tablet servers
    # take any free port: clients find them through the coordination cell)
    want = 3 + 5 + 5 + 1 + (1 if connect_available() else 0) + 1
    assert len(ports) == want and len(set(ports)) == len(ports)


def test_the_saved_shape_comes_back_whole_grows_and_refuses_to_shrink(home):
    code, _, err = yard(home, "cluster", "up", "--chunkservers", "2", "--coords", "0",
                        "--workers", "0", "--replication", "1", *FAST)
    assert code == 0, err
    assert running(home) == {"master": 3, "chunkserver": 2}
    yard(home, "cluster", "down")

    code, out, err = yard(home, "cluster", "up")            # no flags: the same shape
    assert code == 0, err
    assert running(home) == {"master": 3, "chunkserver": 2}  # not 3 coords and 2 workers
    yard(home, "cluster", "down")

    for flags, named in ((["--chunkservers", "1"], "--chunkservers 1"),
                         (["--coords", "3"], "--coords 3"),
                         (["--masters", "1"], "--masters 1"),
                         (["--workers", "1", "--chunkservers", "2"], None)):
        code, out, err = yard(home, "cluster", "up", *flags)
        if named is None:                                    # growth: the change applies
            assert code == 0, err
            assert running(home) == {"master": 3, "chunkserver": 2, "scheduler": 1, "worker": 1}
            yard(home, "cluster", "down")
            continue
        assert code == 1 and named in err and "Traceback" not in err
        assert running(home) == {}                           # refused before anything started

    code, out, err = yard(home, "cluster", "up", "--chunkservers", "3", "--replication", "2")
    assert code == 0, err
    assert "chunkservers 2 -> 3" in out and "replication 1 -> 2" in out
    assert running(home) == {"master": 3, "chunkserver": 3, "scheduler": 1, "worker": 1}
    import stackyard as sy
    with sy.connect(home=str(home), embedded=False) as client:
        with client.fs.open("/after", "wb") as f:
            f.write(b"x")
        assert client.fs.stat("/after")["replication"] == 2  # the master's new default


def test_a_taken_saved_port_is_named_with_a_way_out(home):
    code, _, err = yard(home, "cluster", "up", "--chunkservers", "1", "--coords", "0",
                        "--workers", "0", "--replication", "1", *FAST)
    assert code == 0, err
    yard(home, "cluster", "down")
    port = tomllib.loads(Home.at(home).conf("chunkserver-1").read_text())["port"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        code, out, err = yard(home, "cluster", "up")
    assert code == 1 and "Traceback" not in err
    assert f"chunkserver-1 cannot bind its saved port 127.0.0.1:{port}" in err
    assert running(home) == {}


def test_shape_changes_refused_in_the_api_too(tmp_path):
    h = Home.at(tmp_path)
    LocalCluster(h, Settings(chunkservers=3, coords=0, workers=0))._configure()
    with pytest.raises(ShapeError, match="never removes one"):
        LocalCluster(h, Settings(chunkservers=2, coords=0, workers=0))
    assert LocalCluster(h).settings.coords == 0


def test_a_running_cluster_grows_without_a_restart(home):
    code, _, err = yard(home, "cluster", "up", "--chunkservers", "1", "--coords", "0",
                        "--workers", "0", "--replication", "1", *FAST)
    assert code == 0, err
    master = LocalCluster(Home.at(home)).daemon("master")["pid"]
    code, out, err = yard(home, "cluster", "up", "--chunkservers", "2", "--workers", "1")
    assert code == 0, err
    assert "Added chunkserver-2" in out and "worker-1" in out
    assert running(home) == {"master": 3, "chunkserver": 2, "scheduler": 1, "worker": 1}
    assert LocalCluster(Home.at(home)).daemon("master")["pid"] == master   # never restarted
    code, _, err = yard(home, "cluster", "up", "--replication", "2")
    assert code == 1 and "run `yard cluster down` first" in err
    code, _, err = yard(home, "cluster", "up")
    assert code == 1 and "already running" in err

"""The mini cluster: real daemon processes on 127.0.0.1 with random ports,
under a temporary STACKYARD_HOME, stopped by pid when the test ends (also
on failure). Like Hadoop's MiniDFSCluster."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stackyard.cluster.home import Home
from stackyard.cluster.local import LocalCluster, Settings
from stackyard.connect import connect

# A pytest-xdist worker's __main__ is execnet's `python -c` module, with no
# file and no spec; pyspark-client takes such a process for its own doctest
# runner and exits it on import of pyspark.sql.connect (its connect/utils.py).
# A spec named __main__ says otherwise, and multiprocessing's spawn (dask's
# process pool) then leaves the main module alone, as it must here.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    import importlib.machinery
    _main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)

MiB = 1 << 20
FAST = dict(chunk_size=1 * MiB, heartbeat_interval=0.3, dead_after=2.0, lease_timeout=2.0, coords=0,
            masters=1, trash_interval=0,
            report_interval=2.0, workers=0,
            connect=False, tables=False, search=False)


class MiniCluster:
    def __init__(self, root: Path, **settings):
        self.home = Home.at(root)
        self.cluster = LocalCluster(self.home, Settings(**{**FAST, **settings}))
        self.state = self.cluster.up()
        self.client = connect(home=str(root), embedded=False)
        self.fs = self.client.fs

    @property
    def master(self) -> str:
        return self.home.read_state()["master"]

    def chunkservers(self) -> list[dict]:
        return [d for d in self.home.read_state()["daemons"] if d["role"] == "chunkserver"]

    def kill(self, name: str) -> None:
        self.cluster.kill(name, sig=9)

    def restart(self, name: str) -> dict:
        return self.cluster.restart(name)

    def start(self, name: str) -> dict:
        return self.cluster.start(dict(self.cluster.daemon(name)))

    def yard(self, *args: str, input: bytes | None = None, check: bool = False,
             env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        e = {**os.environ, "STACKYARD_HOME": str(self.home.root), **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "stackyard", *args], capture_output=True,
                              input=input, env=e, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"yard {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout.decode()}\n{proc.stderr.decode()}")
        return proc

    def chunk_files(self, server: str) -> list[Path]:
        return sorted((self.home.data(server) / "chunks").glob("*/*.dat"))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.cluster.down()


@pytest.fixture
def make_cluster(tmp_path_factory) -> Callable[..., MiniCluster]:
    made: list[MiniCluster] = []

    def make(**settings) -> MiniCluster:
        c = MiniCluster(tmp_path_factory.mktemp("yard"), **settings)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> MiniCluster:
    """One 3-chunkserver cluster shared by the tests of a module."""
    c = MiniCluster(tmp_path_factory.mktemp("yard"))
    yield c
    c.close()


@pytest.fixture
def rng(request) -> random.Random:
    seed = int(os.environ.get("STACKYARD_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed={seed} (rerun with STACKYARD_TEST_SEED={seed})")
    return random.Random(seed)


def wait_until(cond: Callable[[], object], timeout: float, what: str, period: float = 0.1):
    """Poll COND until it is truthy; fail naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except Exception as exc:  # the condition may fail while the cluster heals
            last = exc
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def replica_counts(fs, path: str) -> list[int]:
    report = fs.fsck(path)
    return [len(c["live"]) for f in report["files"] for c in f["chunks"]]


@pytest.fixture
def cell(make_cluster):
    """A cluster with a 3-replica coordination cell, and a client of it as `.coord`."""
    from stackyard.coord.client import CoordClient
    from stackyard.net.auth import Secret
    c = make_cluster(chunkservers=1, replication=1, coords=3, coord_snapshot_entries=40)
    c.new_coord = lambda timeout=3.0, cache=False: CoordClient(
        c.cluster.coord_addresses(), Secret.load(c.home.secret_file), session_timeout=timeout,
        cache=cache)
    c.coord = c.new_coord()
    yield c
    c.coord.close()


def assert_refuses_strangers(address: str, rpc: str) -> None:
    """The RPC port at ADDRESS answers no credentials with 401 and a wrong
    secret with an AuthError."""
    import http.client

    from stackyard import errors
    from stackyard.net.auth import Secret
    from stackyard.net.client import HttpPool
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", f"/rpc/{rpc}", body=b"\x80")
    assert conn.getresponse().status == 401          # no credentials
    conn.close()
    wrong = HttpPool(Secret.generate())
    try:
        wrong.call(address, rpc)
    except errors.AuthError:
        pass
    else:
        raise AssertionError(f"{address} answered {rpc} under a wrong secret")
    finally:
        wrong.close()

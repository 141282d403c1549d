"""The namespace's bounds (HDFS's fs-limits) against a real master, through
WebHDFS as a token holder would send them: the deepest and longest allowed
paths work end to end and survive a restart from a checkpoint; one past
them, control characters and an absurd replication are refused with 400 and
a message; the master's pages and RPCs keep working."""

from __future__ import annotations

import getpass
import time

import pytest
import requests

from stackyard.dfs.namespace import MAX_PATH_DEPTH, MAX_PATH_LENGTH
from stackyard.net.auth import Secret

DEEP = "/deep" + "/d" * (MAX_PATH_DEPTH - 1)                   # 1000 components


def longest() -> str:
    name = "n" * 199
    path = "/long"
    while len(path) + 1 + len(name) <= MAX_PATH_LENGTH:
        path += "/" + name
    return path + "/" + "x" * (MAX_PATH_LENGTH - len(path) - 1)


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), checkpoint_log_bytes=16 * 1024)
    yield c
    c.close()


def webhdfs(c, path: str, op: str, method: str = "PUT", **params):
    token = Secret.load(c.home.secret_file).delegation_token(getpass.getuser(), 3600)
    return requests.request(method, f"http://{c.master}/webhdfs/v1{path}",
                            params={"op": op, "delegation": token, **params},
                            allow_redirects=False, timeout=60)


def test_the_deepest_and_longest_paths_work_and_one_more_is_refused(bounded):
    c = bounded
    assert webhdfs(c, DEEP, "MKDIRS").json() == {"boolean": True}
    with c.fs.open(DEEP[:-2] + "/f", "wb") as f:            # a file 1000 deep
        f.write(b"at the bottom")
    r = webhdfs(c, DEEP + "/d/d", "MKDIRS")
    assert r.status_code == 400 and "deeper than 1000" in r.text
    path = longest()
    assert len(path) == MAX_PATH_LENGTH
    assert webhdfs(c, path, "MKDIRS").json() == {"boolean": True}
    r = webhdfs(c, path + "y", "MKDIRS")
    assert r.status_code == 400 and "longer than 8000" in r.text
    r = webhdfs(c, "/" + "z" * 256, "MKDIRS")
    assert r.status_code == 400 and "longer than 255 bytes" in r.text
    # every walk of the tree still works
    assert c.fs.du("/deep")["directories"] == MAX_PATH_DEPTH
    assert c.fs.cat(DEEP[:-2] + "/f") == b"at the bottom"
    assert len(c.fs.ls("/deep", recursive=True)) == MAX_PATH_DEPTH   # 999 dirs and the file
    assert c.fs.fsck("/")["files"]
    assert webhdfs(c, "/deep", "GETCONTENTSUMMARY", "GET").json()["ContentSummary"][
        "directoryCount"] == MAX_PATH_DEPTH
    r = c.yard("fsck", "/")
    assert r.returncode == 0, r.stderr
    assert c.fs.call("cluster")["files"] >= 1


def test_a_master_restarts_after_the_deepest_tree_and_longest_path(bounded):
    c = bounded
    c.fs.mkdir(DEEP, parents=True)
    c.fs.mkdir(longest(), parents=True)
    for i in range(300):            # past checkpoint_log_bytes: the image holds the tree
        c.fs.mkdir(f"/fill/{i:04d}", parents=True)
    assert list((c.home.data("master") / "journal").glob("checkpoint.*"))
    start = time.monotonic()
    c.restart("master")
    c.cluster.wait_live(3, timeout=60)
    elapsed = time.monotonic() - start
    print(f"master restart with a 1000-deep tree: {elapsed:.2f} s")
    assert c.fs.isdir(DEEP) and c.fs.isdir(longest())
    assert c.fs.call("cluster")["skipped"] == []


@pytest.mark.parametrize("name", ["new\nline", "esc\x1b[31mred", "tab\there", "del\x7f"])
def test_control_characters_in_names_are_refused(bounded, name):
    r = webhdfs(bounded, f"/ctl/{name}", "MKDIRS")
    assert r.status_code == 400 and "control characters" in r.text
    with pytest.raises(ValueError, match="control characters"):
        bounded.fs.mkdir(f"/ctl/{name}")


def test_replication_is_bounded_everywhere(bounded):
    c = bounded
    with c.fs.open("/rep", "wb") as f:
        f.write(b"x")
    for bad in (0, 513, 100_000):
        r = webhdfs(c, "/rep", "SETREPLICATION", replication=bad)
        assert r.status_code == 400 and "1..512" in r.text, bad
        with pytest.raises(ValueError, match="1..512"):
            c.fs.call("setrep", path="/rep", replication=bad)
    r = c.yard("dfs", "-setrep", "100000", "/rep")
    assert r.returncode == 1 and b"1..512" in r.stderr and b"Traceback" not in r.stderr
    assert c.fs.stat("/rep")["replication"] == 3


def test_a_mode_or_size_out_of_range_changes_nothing(bounded):
    """A mode that cannot be logged once made a directory in memory alone,
    lost at the next restart with everything written under it."""
    c = bounded
    for mode in ("7" * 30, "77777"):
        r = webhdfs(c, "/modes/x", "MKDIRS", permission=mode)
        assert r.status_code == 400 and ("mode" in r.text or "out of range" in r.text), r.text
    assert not c.fs.exists("/modes/x")
    assert c.fs.ls("/") is not None
    r = requests.put(f"http://{c.master}/webhdfs/v1/modes/big", timeout=60, data=b"x",
                     params={"op": "CREATE", "replication": str(10**23), "delegation":
                             Secret.load(c.home.secret_file).delegation_token(
                                 getpass.getuser(), 600)})
    assert r.status_code == 400, r.text
    assert not c.fs.exists("/modes/big")

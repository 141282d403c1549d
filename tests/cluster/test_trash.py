"""HDFS's trash against a live cluster: -rm moves to the user's .Trash, the
active master's emptier checkpoints and then deletes it (freeing the
replicas), -skipTrash and paths already in the trash are deleted at once,
-expunge -immediate empties it now; GETSERVERDEFAULTS reports the interval."""

from __future__ import annotations

import getpass

import pytest
import requests

from stackyard.net.auth import Secret
from tests.conftest import MiB, wait_until


@pytest.fixture(scope="module")
def tc(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), trash_interval=60)
    yield c
    c.close()


def test_rm_moves_to_the_users_trash(tc):
    c, fs = tc, tc.fs
    user = fs.user
    with fs.open("/t/f", "wb") as f:
        f.write(b"x" * (MiB + 5))
    r = c.yard("dfs", "-rm", "/t/f", check=True)
    trashed = f"/user/{user}/.Trash/Current/t/f"
    assert r.stdout.decode().strip().endswith(f"' to trash at: yard://{fs.master}{trashed}")
    assert r.stdout.decode().startswith(f"Moved: 'yard://{fs.master}/t/f'")
    assert not fs.exists("/t/f") and fs.cat(trashed) == b"x" * (MiB + 5)
    with fs.open("/t/f", "wb") as f:                  # the same name again: a suffix
        f.write(b"second")
    c.yard("dfs", "-rm", "/t/f", check=True)
    names = sorted(e["name"] for e in fs.ls(f"/user/{user}/.Trash/Current/t"))
    assert names[0] == "f" and names[1].startswith("f") and len(names) == 2


def test_the_emptier_checkpoints_the_trash_then_frees_it(make_cluster):
    # a 6 s trash, emptied every 1.2 s: the whole cycle inside a test
    c = make_cluster(trash_interval=0.1, trash_checkpoint_interval=0.02)
    fs, user = c.fs, c.fs.user
    with fs.open("/e/f", "wb") as f:
        f.write(b"y" * (MiB + 5))
    held = {loc.handle for loc in fs.chunk_locations("/e/f")}
    c.yard("dfs", "-rm", "/e/f", check=True)
    assert not fs.exists("/e/f")
    wait_until(lambda: not fs.exists(f"/user/{user}/.Trash/Current"), 20,
               "the emptier to checkpoint Current")
    wait_until(lambda: not fs.ls(f"/user/{user}/.Trash"), 30,
               "the emptier to delete the checkpoint past the interval")
    wait_until(lambda: not {p.stem for s in c.chunkservers() for p in c.chunk_files(s["name"])}
               & held, 30, "the trashed file's replicas deleted")


def test_skip_trash_paths_in_trash_and_expunge(tc):
    c, fs = tc, tc.fs
    user = fs.user
    for name in ("a", "b"):
        with fs.open(f"/s/{name}", "wb") as f:
            f.write(name.encode())
    r = c.yard("dfs", "-rm", "-skipTrash", "/s/a", check=True)
    assert r.stdout.decode() == "Deleted /s/a\n"
    c.yard("dfs", "-rm", "/s/b", check=True)
    trashed = f"/user/{user}/.Trash/Current/s/b"
    r = c.yard("dfs", "-rm", trashed, check=True)        # in the trash: gone for good
    assert r.stdout.decode() == f"Deleted {trashed}\n" and not fs.exists(trashed)
    with fs.open("/s/c", "wb") as f:
        f.write(b"c")
    c.yard("dfs", "-rm", "-r", "/s", check=True)
    # .Trash/Current/s is there already (from /s/b): as Hadoop, a time suffix
    moved = [e["name"] for e in fs.ls(f"/user/{user}/.Trash/Current")
             if e["name"].startswith("s") and e["name"] != "s"]
    assert len(moved) == 1 and fs.exists(f"/user/{user}/.Trash/Current/{moved[0]}/c")
    c.yard("dfs", "-expunge", "-immediate", check=True)
    assert not fs.ls(f"/user/{user}/.Trash")


def test_server_defaults_over_rpc_and_webhdfs(tc):
    assert tc.fs.server_defaults()["trash_interval"] == 60
    token = Secret.load(tc.home.secret_file).delegation_token(getpass.getuser(), 3600)
    r = requests.get(f"http://{tc.master}/webhdfs/v1/?op=GETSERVERDEFAULTS&delegation={token}",
                     timeout=30)
    d = r.json()["FsServerDefaults"]
    assert r.status_code == 200 and d["replication"] == 3 and d["blockSize"] == MiB
    assert d["trashInterval"] == 60

"""HDFS's truncate against a live cluster: the file reads and appends at its
new length at once, later chunks' replicas leave the disks, the cut chunk's
replicas are trimmed in the background, and the cut survives a master
restart. The shell's `-truncate` and WebHDFS's TRUNCATE are in
test_shell_hadoop.py and here."""

from __future__ import annotations

import getpass
import os

import pytest
import requests

from stackyard.net.auth import Secret
from tests.conftest import MiB, wait_until


def replica_sizes(c, handle: str) -> list[int]:
    return [p.stat().st_size for s in c.chunkservers() for p in c.chunk_files(s["name"])
            if p.stem == handle]


def test_truncate_reads_appends_trims_and_survives_a_master_restart(cluster):
    c, fs, path = cluster, cluster.fs, "/trunc/f.bin"
    data = os.urandom(2 * MiB + 300_000)
    with fs.open(path, "wb") as f:
        f.write(data)
    third = fs.chunk_locations(path)[2].handle
    cut = MiB + 65536 + 123                      # inside the second chunk, mid-block
    assert fs.truncate(path, cut) is True
    assert fs.stat(path)["length"] == cut and fs.stat(path)["chunks"] == 2
    assert fs.cat(path) == data[:cut]
    # appended at once, whether or not the trims have reached the servers yet
    with fs.open(path, "ab") as f:
        f.write(b"tail")
    assert fs.cat(path) == data[:cut] + b"tail"

    fs.truncate(path, cut - 10)
    second = fs.chunk_locations(path)[1].handle
    want = cut - 10 - MiB
    wait_until(lambda: replica_sizes(c, second) == [want] * 3, 30,
               f"replicas of the cut chunk trimmed to {want} bytes")
    wait_until(lambda: not replica_sizes(c, third), 30, "the dropped chunk's replicas deleted")
    with fs.open("/trunc/same.bin", "wb") as f:
        f.write(data[:cut - 10])
    assert fs.checksum(path) == fs.checksum("/trunc/same.bin")
    assert fs.fsck("/trunc")["status"] == "HEALTHY"

    c.restart("master")
    c.cluster.wait_live(3, timeout=60)
    assert fs.stat(path)["length"] == cut - 10 and fs.cat(path) == data[:cut - 10]
    assert fs.truncate(path, 0) and fs.cat(path) == b""


def test_truncate_refuses_what_hdfs_refuses(cluster):
    fs = cluster.fs
    with fs.open("/trunc/small", "wb") as f:
        f.write(b"0123456789")
    with pytest.raises(ValueError, match="Current size: 10, truncate size: 11"):
        fs.truncate("/trunc/small", 11)
    with pytest.raises(ValueError, match="negative file size: -1"):
        fs.truncate("/trunc/small", -1)
    with pytest.raises(FileNotFoundError):
        fs.truncate("/trunc/none", 0)
    with pytest.raises(IsADirectoryError):
        fs.truncate("/trunc", 0)
    w = fs.open("/trunc/open", "wb")
    w.write(b"being written")
    w.flush()
    try:
        with pytest.raises(OSError, match="TRUNCATE_FILE"):
            fs.truncate("/trunc/open", 1)
    finally:
        w.close()
    assert fs.cat("/trunc/small") == b"0123456789"


def test_webhdfs_truncate(cluster):
    fs = cluster.fs
    with fs.open("/trunc/web", "wb") as f:
        f.write(b"hello world")
    token = Secret.load(cluster.home.secret_file).delegation_token(getpass.getuser(), 3600)

    def post(**params):
        return requests.post(f"http://{cluster.master}/webhdfs/v1/trunc/web",
                             params={"op": "TRUNCATE", "delegation": token, **params}, timeout=60)
    r = post(newlength="5")
    assert r.status_code == 200 and r.json() == {"boolean": True}
    assert fs.cat("/trunc/web") == b"hello"
    for bad in ({}, {"newlength": "x"}, {"newlength": "-3"}, {"newlength": "99"}):
        r = post(**bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["RemoteException"]["message"]
    assert requests.post(f"http://{cluster.master}/webhdfs/v1/trunc/web",
                         params={"op": "TRUNCATE", "newlength": "1"}, timeout=60).status_code == 401

"""The cluster secret on every request, chunk access tokens, strict handles."""

from __future__ import annotations

import os
import stat
import time

import pytest

import stackyard as sy
from stackyard.errors import AuthError
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool


def test_secret_file_is_private(cluster):
    assert stat.S_IMODE(os.stat(cluster.home.secret_file).st_mode) == 0o600


def test_wrong_secret_refused(cluster):
    bad = sy.connect(master=cluster.master, secret=b"not-the-secret-at-all").fs
    with pytest.raises(AuthError, match="wrong cluster secret"):
        bad.ls("/")
    for cs in cluster.chunkservers():
        pool = HttpPool(Secret(b"not-the-secret-at-all"))
        with pytest.raises(AuthError, match="wrong cluster secret"):
            pool.call(cs["address"], "info")


def test_missing_secret_refused(cluster):
    import http.client
    host, port = cluster.master.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/rpc/list", body=b"\x81\xa4path\xa1/")
    resp = conn.getresponse()
    assert resp.status == 401
    assert b"missing credentials" in resp.read()
    conn.request("GET", "/status")
    resp = conn.getresponse()
    assert resp.status == 401 and resp.getheader("WWW-Authenticate").startswith("Basic")
    resp.read()


def test_cli_with_wrong_secret_says_so(cluster, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cluster.json").write_text((cluster.home.root / "cluster.json").read_text())
    (home / "secret").write_text("a-different-secret-of-enough-length\n")
    r = cluster.yard("dfs", "-ls", "/", env={"STACKYARD_HOME": str(home)})
    assert r.returncode == 1
    assert "authentication failed: wrong cluster secret" in r.stderr.decode()
    assert b"Traceback" not in r.stderr


def test_chunk_data_needs_a_token_for_that_chunk(cluster):
    fs = cluster.fs
    with fs.open("/sec/a", "wb") as f:
        f.write(b"secret data A")
    with fs.open("/sec/b", "wb") as f:
        f.write(b"secret data B")
    a = fs.call("locations", path="/sec/a")["chunks"][0]
    b = fs.call("locations", path="/sec/b")["chunks"][0]
    addr = a["locations"][0]["address"]
    pool = fs.pool

    def read(handle, token):
        resp = pool.request(addr, "GET", "/chunk/read", {
            "handle": handle, "offset": 0, "length": 5, "version": 1, "token": token})
        body = resp.read()
        return resp.status, body

    assert read(a["handle"], a["token"])[0] == 200
    status, body = read(a["handle"], "")
    assert status == 401 and b"missing chunk access token" in body
    status, body = read(a["handle"], b["token"])
    assert status == 401 and b"does not grant" in body
    secret = Secret.load(cluster.home.secret_file)
    expired = secret.chunk_token(a["handle"], "r", lifetime=-1)
    status, body = read(a["handle"], expired)
    assert status == 401 and b"expired" in body
    status, body = read(a["handle"], a["token"][:-4] + "0000")
    assert status == 401 and b"invalid chunk access token" in body
    write_only = secret.chunk_token(a["handle"], "w", 60)
    assert read(a["handle"], write_only)[0] == 401


@pytest.mark.parametrize("handle", ["../../etc/passwd", "ABCDEF0123456789", "0123",
                                    "0123456789abcdef/..", "0123456789abcdeg"])
def test_bad_handles_never_become_paths(cluster, handle):
    secret = Secret.load(cluster.home.secret_file)
    addr = cluster.chunkservers()[0]["address"]
    resp = cluster.fs.pool.request(addr, "GET", "/chunk/read", {
        "handle": handle, "offset": 0, "length": 1,
        "token": secret.chunk_token(handle, "r", 60)})
    body = resp.read()
    assert resp.status == 400 and b"not a chunk handle" in body


def test_signature_replay_window(cluster):
    secret = Secret.load(cluster.home.secret_file)
    header = secret.sign("POST", "/rpc/cluster", cluster.master, now=time.time() - 3600)
    import http.client
    host, port = cluster.master.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/rpc/cluster", body=b"\x80", headers={"Authorization": header})
    resp = conn.getresponse()
    assert resp.status == 401 and b"expired" in resp.read()


def test_daemons_bind_loopback_only(cluster):
    state = cluster.home.read_state()
    for d in state["daemons"]:
        assert d["address"].startswith("127.0.0.1:")

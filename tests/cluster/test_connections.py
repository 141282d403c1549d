"""What a daemon keeps for whom: idle and half-sent connections are closed,
connections that never authenticate are capped, control bodies are
bounded, and what daemons write to disk is for the cluster's user alone."""

from __future__ import annotations

import http.client
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

import stackyard as sy
from stackyard.net.admission import MAX_UNTRUSTED
from stackyard.net.auth import Secret


@pytest.fixture
def quick(make_cluster, monkeypatch):
    monkeypatch.setenv("STACKYARD_IDLE_TIMEOUT", "2")       # inherited by the daemons
    return make_cluster(chunkservers=1, replication=1)


def is_closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_idle_and_half_sent_connections_are_closed(quick):
    host, port = quick.master.split(":")
    socks = []
    for i in range(40):
        s = socket.create_connection((host, int(port)))
        if i % 2:
            s.sendall(b"POST /rpc/list HTTP/1.1\r\nHost: x\r\nContent-Le")   # half a header
        s.setblocking(False)
        socks.append(s)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(is_closed(s) for s in socks):
        time.sleep(0.2)
    assert all(is_closed(s) for s in socks)
    for s in socks:
        s.close()
    assert quick.fs.ls("/") is not None                     # and it serves as before


def test_connections_that_never_authenticate_cannot_lock_clients_out(cluster):
    host, port = cluster.master.split(":")
    socks = [socket.create_connection((host, int(port))) for _ in range(MAX_UNTRUSTED + 40)]
    for s in socks:
        s.setblocking(False)
    time.sleep(0.5)
    assert sum(is_closed(s) for s in socks) >= 40           # the oldest made room
    assert cluster.fs.call("list", path="/") is not None    # a real client still gets in
    for s in socks:
        s.close()


def test_a_refused_request_closes_its_connection(cluster):
    host, port = cluster.master.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 401")                # and then the server hung up


def test_a_control_body_past_its_bound_is_refused_unread(cluster):
    secret = Secret.load(cluster.home.secret_file)
    from stackyard.net.auth import body_digest
    header = secret.sign("POST", "/rpc/mkdir", cluster.master, body_digest(b"x"))
    host, port = cluster.master.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/rpc/mkdir")
    conn.putheader("Authorization", header)
    conn.putheader("Content-Length", str(200 << 20))
    conn.endheaders()
    conn.send(b"x" * 1000)                                 # 200 MiB promised, never sent
    resp = conn.getresponse()
    assert resp.status == 413 and b"exceeds" in resp.read()
    conn.close()


def test_daemon_files_are_private(cluster):
    fs = cluster.fs
    with fs.open("/private.bin", "wb") as f:
        f.write(b"not for other local users")
    fs.call("chmod", path="/private.bin", mode=0)
    home = cluster.home.root
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for d in (home / "data").iterdir():
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    chunk = next(p for cs in cluster.chunkservers() for p in cluster.chunk_files(cs["name"]))
    assert stat.S_IMODE(chunk.stat().st_mode) == 0o600
    for p in (home / "data" / "master").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    if os.geteuid() == 0:                                  # as `nobody`, it cannot be read
        probe = subprocess.run(
            [sys.executable, "-c", "import os, sys; os.setgid(65534); os.setuid(65534); "
             "open(sys.argv[1], 'rb').read()", str(chunk)], capture_output=True)
        assert probe.returncode != 0 and b"PermissionError" in probe.stderr


def test_a_secret_path_that_does_not_exist_is_named(cluster, tmp_path):
    with pytest.raises(FileNotFoundError, match="cluster secret file not found") as info:
        sy.connect(master=cluster.master, secret=str(tmp_path / "mistyped" / "secret"))
    assert str(tmp_path / "mistyped") in str(info.value)
    assert sy.connect(master=cluster.master, secret=str(cluster.home.secret_file)).fs.ls("/") \
        is not None

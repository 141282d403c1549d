"""`yard cluster up --tls`: a cluster CA and one certificate per daemon, TLS on
every connection (files, jobs, coordination, WebHDFS), clients that check the
daemon's certificate, and nothing readable on the wire."""

from __future__ import annotations

import getpass
import socket
import ssl
import stat

import pytest
import requests

import stackyard as sy
from stackyard.cluster import tls
from stackyard.errors import ClusterUnavailable
from stackyard.net.auth import Secret


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), tls=True, chunkservers=2, replication=2,
                    workers=1, coords=1)
    yield c
    c.close()


def test_every_api_works_over_tls(secure):
    c = secure
    data = bytes(range(256)) * 12_000                        # 3 MiB: three chunks, two replicas
    with c.fs.open("/tls/data.bin", "wb") as f:
        f.write(data)
    assert c.fs.cat("/tls/data.bin") == data
    with c.client.context("tls") as sc:                     # tasks, shuffles, results
        assert sc.parallelize(range(100), 4).map(lambda x: (x % 3, x)) \
            .reduceByKey(lambda a, b: a + b).collectAsMap() == {0: 1683, 1: 1617, 2: 1650}
    c.client.coord.create("/tls", b"ok")
    assert c.client.coord.get("/tls")[0] == b"ok"
    ca = str(c.home.root / "tls" / "ca.pem")
    token = Secret.load(c.home.secret_file).delegation_token(getpass.getuser(), 600)
    r = requests.get(f"https://{c.master}/webhdfs/v1/tls/data.bin",
                     params={"op": "OPEN", "delegation": token}, verify=ca, timeout=30)
    assert r.status_code == 200 and r.content == data        # redirected over https too


def test_keys_are_private_and_each_daemon_has_its_own_certificate(secure):
    d = secure.home.root / "tls"
    assert stat.S_IMODE((d / "ca.key").stat().st_mode) == 0o600
    names = {p.stem for p in d.glob("*.pem")} - {"ca"}
    assert {"master", "chunkserver-1", "chunkserver-2", "coord-1", "scheduler",
            "worker-1"} <= names


def test_plain_http_gets_nothing(secure):
    host, port = secure.master.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = s.recv(100)
        except OSError:
            reply = b""
    assert not reply.startswith(b"HTTP/")


def test_a_daemon_is_checked_against_the_cluster_ca(secure, tmp_path):
    other = tls.make_ca(tmp_path / "other")                  # a CA the cluster never used
    client = sy.connect(master=secure.master, secret=secure.home.secret_file, tls_ca=other)
    with pytest.raises(ClusterUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
        client.fs.ls("/")
    host, port = secure.master.split(":")
    ctx = ssl.create_default_context(cafile=str(secure.home.root / "tls" / "ca.pem"))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:    # the address is in its SAN
            assert s.version() in ("TLSv1.2", "TLSv1.3")
    good = sy.connect(master=secure.master, secret=secure.home.secret_file)   # finds tls/ca.pem
    assert good.fs.exists("/tls/data.bin") or good.fs.ls("/") is not None

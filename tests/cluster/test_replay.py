"""A signed request is good once, for one daemon, with one body: the attacks
of the hardening issue against real daemons (a captured header replayed
with another body, to another daemon, or again; a timestamp that never
expires; a pipeline write forwarded where the master placed nothing)."""

from __future__ import annotations

import getpass
import http.client

import msgpack
import pytest

from stackyard.net.auth import STREAMED, Secret, body_digest


def send(address: str, method: str, path: str, body: bytes, header: str):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Authorization": header,
                                                       "Content-Type": "application/x-msgpack"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def secret(cluster):
    return Secret.load(cluster.home.secret_file)


def mkdir_body(path: str, user: str = getpass.getuser()) -> bytes:
    return msgpack.packb({"path": path, "parents": True, "mode": 0o755, "user": user,
                          "groups": []})


def test_a_captured_header_replayed_with_another_body_is_refused(cluster, secret):
    harmless = mkdir_body("/replay/harmless")
    header = secret.sign("POST", "/rpc/mkdir", cluster.master, body_digest(harmless))
    status, body = send(cluster.master, "POST", "/rpc/mkdir", mkdir_body("/evil", "root"), header)
    assert status == 401 and b"not the one that was signed" in body
    assert not cluster.fs.exists("/evil")


def test_a_captured_header_is_good_once(cluster, secret):
    harmless = mkdir_body("/replay/once")
    header = secret.sign("POST", "/rpc/mkdir", cluster.master, body_digest(harmless))
    assert send(cluster.master, "POST", "/rpc/mkdir", harmless, header)[0] == 200
    cluster.fs.rm("/replay/once", recursive=True)
    status, body = send(cluster.master, "POST", "/rpc/mkdir", harmless, header)
    assert status == 401 and b"replayed request" in body
    assert not cluster.fs.exists("/replay/once")


def test_a_header_signed_for_one_daemon_is_refused_by_every_other(cluster, secret):
    servers = [cs["address"] for cs in cluster.chunkservers()]
    body = msgpack.packb({})
    header = secret.sign("POST", "/rpc/info", servers[0], body_digest(body))
    for other in [cluster.master, *servers[1:]]:
        status, reply = send(other, "POST", "/rpc/info", body, header)
        assert status == 401 and f"signed for {servers[0]}".encode() in reply, other
    assert send(servers[0], "POST", "/rpc/info", body, header)[0] == 200


@pytest.mark.parametrize("ts", ["nan", "inf"])
def test_a_timestamp_that_never_expires_is_refused(cluster, secret, ts):
    body = msgpack.packb({"path": "/", "user": "alice", "groups": []})
    fields = secret.sign("POST", "/rpc/list", cluster.master, body_digest(body)).split(" ")
    fields[1] = ts
    fields[6] = secret.mac("\n".join(["yard-request-v2", "POST", "/rpc/list", *fields[1:6]]))
    status, reply = send(cluster.master, "POST", "/rpc/list", body, " ".join(fields))
    assert status == 401 and b"finite" in reply


def test_an_unsigned_body_and_a_stray_streamed_body_are_refused(cluster, secret):
    body = mkdir_body("/replay/nobody")
    header = secret.sign("POST", "/rpc/mkdir", cluster.master)          # "no body"
    status, reply = send(cluster.master, "POST", "/rpc/mkdir", body, header)
    assert status == 401 and b"does not cover" in reply
    header = secret.sign("POST", "/rpc/mkdir", cluster.master, STREAMED)
    status, reply = send(cluster.master, "POST", "/rpc/mkdir", body, header)
    assert status == 401 and b"takes no streamed body" in reply
    assert not cluster.fs.exists("/replay/nobody")


def test_a_pipeline_write_goes_only_where_the_master_placed_it(cluster, secret):
    fs = cluster.fs
    fs.call("create", path="/replay/pipe", overwrite=True, replication=1,
            client=fs.client_id)
    begin = fs.call("begin_write", path="/replay/pipe", client=fs.client_id, index=0,
                    exclude=[])
    placed = [m["address"] for m in begin["pipeline"]]
    others = [cs["address"] for cs in cluster.chunkservers() if cs["address"] not in placed]
    import crc32c
    data = b"x" * 1000
    for stray in (others[0], "127.0.0.1:9"):
        query = {"handle": begin["handle"], "version": begin["version"], "offset": 0,
                 "length": len(data), "crc": crc32c.crc32c(data), "token": begin["token"],
                 "next": stray}
        resp = fs.pool.request(placed[0], "POST", "/chunk/write", query, body=data,
                               streamed=True)
        reply = resp.read()
        assert resp.status == 401 and b"not in the pipeline the master placed" in reply
    assert fs.pool.call(placed[0], "info")["server_id"]     # still up and serving


def test_a_captured_submit_cannot_carry_another_payload(make_cluster):
    c = make_cluster(chunkservers=1, replication=1, workers=1)
    secret = Secret.load(c.home.secret_file)
    sched = next(d["address"] for d in c.home.read_state()["daemons"] if d["role"] == "scheduler")
    harmless = msgpack.packb({"spec": {"name": "harmless"}, "payload": b"\x80\x05N."})
    header = secret.sign("POST", "/rpc/submit", sched, body_digest(harmless))
    evil = msgpack.packb({"spec": {"name": "evil"}, "payload": b"cos\nsystem\n(S'id'\ntR."})
    status, body = send(sched, "POST", "/rpc/submit", evil, header)
    assert status == 401 and b"not the one that was signed" in body
    assert c.client.engine.jobs() == []


def test_a_forged_body_does_not_spend_the_genuine_requests_nonce(cluster, secret):
    genuine = mkdir_body("/replay/genuine")
    header = secret.sign("POST", "/rpc/mkdir", cluster.master, body_digest(genuine))
    status, _ = send(cluster.master, "POST", "/rpc/mkdir", mkdir_body("/evil2", "root"), header)
    assert status == 401
    assert send(cluster.master, "POST", "/rpc/mkdir", genuine, header)[0] == 200
    assert cluster.fs.exists("/replay/genuine") and not cluster.fs.exists("/evil2")

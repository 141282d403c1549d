"""The coordination cell against forged and malformed peer messages and
requests: only a configured replica, signed as the one it names, may step a
replica; a message with a term past 2**63, a wrong type or another sender's
name is answered 400 and the cell goes on; malformed client requests get 400,
never 500."""

from __future__ import annotations

import http.client
import math

import msgpack
import pytest

from stackyard.net.auth import Secret, body_digest


def post(address: str, path: str, body: bytes, secret: Secret, sender: str = "-"):
    header = secret.sign("POST", path, address, body_digest(body), sender)
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Authorization": header})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def coords(cell) -> dict[str, str]:
    return {d["name"]: d["address"] for d in cell.home.read_state()["daemons"]
            if d["role"] == "coord"}


def statuses(cell) -> list[dict]:
    return [cell.fs.pool.call(a, "status")["result"] for a in coords(cell).values()]


def vote(term, src: str, dst: str, **extra) -> dict:
    return {"t": "VoteRequest", "term": term, "src": src, "dst": dst, "last_index": 10**6,
            "last_term": 1, **extra}


def test_forged_and_malformed_peer_messages_are_refused_and_the_cell_goes_on(cell):
    secret = Secret.load(cell.home.secret_file)
    cell.coord.create("/before", b"1")
    names = coords(cell)
    target = names["coord-1"]
    term = max(s["term"] for s in statuses(cell))
    cases = [
        ([vote(2**64 - 1, "coord-2", "coord-1")], "coord-2", 400, b"term"),
        ([vote(math.nan, "coord-2", "coord-1")], "coord-2", 400, b"term"),
        ([vote(term + 1, "coord-3", "coord-1")], "coord-2", 400, b"sent by coord-2"),
        ([vote(term + 1, "coord-2", "coord-1", bogus=1)], "coord-2", 400, b"unknown field"),
        ({"not": "a list"}, "coord-2", 400, b"list"),
        ([vote(term + 1, "coord-2", "coord-1")], "-", 401, b"this cell's replicas"),
        ([vote(term + 1, "intruder", "coord-1")], "intruder", 401, b"this cell's replicas"),
    ]
    for batch, sender, status, said in cases:
        got, body = post(target, "/raft/step", msgpack.packb(batch), secret, sender)
        assert (got, said in body) == (status, True), (batch, body)
    got, body = post(target, "/raft/step", b"\xc1\xff not msgpack", secret, "coord-2")
    assert got == 400 and b"bad raft message" in body
    # an append that would commit a write, forged by a secret holder who is no peer
    forged = [{"t": "Append", "term": term + 50, "src": "coord-2", "dst": "coord-1",
               "prev_index": 0, "prev_term": 0, "entries": [[1, term + 50, b"x"]],
               "commit": 1}]
    assert post(target, "/raft/step", msgpack.packb(forged), secret)[0] == 401
    cell.coord.create("/after", b"2")                        # the cell still serves
    assert cell.coord.get("/before")[0] == b"1" and cell.coord.get("/after")[0] == b"2"
    assert all(s["term"] < 2**32 for s in statuses(cell))


@pytest.mark.parametrize("timeout", [math.nan, math.inf, "ten"])
def test_a_session_timeout_must_be_a_finite_number(cell, timeout):
    with pytest.raises(ValueError, match="timeout: expected a number"):
        cell.coord.call("open_session", timeout=timeout)


def test_malformed_coord_requests_get_400(cell):
    secret = Secret.load(cell.home.secret_file)
    leader = next(a for a in coords(cell).values()
                  if cell.fs.pool.call(a, "status")["result"]["role"] == "leader")
    for name, args in [("multi", {"ops": [{"c": "CloseSession", "session": 1}]}),
                       ("multi", {"ops": "nope"}),
                       ("multi", {"ops": [{"c": "Create", "path": 7}]}),
                       ("create", {"path": ["/x"]}),
                       ("set", {"path": "/x", "data": "text, not bytes"}),
                       ("events", {"session": 1, "wait": math.nan}),
                       ("status", [1, 2])]:
        status, body = post(leader, f"/rpc/{name}", msgpack.packb(args), secret)
        assert status == 400 and msgpack.unpackb(body)["error"] == "EINVAL", (name, body)


def test_a_malformed_scheduler_request_gets_400(make_cluster):
    c = make_cluster(chunkservers=1, replication=1, workers=1)
    secret = Secret.load(c.home.secret_file)
    sched = next(d["address"] for d in c.home.read_state()["daemons"]
                 if d["role"] == "scheduler")
    for name, args in [("status", [1]), ("status", {"job": ["x"]}), ("submit", {"spec": 3})]:
        status, body = post(sched, f"/rpc/{name}", msgpack.packb(args), secret)
        assert 400 <= status < 500, (name, status, body)

"""Search servers failing for real: a server holding primaries killed with
SIGKILL during bulk indexing, a segment file with a flipped byte, and merges
under searches. Each ends by checking that nothing acknowledged is lost."""

from __future__ import annotations

import json
import threading
import time

import pytest
from elasticsearch import helpers

from stackyard.coord.client import CoordClient
from stackyard.net.auth import Secret
from stackyard.search.node import ROUTING
from tests.search.conftest import SEARCH, es_client, search_servers


def routing(c, index: str) -> dict:
    coords = [f"{d['address']}" for d in c.home.read_state()["daemons"] if d["role"] == "coord"]
    client = CoordClient(coords, Secret.load(c.home.secret_file))
    try:
        return json.loads(client.get(f"{ROUTING}/{index}")[0])
    finally:
        client.close()


def server_named(c, name: str) -> str:
    """The daemon (searchserver-N) whose server name is NAME (host,port,started)."""
    port = name.split(",")[1]
    for d in search_servers(c):
        if d["address"].rsplit(":", 1)[1] == port:
            return d["name"]
    raise AssertionError(f"no search server {name}")


def copy_counts(c, index: str, query: dict | None = None) -> dict[str, list[int]]:
    """Per shard, what each copy routing names counts, asked of that copy's
    server directly (a coordinator may search another copy than its own)."""
    body = {"size": 0, **({"query": query} if query else {})}
    out: dict[str, list[int]] = {}
    for sid, e in routing(c, index)["shards"].items():
        for server in [e["primary"], *(s for s, _ in e["replicas"])]:
            host, port = server.split(",")[:2]
            got = c.client.fs.pool.call(f"{host}:{port}", "search", shards=[[index, sid]],
                                        body=body)
            out.setdefault(sid, []).append(got[0]["total"])
    return out


def wait_green(es, index: str, timeout: float = 60.0) -> dict:
    h = es.cluster.health(index=index, wait_for_status="green", timeout=f"{int(timeout)}s")
    assert h["status"] == "green", h
    return h


def test_killed_primary_during_bulk_loses_no_acknowledged_document(make_cluster):
    c = make_cluster(**SEARCH)
    es = es_client(c, 3, max_retries=0)
    es.indices.create(index="k", settings={"number_of_shards": 3, "number_of_replicas": 1})
    wait_green(es, "k")
    r = routing(c, "k")
    victim = server_named(c, r["shards"]["0"]["primary"])
    if victim == "searchserver-3":        # keep the client's own server alive
        victim = server_named(c, r["shards"]["0"]["replicas"][0][0])
    acked: set[int] = set()
    errors_seen: list = []

    def load():
        for start in range(0, 30_000, 1000):
            actions = ({"_index": "k", "_id": str(j), "_source": {"v": j, "w": f"w{j % 97}"}}
                       for j in range(start, start + 1000))
            try:
                _, errs = helpers.bulk(es, actions, raise_on_error=False,
                                       raise_on_exception=False)
            except Exception as exc:  # noqa: BLE001 - a whole request refused: none acked
                errors_seen.append(exc)
                continue
            failed = {int(next(iter(e.values()))["_id"]) for e in errs}
            errors_seen.extend(errs)
            acked.update(set(range(start, start + 1000)) - failed)
    t = threading.Thread(target=load)
    t.start()
    while len(acked) < 5000 and t.is_alive():
        time.sleep(0.05)
    c.kill(victim)
    t.join(timeout=300)
    assert not t.is_alive()
    assert len(acked) > 5000
    es.indices.refresh(index="k")
    found = set()
    for h in helpers.scan(es, index="k", query={"query": {"match_all": {}}}, size=5000):
        found.add(int(h["_id"]))
    assert acked <= found, f"{len(acked - found)} acknowledged documents lost"
    # the dead server's copies are made again on the two left: green with 2 servers
    h = wait_green(es, "k")
    assert h["number_of_nodes"] == 2 and h["active_shards"] == 6
    after = routing(c, "k")
    assert any(e["term"] > 1 for e in after["shards"].values())     # a replica was promoted
    assert es.count(index="k")["count"] == len(found)


def test_flipped_byte_in_a_segment_is_refused_and_the_copy_recovered(make_cluster):
    c = make_cluster(**SEARCH)
    es = es_client(c, 1)
    es.indices.create(index="c", settings={"number_of_shards": 1, "number_of_replicas": 1})
    helpers.bulk(es, ({"_index": "c", "_id": str(i), "_source": {"t": f"doc number {i}"}}
                      for i in range(3000)))
    es.indices.flush(index="c")
    wait_green(es, "c")
    r = routing(c, "c")["shards"]["0"]
    shard_dir = next(e["path"] for e in c.fs.ls("/stackyard/search") if "/c-" in e["path"])
    seg = sorted(e["path"] for e in c.fs.ls(f"{shard_dir}/0") if e["path"].endswith(".pst"))[0]
    data = bytearray(c.fs.cat(seg))
    data[len(data) // 2] ^= 0xFF
    with c.fs.open(seg, "wb") as f:
        f.write(bytes(data))
    # the replica's server dies; the copy made on the third server must open the
    # commit, meets the corrupt file, refuses it, and gets good files from the primary
    replica = server_named(c, r["replicas"][0][0])
    client_server = "searchserver-1" if replica != "searchserver-1" else "searchserver-2"
    es = es_client(c, int(client_server.rsplit("-", 1)[1]))
    c.kill(replica)
    deadline = time.monotonic() + 60      # its lock (a 3 s session) must expire first
    while r["replicas"][0][0] in json.dumps(routing(c, "c")) and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_green(es, "c", 90)
    log = "".join(c.home.log(d["name"]).read_text() for d in search_servers(c))
    assert "checksum failed" in log
    es.indices.refresh(index="c")
    assert es.count(index="c")["count"] == 3000
    assert es.search(index="c", query={"match": {"t": "2999"}})["hits"]["total"]["value"] == 1


def test_a_replica_recovering_an_update_serves_the_document_once_started(make_cluster):
    # no housekeeping refresh ever comes: the copy must be searchable when it is started
    c = make_cluster(**SEARCH, search_refresh_interval=3600.0)
    es = es_client(c, 1)
    es.indices.create(index="u", settings={"number_of_shards": 1, "number_of_replicas": 1})
    helpers.bulk(es, ({"_index": "u", "_id": str(i), "_source": {"t": f"doc {i}"}}
                      for i in range(100)), refresh=True)
    es.indices.flush(index="u")
    # after the commit: a recovering copy gets this update as an operation to apply,
    # which deletes the committed old version
    es.index(index="u", id="7", document={"t": "rewritten"}, refresh=True)
    wait_green(es, "u")
    replica = routing(c, "u")["shards"]["0"]["replicas"][0][0]
    victim = server_named(c, replica)     # the replica's: the new copy recovers the update
    if victim == "searchserver-1":
        es = es_client(c, 2)
    c.kill(victim)
    deadline = time.monotonic() + 60      # its lock (a 3 s session) must expire first
    while replica in json.dumps(routing(c, "u")) and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_green(es, "u")
    assert copy_counts(c, "u") == {"0": [100, 100]}
    assert copy_counts(c, "u", {"match": {"t": "rewritten"}}) == {"0": [1, 1]}


def test_merges_during_searches_change_no_result(scluster_merge):
    es = scluster_merge
    want = es.search(index="m", query={"match": {"t": "alpha"}}, size=10_000)
    want_ids = [h["_id"] for h in want["hits"]["hits"]]
    seen, stop = [], threading.Event()

    def searcher():
        while not stop.is_set():
            r = es.search(index="m", query={"match": {"t": "alpha"}}, size=10_000)
            seen.append({h["_id"] for h in r["hits"]["hits"]})
    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    es.indices.forcemerge(index="m", max_num_segments=1)
    stop.set()
    for t in threads:
        t.join()
    assert seen and all(s == set(want_ids) for s in seen)
    stats = es.indices.stats(index="m")["indices"]["m"]["primaries"]["docs"]
    assert stats == {"count": 4000, "deleted": 0}


@pytest.fixture
def scluster_merge(scluster):
    es = es_client(scluster)
    es.indices.create(index="m", settings={"number_of_shards": 1, "number_of_replicas": 0,
                                           "refresh_interval": "1s"})
    for batch in range(10):         # ten refreshes: ten segments
        helpers.bulk(es, ({"_index": "m", "_id": str(i),
                           "_source": {"t": "alpha beta" if i % 3 else "gamma"}}
                          for i in range(batch * 500, batch * 500 + 500)), refresh=True)
    helpers.bulk(es, ({"_op_type": "delete", "_index": "m", "_id": str(i)}
                      for i in range(0, 5000, 5)), refresh=True)
    yield es
    es.indices.delete(index="m")

"""Chubby's client cache against a real cell: reads served from the cache,
invalidated before a write is acknowledged, never stale across a silent
client or a leader failover."""

from __future__ import annotations

import threading

from stackyard.coord.client import CoordClient
from stackyard.net.auth import Secret
from tests.cluster.test_coord import name_of
from tests.conftest import wait_until


def caching_client(cell, **kw) -> CoordClient:
    c = CoordClient(cell.cluster.coord_addresses(), Secret.load(cell.home.secret_file),
                    session_timeout=5.0, cache=True, **kw)
    c.start_session()
    wait_until(lambda: c._cache_term >= 0, 10, "the cache's first poll")
    return c


def count_gets(client) -> list:
    seen = []
    real = client.pool.call

    def counting(address, name, /, **args):
        if name == "get":
            seen.append(args["path"])
        return real(address, name, **args)
    client.pool.call = counting
    return seen


def test_reads_come_from_the_cache_until_a_write_invalidates_them(cell):
    writer = cell.coord
    writer.create("/conf", b"v0")
    reader = caching_client(cell)
    gets = count_gets(reader)
    assert reader.get("/conf")[0] == b"v0"
    for _ in range(20):
        assert reader.get("/conf")[0] == b"v0"
    assert gets == ["/conf"] and reader.cache_hits == 20      # one trip to the leader
    # once the write is acknowledged, no cached copy of the old value remains
    for i in range(1, 30):
        writer.set("/conf", f"v{i}".encode())
        assert reader.get("/conf")[0] == f"v{i}".encode()
    assert len(gets) == 30 and reader.cache_hits == 20
    writer.delete("/conf")
    assert reader.exists("/conf") is None
    reader.close()


def test_a_write_does_not_wait_forever_for_a_silent_cacher(cell):
    """A caching client that stops polling (a partition, a stopped process):
    the write goes ahead once that client's cache lease has run out, and the
    client no longer trusts its cache by then."""
    writer = cell.coord
    writer.create("/silent", b"old")
    reader = caching_client(cell)
    assert reader.get("/silent")[0] == b"old"
    gets = count_gets(reader)
    assert reader.get("/silent")[0] == b"old" and gets == []
    real_call = reader.call
    blocked = threading.Event()

    def cut_off(name, **args):                 # the poll thread can no longer reach the cell
        if name == "cache_poll":
            blocked.set()
            from stackyard import errors
            raise errors.ClusterUnavailable("cut off")
        return real_call(name, **args)
    reader.call = cut_off
    wait_until(blocked.is_set, 10, "the poll to be cut off")
    writer.set("/silent", b"new")              # acknowledged after the reader's lease lapsed
    assert reader.get("/silent")[0] == b"new"  # the lapsed cache is not used
    assert gets == ["/silent"]
    reader.call = real_call
    reader.close()


def test_no_stale_read_across_a_leader_failover(make_cluster):
    """The new leader cannot invalidate caches the old one handed out, so it
    holds writes for one cache lease (long here: 4 s) after it takes over.
    Without that, the write below lands while the reader still trusts its
    cache, and the test sees the old value."""
    cell = make_cluster(chunkservers=1, replication=1, coords=3, coord_cache_lease=4.0)
    writer = CoordClient(cell.cluster.coord_addresses(), Secret.load(cell.home.secret_file))
    writer.create("/fo", b"before")
    reader = caching_client(cell)
    assert reader.get("/fo")[0] == b"before"
    old = cell.cluster.wait_coord_leader()
    cell.kill(name_of(cell, old))
    writer.set("/fo", b"after")
    assert reader.get("/fo")[0] == b"after"
    reader.close()
    writer.close()


def test_concurrent_writers_and_caching_readers_see_no_value_go_backwards(cell):
    """Each writer's values rise; a reader that saw value N from a writer
    must never see a smaller one afterwards (it would be a stale cache)."""
    for w in range(2):
        cell.coord.create(f"/ctr{w}", b"0")
    stop = threading.Event()
    problems: list[str] = []

    def write(w: int) -> None:
        c = cell.new_coord()
        i = 0
        while not stop.is_set():
            i += 1
            c.set(f"/ctr{w}", str(i).encode())
        c.close()

    def read() -> None:
        c = caching_client(cell)
        last = [0, 0]
        while not stop.is_set():
            for w in range(2):
                v = int(c.get(f"/ctr{w}")[0])
                if v < last[w]:
                    problems.append(f"/ctr{w} went from {last[w]} to {v}")
                last[w] = v
        c.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    stop.wait(4.0)
    stop.set()
    for t in threads:
        t.join(30)
    assert not problems, problems[:5]


def test_connect_gives_a_caching_client(cell):
    cell.coord.create("/via-connect", b"1")
    cached = cell.client.coord_cached(session_timeout=5.0)
    assert cached.caching and cached.get("/via-connect")[0] == b"1"
    wait_until(lambda: cached._cache_term >= 0, 10, "the cache's first poll")
    cached.get("/via-connect")
    assert cached.get("/via-connect")[0] == b"1" and cached.cache_hits >= 1
    cell.coord.set("/via-connect", b"2")
    assert cached.get("/via-connect")[0] == b"2"
    cached.close()

"""Chunkservers die, rot and come back stale; nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal

from tests.conftest import replica_counts, wait_until

MiB = 1 << 20


def _write_files(fs, rng, n: int, prefix: str) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        data = rng.randbytes(rng.randrange(1, 3 * MiB))
        with fs.open(f"{prefix}/f{i}", "wb") as f:
            f.write(data)
        files[f"{prefix}/f{i}"] = data
    return files


def test_dead_chunkserver_replicas_restored(make_cluster, rng):
    c = make_cluster(chunkservers=4)
    files = _write_files(c.fs, rng, 6, "/dead")
    assert all(n == 3 for n in replica_counts(c.fs, "/dead"))
    victim = max(c.chunkservers(), key=lambda d: len(c.chunk_files(d["name"])))
    assert c.chunk_files(victim["name"]), "victim should hold replicas"
    c.kill(victim["name"])

    def declared_dead():
        return [s["alive"] for s in c.fs.cluster()["servers"]
                if s["address"] == victim["address"]] == [False]
    wait_until(declared_dead, 2.0 + 3, "the master to declare the victim dead")
    # then the copies: every chunk back to 3 live replicas
    wait_until(lambda: all(n == 3 for n in replica_counts(c.fs, "/dead")), 20,
               "3 live replicas of every chunk")
    report = c.fs.fsck("/dead")
    for f in report["files"]:
        for ch in f["chunks"]:
            assert victim["address"] not in ch["live"]
    for path, data in files.items():
        assert c.fs.cat(path) == data


def test_flipped_byte_detected_reported_and_repaired(make_cluster, rng):
    # dead_after well above the time the checks below take: the stopped spare
    # must still count as alive, or the master clears the bad replica at once
    # (beside the whole suite on 2 cores the checks took more than 15 s)
    c = make_cluster(chunkservers=4, dead_after=60.0)
    data = rng.randbytes(MiB - 5000)   # one chunk: no read goes near the stopped spare
    with c.fs.open("/rot/file", "wb") as f:
        f.write(data)
    first = c.fs.chunk_locations("/rot/file")[0]
    by_addr = {d["address"]: d for d in c.chunkservers()}
    holders = [by_addr[h] for h in first.hosts]
    spare = next(d for d in c.chunkservers() if d["address"] not in first.hosts)
    victim = holders[0]
    path = c.home.data(victim["name"]) / "chunks" / first.handle[:2] / f"{first.handle}.dat"
    raw = bytearray(path.read_bytes())
    raw[12345] ^= 0xFF
    path.write_bytes(bytes(raw))
    # the spare stops answering, so the repair cannot finish before fsck has looked
    os.kill(spare["pid"], signal.SIGSTOP)
    try:
        for _ in range(3):      # whichever replica a read picks, the data is right
            assert c.fs.cat("/rot/file") == data
        # make sure the corrupt replica itself was read at least once
        from stackyard.dfs.streams import DfsReader
        r = DfsReader(c.fs, "/rot/file")
        r.chunks[0]["locations"].sort(key=lambda loc: loc["address"] != victim["address"])
        buf = bytearray(len(data))
        view, got = memoryview(buf), 0
        while got < len(data):
            got += r.readinto(view[got:])
        assert bytes(buf) == data
        r.close()
        out = c.yard("fsck", "/rot")
        text = out.stdout.decode()
        assert out.returncode == 1, text
        assert "CORRUPT" in text and victim["address"] in text
    finally:
        os.kill(spare["pid"], signal.SIGCONT)

    def repaired():
        rep = c.fs.fsck("/rot")
        ch = rep["files"][0]["chunks"][0]
        return rep["status"] == "HEALTHY" and len(ch["live"]) == 3 and not ch["corrupt"]
    wait_until(repaired, 20, "3 good replicas of the damaged chunk")
    assert c.yard("fsck", "/rot").returncode == 0
    assert c.fs.cat("/rot/file") == data
    # the damaged copy is gone from the victim (deleted, or replaced by a good one)
    if path.exists():
        wait_until(lambda: not path.exists() or path.read_bytes()[12345] == data[12345], 10,
                   "the damaged replica to be deleted")


def test_stale_replica_rejected_by_version(make_cluster, rng):
    c = make_cluster(chunkservers=3)
    head = rng.randbytes(100_000)
    with c.fs.open("/stale/f", "wb") as f:
        f.write(head)
    handle = c.fs.chunk_locations("/stale/f")[0].handle
    victim = c.chunkservers()[0]
    c.kill(victim["name"])
    tail = rng.randbytes(50_000)
    with c.fs.open("/stale/f", "ab") as f:      # the victim misses this write
        f.write(tail)
    meta_path = c.home.data(victim["name"]) / "chunks" / handle[:2] / f"{handle}.meta"
    from stackyard.dfs.chunkstore import ChunkMeta
    old_version = ChunkMeta.unpack(meta_path.read_bytes()).version
    c.start(victim["name"])
    # the stale replica (older version) is never served; the master has it
    # deleted and, the file wanting 3 replicas on 3 servers, copies a good one back
    current = c.fs.call("locations", path="/stale/f")["chunks"][0]["version"]
    assert current > old_version

    def healed():
        m = ChunkMeta.unpack(meta_path.read_bytes()) if meta_path.exists() else None
        counts = replica_counts(c.fs, "/stale")
        return m is not None and m.version == current and counts == [3]
    wait_until(healed, 20, "the stale replica replaced by the current version")
    for _ in range(5):
        assert c.fs.cat("/stale/f") == head + tail


def test_rack_aware_placement(make_cluster, rng):
    c = make_cluster(chunkservers=4, racks=2)
    _write_files(c.fs, rng, 4, "/racks")
    info = {s["address"]: s["rack"] for s in c.fs.cluster()["servers"]}
    assert set(info.values()) == {"/rack1", "/rack2"}
    for f in c.fs.fsck("/racks")["files"]:
        for ch in f["chunks"]:
            assert len({info[a] for a in ch["live"]}) == 2


def test_scanner_finds_rot_nobody_read(make_cluster, rng):
    """A flipped byte in a replica that no client reads is still found (by the
    chunkserver's background scan) and repaired by the master."""
    c = make_cluster(chunkservers=4, scan_interval=0.5)
    data = rng.randbytes(300_000)
    with c.fs.open("/scan/f", "wb") as f:
        f.write(data)
    loc = c.fs.chunk_locations("/scan/f")[0]
    victim = next(d for d in c.chunkservers() if d["address"] == loc.hosts[0])
    path = c.home.data(victim["name"]) / "chunks" / loc.handle[:2] / f"{loc.handle}.dat"
    raw = bytearray(path.read_bytes())
    raw[100_000] ^= 0x01
    path.write_bytes(bytes(raw))

    def repaired():
        ch = c.fs.fsck("/scan")["files"][0]["chunks"][0]
        return (victim["address"] not in ch["live"] and len(ch["live"]) == 3
                and not ch["corrupt"])
    wait_until(repaired, 20, "the scanner's report and the repair")
    assert c.fs.cat("/scan/f") == data

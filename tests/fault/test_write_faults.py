"""A pipeline member killed mid-write; a writer killed holding its lease."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from stackyard.errors import LeaseHeldError
from tests.conftest import replica_counts, wait_until

MiB = 1 << 20


def test_pipeline_member_killed_during_large_write(make_cluster, rng, caplog):
    c = make_cluster(chunkservers=4)
    data = rng.randbytes(24 * MiB + 4321)
    victim = c.chunkservers()[rng.randrange(4)]
    # Stop the victim first: the first pipeline through it stalls with a chunk
    # half sent (socket buffers full), so the kill lands mid-stream.
    os.kill(victim["pid"], signal.SIGSTOP)
    errors = []

    def write():
        try:
            with c.fs.open("/pipe/big", "wb") as f:
                view = memoryview(data)
                for pos in range(0, len(data), 256 * 1024):
                    f.write(view[pos:pos + 256 * 1024])
        except Exception as exc:
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="stackyard.client")
    t = threading.Thread(target=write)
    t.start()
    time.sleep(1.0)
    try:
        assert t.is_alive(), "the write should be stalled on the stopped pipeline member"
    finally:
        c.kill(victim["name"])          # SIGKILL: its connections reset mid-chunk
    t.join(60)
    assert not errors, errors
    assert any("pipeline member" in r.message for r in caplog.records)
    assert c.fs.cat("/pipe/big") == data
    # once the dead server is declared dead, every chunk gets back to 3 replicas
    wait_until(lambda: set(replica_counts(c.fs, "/pipe")) == {3}, 30,
               "3 replicas of every chunk")
    assert c.fs.cat("/pipe/big") == data


def test_dead_writers_lease_expires_and_file_becomes_writable(make_cluster):
    c = make_cluster()
    script = textwrap.dedent(f"""
        import os, stackyard as sy
        fs = sy.connect(home={str(c.home.root)!r}, embedded=False).fs
        f = fs.open("/lease/f", "wb")
        f.write(b"durable before death")
        f.flush()
        print("flushed", flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9 and b"flushed" in proc.stdout, proc.stderr.decode()
    with pytest.raises(LeaseHeldError):
        c.fs.open("/lease/f", "ab")
    assert c.fs.stat("/lease/f")["under_construction"]
    # lease_timeout is 2 s in tests: the master closes the file for the dead writer
    wait_until(lambda: not c.fs.stat("/lease/f")["under_construction"], 15,
               "the lease to expire")
    with c.fs.open("/lease/f", "ab") as f:
        f.write(b", and after")
    assert c.fs.cat("/lease/f") == b"durable before death, and after"


def test_live_writer_keeps_its_lease_past_the_timeout(make_cluster):
    c = make_cluster()
    import time
    with c.fs.open("/lease/slow", "wb") as f:
        f.write(b"a")
        f.flush()
        time.sleep(5)             # more than twice the 2 s lease: renewals keep it
        f.write(b"b")
    assert c.fs.cat("/lease/slow") == b"ab"


def test_writer_dead_between_ack_and_commit_is_rolled_back(make_cluster):
    """The pipeline made a write durable but the writer died before telling the
    master: after the lease expires, replicas carrying the uncommitted bytes
    are rolled back to the committed length, and the file stays consistent."""
    c = make_cluster()
    with c.fs.open("/rb/f", "wb") as f:
        f.write(b"committed part")
    script = textwrap.dedent(f"""
        import os, crc32c, stackyard as sy
        fs = sy.connect(home={str(c.home.root)!r}, embedded=False).fs
        fs.call("append", path="/rb/f", client=fs.client_id)
        plan = fs.call("begin_write", path="/rb/f", client=fs.client_id, index=0, exclude=[])
        data = b" never committed"
        members = plan["pipeline"]
        resp = fs.pool.request(members[0]["address"], "POST", "/chunk/write", {{
            "handle": plan["handle"], "version": plan["version"], "offset": plan["offset"],
            "length": len(data), "crc": crc32c.crc32c(data), "token": plan["token"],
            "next": ",".join(m["address"] for m in members[1:])}}, body=data, streamed=True)
        print(resp.read().decode(), flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9 and b'"acked"' in proc.stdout, proc.stderr.decode()
    handle = c.fs.chunk_locations("/rb/f")[0].handle
    from stackyard.dfs.chunkstore import ChunkMeta

    def metas():
        out = []
        for d in c.chunkservers():
            p = c.home.data(d["name"]) / "chunks" / handle[:2] / f"{handle}.meta"
            out.append(ChunkMeta.unpack(p.read_bytes()))
        return out
    assert all(m.length == len(b"committed part") + 16 for m in metas())
    assert c.fs.cat("/rb/f") == b"committed part"          # readers see committed bytes only
    wait_until(lambda: not c.fs.stat("/rb/f")["under_construction"], 15, "lease recovery")
    wait_until(lambda: all(m.length == len(b"committed part") for m in metas()), 15,
               "the replicas rolled back to the committed length")
    assert c.fs.fsck("/rb")["status"] == "HEALTHY"
    with c.fs.open("/rb/f", "ab") as f:
        f.write(b", then more")
    assert c.fs.cat("/rb/f") == b"committed part, then more"

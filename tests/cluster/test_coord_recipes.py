"""Client recipes on a real cell: locks with fencing tokens, read / write
locks, election, barrier, service registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from stackyard.coord.recipes import Barrier, Election, Lock, ReadLock, Registry, WriteLock


def test_lock_holder_killed_next_waiter_gets_a_larger_token(cell):
    script = textwrap.dedent(f"""
        import os
        from stackyard.coord.client import CoordClient
        from stackyard.coord.recipes import Lock
        from stackyard.net.auth import Secret
        c = CoordClient({cell.cluster.coord_addresses()!r},
                        Secret.load({str(cell.home.secret_file)!r}), session_timeout=2.0)
        seq = Lock(c, "/locks/job", "doomed").acquire()
        print(seq.token, flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    dead_token = int(proc.stdout.split()[0])
    waiter = Lock(cell.coord, "/locks/job", "heir")
    seq = waiter.acquire(timeout=30)        # after the holder's session (2 s) expires
    assert seq is not None and seq.token > dead_token
    waiter.release()


def test_lock_is_exclusive_and_tokens_grow(cell):
    a, b = cell.new_coord(), cell.new_coord()
    first = Lock(a, "/locks/x").acquire()
    assert Lock(b, "/locks/x").acquire(timeout=0.5) is None
    second_lock = Lock(b, "/locks/x")
    Lock(a, "/locks/x").release()           # a different object: releases nothing
    assert second_lock.acquire(timeout=0.5) is None
    a.delete(first.node)                     # the holder's release
    second = second_lock.acquire(timeout=10)
    assert second is not None and second.token > first.token
    second_lock.release()
    a.close()
    b.close()


def test_readers_share_writers_wait(cell):
    r1, r2, w = cell.new_coord(), cell.new_coord(), cell.new_coord()
    read1, read2 = ReadLock(r1, "/rw"), ReadLock(r2, "/rw")
    assert read1.acquire(timeout=5) and read2.acquire(timeout=5)
    write = WriteLock(w, "/rw")
    assert write.acquire(timeout=0.5) is None
    read1.release()
    read2.release()
    assert write.acquire(timeout=10) is not None
    assert ReadLock(r1, "/rw").acquire(timeout=0.5) is None
    write.release()
    for c in (r1, r2, w):
        c.close()


def test_election_and_succession(cell):
    a, b = cell.new_coord(), cell.new_coord()
    ea, eb = Election(a, "/election", "alpha"), Election(b, "/election", "beta")
    term1 = ea.campaign(timeout=5)
    assert term1 is not None and ea.leader() == "alpha"
    assert eb.campaign(timeout=0.5) is None
    ea.resign()
    term2 = eb.campaign(timeout=10)
    assert term2.token > term1.token and eb.leader() == "beta"
    a.close()
    b.close()


def test_barrier_and_registry(cell):
    z = cell.coord
    barrier = Barrier(z, "/barriers/start")
    barrier.create()
    assert barrier.wait(timeout=0.5) is False
    barrier.remove()
    assert barrier.wait(timeout=5) is True
    web1, web2 = cell.new_coord(), cell.new_coord()
    reg1, reg2 = Registry(web1), Registry(web2)
    reg1.register("web", "10.0.0.1:80")
    reg2.register("web", "10.0.0.2:80")
    assert Registry(z).lookup("web") == ["10.0.0.1:80", "10.0.0.2:80"]
    web1.close()                             # its session ends: its entry goes
    assert Registry(z).lookup("web") == ["10.0.0.2:80"]
    web2.close()

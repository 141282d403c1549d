"""Concurrent clients set / get / cas while replicas are killed and restarted;
the recorded history must be linearizable (tests/linearizability.py). Two of
the four clients read through Chubby's client cache."""

from __future__ import annotations

import random
import threading
import time

from stackyard import errors
from stackyard.coord.tree import BadVersion, CoordError
from tests.linearizability import Op, linearizable

KEYS = ["/lin/a", "/lin/b", "/lin/c"]


def test_history_under_kills_is_linearizable(cell, rng):
    z = cell.coord
    z.create("/lin")
    for k in KEYS:
        z.create(k, b"")
    history: list[Op] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int, seed: int) -> None:
        r = random.Random(seed)
        c = cell.new_coord(cache=n < 2)
        c.retry_seconds = 5.0
        seen = {k: 0 for k in KEYS}
        i = 0
        while not stop.is_set():
            key, kind = r.choice(KEYS), r.choice(["read", "write", "cas"])
            value = f"{n}-{i}".encode()
            arg = None if kind == "read" else value if kind == "write" else (seen[key], value)
            start, result, done = time.monotonic(), None, None
            try:
                if kind == "read":
                    data, stat = c.get(key)
                    result = (data, stat["version"])
                    seen[key] = stat["version"]
                elif kind == "write":
                    result = c.set(key, value)["version"]
                else:
                    try:
                        result = c.set(key, value, version=arg[0])["version"]
                    except BadVersion:
                        result = "bad_version"
                done = time.monotonic()
            except (errors.ClusterUnavailable, CoordError):
                done = None                          # outcome unknown
            with lock:
                history.append(Op(n, start, done, kind, key, arg, result))
            i += 1
        c.close()

    threads = [threading.Thread(target=worker, args=(n, rng.randrange(1 << 30)))
               for n in range(4)]
    for th in threads:
        th.start()
    kills = 0
    try:
        end = time.monotonic() + 12
        while time.monotonic() < end:
            time.sleep(1.0)
            leader = cell.cluster.wait_coord_leader(timeout=10)
            names = {d["address"]: d["name"] for d in cell.home.read_state()["daemons"]}
            victim = names[leader] if rng.random() < 0.5 else rng.choice(
                [n for a, n in names.items() if n.startswith("coord-") and a != leader])
            cell.kill(victim)
            kills += 1
            time.sleep(rng.uniform(0.5, 1.5))
            cell.start(victim)
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    done = [op for op in history if op.response is not None]
    assert kills >= 4 and len(done) > 100, (kills, len(done))
    assert sum(op.kind == "read" and op.client < 2 for op in done) > 20
    ok, bad_key = linearizable(history, initial=(b"", 0))
    assert ok, f"history of {bad_key} is not linearizable ({len(history)} ops)"

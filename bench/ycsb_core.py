"""YCSB's core workloads, written from its definitions (Cooper et al., SoCC
2010, and the CoreWorkload properties): the key chooser distributions, the
six standard mixes, the record shape, and a driver that runs a mix against
any store with read / update / insert / scan for a time, from N threads,
counting operations and latencies. Used by bench/ycsb.py."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import numpy as np

FIELDS = 10
FIELD_BYTES = 100          # 10 fields of 100 bytes: YCSB's 1 KB record
ZIPF_THETA = 0.99          # YCSB's ZipfianGenerator.ZIPFIAN_CONSTANT
MAX_SCAN = 100             # workload E: scans of 1..100 records, uniform


def key_of(n: int) -> bytes:
    """YCSB's key for record N: "user" + an FNV-1a hash of N, so inserts in
    number order land all over the key space (orderedinserts=false)."""
    h = 0xCBF29CE484222325
    for _ in range(8):
        h = ((h ^ (n & 0xFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        n >>= 8
    return b"user%019d" % h


def record(rng: random.Random) -> dict[bytes, bytes]:
    return {b"field%d" % i: rng.randbytes(FIELD_BYTES) for i in range(FIELDS)}


class Zipfian:
    """Gray et al.'s zipfian generator over [0, n) (YCSB's ZipfianGenerator),
    item 0 the most popular; zeta(n) computed once with numpy."""

    def __init__(self, n: int, theta: float = ZIPF_THETA):
        self.n, self.theta = n, theta
        self.zetan = float(np.sum(1.0 / np.arange(1, n + 1, dtype=np.float64) ** theta))
        zeta2 = 1.0 + 0.5 ** theta
        self.alpha = 1.0 / (1.0 - theta)
        self.eta = (1 - (2.0 / n) ** (1 - theta)) / (1 - zeta2 / self.zetan)

    def next(self, rng: random.Random, n: int | None = None) -> int:
        n = n or self.n
        u = rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < 1.0 + 0.5 ** self.theta:
            return 1
        return min(n - 1, int(n * (self.eta * u - self.eta + 1) ** self.alpha))


class KeyChooser:
    """zipfian (scrambled: popular items spread over the key space, as YCSB's
    ScrambledZipfianGenerator), uniform, or latest (the newest records most
    popular: SkewedLatestGenerator)."""

    def __init__(self, kind: str, records: int):
        self.kind = kind
        self.zipf = Zipfian(records) if kind in ("zipfian", "latest") else None

    def next(self, rng: random.Random, inserted: int) -> int:
        if self.kind == "uniform":
            return rng.randrange(inserted)
        if self.kind == "latest":
            return max(0, inserted - 1 - self.zipf.next(rng, inserted))
        z = self.zipf.next(rng)
        return (z * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % inserted   # scrambled


@dataclass(frozen=True)
class Workload:
    name: str
    read: float = 0.0
    update: float = 0.0
    insert: float = 0.0
    scan: float = 0.0
    rmw: float = 0.0                  # read-modify-write
    keys: str = "zipfian"


WORKLOADS = {
    "A": Workload("A: update heavy", read=0.5, update=0.5),
    "B": Workload("B: read mostly", read=0.95, update=0.05),
    "C": Workload("C: read only", read=1.0),
    "D": Workload("D: read latest", read=0.95, insert=0.05, keys="latest"),
    "E": Workload("E: short ranges", scan=0.95, insert=0.05),
    "F": Workload("F: read-modify-write", read=0.5, rmw=0.5),
}


class Counter:
    """The next record number to insert, shared by the threads."""

    def __init__(self, start: int):
        self.value, self.lock = start, threading.Lock()

    def take(self) -> int:
        with self.lock:
            self.value += 1
            return self.value - 1


def run(store, w: Workload, records: Counter, threads: int, seconds: float,
        seed: int = 7) -> dict:
    """W against STORE from THREADS threads for SECONDS: ops/s and the
    latency percentiles (ms) over every operation."""
    chooser = KeyChooser(w.keys, records.value)
    stop = time.monotonic() + seconds
    lat: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    cuts = np.cumsum([w.read, w.update, w.insert, w.scan, w.rmw])

    def loop(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        s = store.session()
        mine = lat[i]
        while time.monotonic() < stop:
            x = rng.random()
            op = int(np.searchsorted(cuts, x, side="right"))
            t = time.perf_counter()
            try:
                if op == 2:
                    n = records.take()
                    s.insert(key_of(n), record(rng))
                else:
                    key = key_of(chooser.next(rng, records.value))
                    field = b"field%d" % rng.randrange(FIELDS)
                    if op == 0:
                        s.read(key)
                    elif op == 1:
                        s.update(key, field, rng.randbytes(FIELD_BYTES))
                    elif op == 3:
                        s.scan(key, rng.randint(1, MAX_SCAN))
                    else:
                        s.read(key)
                        s.update(key, field, rng.randbytes(FIELD_BYTES))
            except Exception:  # noqa: BLE001 - counted, as YCSB counts failed operations
                errors[i] += 1
                continue
            mine.append(time.perf_counter() - t)
        s.close()

    took = in_threads(threads, loop)
    every = np.array([x for part in lat for x in part]) * 1000
    return {"ops": len(every) / took, "p50": float(np.percentile(every, 50)) if len(every)
            else float("nan"), "p99": float(np.percentile(every, 99)) if len(every)
            else float("nan"), "errors": sum(errors)}


def in_threads(n: int, fn) -> float:
    """FN(i) in N threads at once; the seconds until all are done."""
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.monotonic() - t0


def load(store, n: int, threads: int = 4, batch: int = 500) -> float:
    """Insert records 0..N-1 (YCSB's load phase); records/s."""
    def part(lo: int, hi: int) -> None:
        rng = random.Random(lo)
        s = store.session()
        for start in range(lo, hi, batch):
            s.insert_many([(key_of(k), record(rng)) for k in range(start, min(hi, start + batch))])
        s.close()

    bounds = [n * i // threads for i in range(threads + 1)]
    return n / in_threads(threads, lambda i: part(bounds[i], bounds[i + 1]))

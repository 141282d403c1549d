"""YCSB's core workloads against the table store, beside RocksDB (rocksdict,
in process: the single-node limit of an LSM tree) and redis-server (through
redis-py: a networked in-memory peer), in one run on this machine; then the
Bigtable paper's per-tablet-server figures (Figure 6) measured the same way.

    python bench/ycsb.py [--records 1000000] [--seconds 10] [--threads 1,16]

Records are YCSB's: 10 fields of 100 bytes, keys "user" + a hash. The table
store runs as `yard cluster up` would start it on one machine, with one
tablet server (3 chunkservers, 3 replicas, the WAL synced before each
acknowledgement). The workload loop (bench/ycsb_core.py) is written from
YCSB's definitions. Targets (issue 14): every Bigtable Figure 6 figure
beaten with one tablet server; workload C with 16 threads at least half of
redis-server's throughput. Everything written is removed at the end.

Needs: pip install rocksdict redis; apt-get install redis-server.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ycsb_core as y  # noqa: E402

from stackyard.cluster.home import Home  # noqa: E402
from stackyard.cluster.local import LocalCluster, Settings  # noqa: E402
from stackyard.table.client import TableClient  # noqa: E402

FAMILY = b"f:"
# Bigtable, OSDI 2006, Figure 6: values/s per tablet server with 1 server
BIGTABLE = {"random reads": 1212, "random reads (mem)": 10811, "random writes": 8850,
            "sequential writes": 8547, "scans": 15385}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the stores ----------------------------------------------------------------------------

class YardSession:
    def __init__(self, client: TableClient, table: str):
        self.client, self.t = client, client.table(table)

    def read(self, key: bytes) -> dict:
        return self.t.row(key)

    def update(self, key: bytes, field: bytes, value: bytes) -> None:
        self.t.put(key, {FAMILY + field: value})

    def insert(self, key: bytes, fields: dict) -> None:
        self.t.put(key, {FAMILY + f: v for f, v in fields.items()})

    def insert_many(self, rows: list) -> None:
        self.t.put_rows((k, {FAMILY + f: v for f, v in fields.items()}) for k, fields in rows)

    def scan(self, start: bytes, count: int) -> list:
        return list(self.t.scan(start=start, limit=count, batch_size=count))

    def close(self) -> None:
        self.client.close()


class Yard:
    name = "stackyard"

    def __init__(self, root: Path):
        self.cluster = LocalCluster(Home.at(root), Settings(
            chunkservers=3, coords=1, workers=0, tables=True, tablet_servers=1, thrift=False,
            search=False, connect=False))
        self.cluster.up()
        from stackyard.net.auth import Secret
        self.secret = Secret.load(self.cluster.home.secret_file)
        self.coords = self.cluster.coord_addresses()
        admin = self._client()
        admin.create_table("usertable", {"f": {}})
        admin.create_table("memtable", {"f": {"in_memory": True}})
        admin.close()

    def _client(self) -> TableClient:
        return TableClient(self.coords, self.secret)

    def session(self, table: str = "usertable") -> YardSession:
        return YardSession(self._client(), table)

    def close(self) -> None:
        self.cluster.down()


class RocksSession:
    def __init__(self, db):
        self.db = db

    def read(self, key: bytes) -> dict:
        return msgpack.unpackb(self.db[key])

    def update(self, key: bytes, field: bytes, value: bytes) -> None:
        # as YCSB's RocksDB binding: read the record, change the field, write it back
        rec = msgpack.unpackb(self.db[key])
        rec[field] = value
        self.db[key] = msgpack.packb(rec)

    def insert(self, key: bytes, fields: dict) -> None:
        self.db[key] = msgpack.packb(fields)

    def insert_many(self, rows: list) -> None:
        import rocksdict
        wb = rocksdict.WriteBatch(raw_mode=True)
        for k, fields in rows:
            wb.put(k, msgpack.packb(fields))
        self.db.write(wb)

    def scan(self, start: bytes, count: int) -> list:
        it, out = self.db.iter(), []
        it.seek(start)
        while it.valid() and len(out) < count:
            out.append((it.key(), msgpack.unpackb(it.value())))
            it.next()
        return out

    def close(self) -> None:
        pass


class Rocks:
    name = "rocksdb"

    def __init__(self, root: Path):
        import rocksdict
        self.path = root / "rocks"
        opts = rocksdict.Options(raw_mode=True)
        self.db = rocksdict.Rdict(str(self.path), options=opts)

    def session(self) -> RocksSession:
        return RocksSession(self.db)

    def close(self) -> None:
        self.db.close()


class RedisSession:
    INDEX = "_indices"       # YCSB's redis binding keeps the keys in a sorted set for scans

    def __init__(self, r):
        self.r = r

    def read(self, key: bytes) -> dict:
        return self.r.hgetall(key)

    def update(self, key: bytes, field: bytes, value: bytes) -> None:
        self.r.hset(key, field, value)

    def insert(self, key: bytes, fields: dict) -> None:
        p = self.r.pipeline(transaction=False)
        p.hset(key, mapping=fields)
        p.zadd(self.INDEX, {key: 0})
        p.execute()

    def insert_many(self, rows: list) -> None:
        p = self.r.pipeline(transaction=False)
        for k, fields in rows:
            p.hset(k, mapping=fields)
            p.zadd(self.INDEX, {k: 0})
        p.execute()

    def scan(self, start: bytes, count: int) -> list:
        keys = self.r.zrangebylex(self.INDEX, b"[" + start, b"+", start=0, num=count)
        p = self.r.pipeline(transaction=False)
        for k in keys:
            p.hgetall(k)
        return list(zip(keys, p.execute(), strict=True))

    def close(self) -> None:
        pass


class Redis:
    name = "redis"

    def __init__(self, root: Path):
        import redis
        if not shutil.which("redis-server"):
            sys.exit("bench/ycsb.py: redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        d = root / "redis"
        d.mkdir()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(d)], stdout=subprocess.DEVNULL)
        self.pool = redis.ConnectionPool(host="127.0.0.1", port=self.port, max_connections=64)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(connection_pool=self.pool).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def session(self) -> RedisSession:
        import redis
        return RedisSession(redis.Redis(connection_pool=self.pool))

    def close(self) -> None:
        self.pool.disconnect()
        self.proc.terminate()
        self.proc.wait(10)


# -- Bigtable's Figure 6, with one tablet server -----------------------------------------

def figure6(yard: Yard, records: int, seconds: float, threads: int) -> dict[str, float]:
    mem_rows = 10_000
    s = yard.session("memtable")
    value = b"v" * 1000
    s.t.put_rows((b"m%06d" % i, {b"f:v": value}) for i in range(mem_rows))
    s.close()
    seq = y.Counter(0)

    def rate(table: str, op) -> float:
        count = [0] * threads
        stop = time.monotonic() + seconds

        def loop(i: int) -> None:
            rng = random.Random(i)
            sess = yard.session(table)
            while time.monotonic() < stop:
                count[i] += op(sess.t, rng)
            sess.close()
        took = y.in_threads(threads, loop)       # before the sum: the threads count
        return sum(count) / took

    def one(fn):
        def op(t, rng):
            fn(t, rng)
            return 1
        return op

    return {
        "random reads": rate("usertable", one(
            lambda t, rng: t.row(y.key_of(rng.randrange(records)), [b"f:field0"]))),
        "random reads (mem)": rate("memtable", one(
            lambda t, rng: t.row(b"m%06d" % rng.randrange(mem_rows)))),
        "random writes": rate("usertable", one(
            lambda t, rng: t.put(b"w%019d" % rng.randrange(1 << 62), {b"f:v": value}))),
        "sequential writes": rate("usertable", one(
            lambda t, rng: t.put(b"s%019d" % seq.take(), {b"f:v": value}))),
        "scans": rate("usertable", lambda t, rng: sum(1 for _ in t.scan(
            start=y.key_of(rng.randrange(records)), columns=[b"f:field0"], limit=1000,
            batch_size=1000))),
    }


# -- the run -----------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10.0, help="per workload and thread count")
    ap.add_argument("--threads", default="1,16")
    ap.add_argument("--workloads", default="A,B,C,D,E,F")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    root = Path(tempfile.mkdtemp(prefix="yard-ycsb-"))
    results: dict = {}
    loads: dict = {}
    fig6 = {}
    try:
        for make in (Yard, Rocks, Redis):
            store = make(root)
            try:
                loads[store.name] = y.load(store, args.records)
                print(f"{store.name}: loaded {args.records} records at "
                      f"{loads[store.name]:,.0f}/s", flush=True)
                inserted = y.Counter(args.records)
                for w in args.workloads.split(","):
                    for n in threads:
                        r = y.run(store, y.WORKLOADS[w], inserted, n, args.seconds)
                        results[(store.name, w, n)] = r
                        print(f"  {store.name} {w} x{n}: {r['ops']:,.0f} ops/s, "
                              f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms"
                              + (f", {r['errors']} errors" if r["errors"] else ""), flush=True)
                if isinstance(store, Yard):
                    fig6 = figure6(store, args.records, args.seconds, 16)
            finally:
                store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(args, threads, results, loads, fig6)


def report(args, threads, results, loads, fig6) -> None:
    print(f"\nYCSB core workloads, {args.records:,} records of 1 KB, {args.seconds:.0f} s each, "
          f"{os.cpu_count()} cores; stackyard with one tablet server")
    print("  load (records/s): " + ", ".join(f"{k} {v:,.0f}" for k, v in loads.items()))
    print(f"  {'workload':<28}{'stackyard':>22}{'rocksdb':>22}{'redis':>22}"
          f"{'vs rocks':>9}{'vs redis':>9}")
    for w in args.workloads.split(","):
        for n in threads:
            cells, ops = [], {}
            for s in ("stackyard", "rocksdb", "redis"):
                r = results.get((s, w, n))
                ops[s] = r["ops"] if r else float("nan")
                cells.append(f"{r['ops']:>8,.0f} {r['p50']:>5.2f}/{r['p99']:<6.1f}" if r
                             else f"{'-':>22}")
            print(f"  {y.WORKLOADS[w].name + f' x{n}':<28}" + "".join(f"{c:>22}" for c in cells)
                  + f"{ops['stackyard'] / ops['rocksdb']:>9.2f}"
                  + f"{ops['stackyard'] / ops['redis']:>9.2f}")
    print("  (ops/s, then p50/p99 latency in ms)")
    if fig6:
        print("\nBigtable Figure 6, one tablet server, 16 client threads (values/s)")
        print(f"  {'':<22}{'stackyard':>12}{'Bigtable':>12}{'ratio':>8}")
        for k, v in fig6.items():
            print(f"  {k:<22}{v:>12,.0f}{BIGTABLE[k]:>12,}{v / BIGTABLE[k]:>8.2f}")
    print("\n  targets: every Figure 6 ratio >= 1.0; workload C x16 'vs redis' >= 0.5")


if __name__ == "__main__":
    main()

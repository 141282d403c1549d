"""The DFS master's namespace throughput (HDFS's NNThroughputBenchmark), a
replicated master against a master alone, in one run.

    python bench/namespace.py [--ops 2000] [--rounds 5] [--servers 1000]

On a cluster with one master and on one with three (one active, two
standbys following its Raft log, every master and chunkserver a process on
127.0.0.1), while SERVERS simulated chunkservers (one process, the real
heartbeat protocol, every 3 s each) heartbeat to every master, prints:
  - operations per second (mkdirs, create+close of an empty file, open =
    getBlockLocations, fileStatus, rename, delete, and blockReport: a
    simulated server's full report of 100 chunks) from 1 and 16 threads;
  - the latency of a small write (a 4 KiB file: create, one chunk written
    and committed, close), median and 99th percentile;
  - with three masters: failover time, median of ROUNDS kills of the
    active master (kill -9 to the first acknowledged mkdir on the next);
  - the master's memory per file and per chunk (tracemalloc over the
    namespace of 20,000 files, measured in this process).
Targets (issue 16): replicated metadata ops/s at least half of one
master's; small-write latency within 1.5x; failover under 5 s (HDFS HA
with ZKFC takes tens of seconds by default).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackyard import errors  # noqa: E402
from stackyard.cluster.home import Home  # noqa: E402
from stackyard.cluster.local import LocalCluster, Settings  # noqa: E402
from stackyard.connect import connect  # noqa: E402
from stackyard.dfs.client import FileSystem  # noqa: E402
from stackyard.net.auth import Secret  # noqa: E402

OPS = ("mkdirs", "create", "open", "fileStatus", "rename", "delete", "blockReport")
HEARTBEAT = 3.0


def run_op(fs: FileSystem, op: str, path: str) -> None:
    if op == "mkdirs":
        fs.mkdir(path + ".d")
    elif op == "create":
        fs.open(path, "wb").close()
    elif op == "open":
        fs.call("locations", path=path)
    elif op == "fileStatus":
        fs.stat(path)
    elif op == "rename":
        fs.mv(path, path + ".r")
    elif op == "delete":
        fs.rm(path + ".r")
    elif op == "blockReport":
        sid = f"sim-{hash(path) % SIMULATED[0]:05d}"
        fs.call("report", server_id=sid, full=True,
                entries=[[f"{hash((path, i)) & (2**64 - 1):016x}", 1, 1 << 20]
                         for i in range(100)])


SIMULATED = [1000]


def simulate_servers(masters: str, secret: Secret, n: int, stop: threading.Event) -> None:
    """N chunkservers that heartbeat every HEARTBEAT seconds to every master,
    with no free space (so no chunk is placed on them)."""
    from stackyard.net.client import HttpPool
    pool = HttpPool(secret, timeout=30)
    addresses = masters.split(",")
    i = 0
    while not stop.is_set():
        start = time.monotonic()
        for k in range(n):
            for address in addresses:
                try:
                    pool.call(address, "heartbeat", server_id=f"sim-{k:05d}",
                              address=f"127.0.0.2:{10000 + k}", rack="/sim", capacity=1 << 40,
                              used=1 << 40, free=0, deleted=[])
                except (errors.StackyardError, OSError):
                    pass
            if stop.is_set():
                break
        i += 1
        stop.wait(max(0.0, HEARTBEAT - (time.monotonic() - start)))
    pool.close()


def memory_per_object(files: int = 20_000, chunks: int = 4) -> tuple[float, float]:
    """(bytes per file without chunks, bytes per chunk) of the namespace."""
    import tracemalloc

    from stackyard.dfs import ops
    from stackyard.dfs.namespace import Namespace

    def grow(k: int) -> int:
        ns = Namespace()
        ns.apply(ops.Mkdir("/d", "u", "g", 0o755, 1.0, True))
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(files):
            p = f"/d/f{i:06d}"
            ns.apply(ops.Create(p, "u", "g", 0o644, 2.0, 3, 1 << 26, False, "c"))
            for j in range(k):
                h = f"{i:010x}{j:06x}"
                ns.apply(ops.AddChunk(p, h, 1))
                ns.apply(ops.CommitChunk(h, 1, 1 << 26, 3.0))
            ns.apply(ops.Close(p, "c", 4.0))
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        return sum(s.size_diff for s in after.compare_to(before, "filename"))
    bare, full = grow(0), grow(chunks)
    return bare / files, (full - bare) / (files * chunks)


def ops_per_second(master: str, secret: Secret, op: str, n: int, threads: int,
                   base: str) -> float:
    """N operations OP spread over THREADS clients, each on its own files."""
    per = max(1, n // threads)
    clients = [FileSystem(master, secret) for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        fs = clients[t]
        barrier.wait()
        for i in range(per):
            run_op(fs, op, f"{base}/t{t}/f{i}")
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    barrier.wait()
    start = time.perf_counter()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - start
    for fs in clients:
        fs.close()
    return per * threads / elapsed


def small_writes(fs: FileSystem, n: int, base: str) -> list[float]:
    block = os.urandom(4096)
    out = []
    for i in range(n):
        t = time.perf_counter()
        with fs.open(f"{base}/w{i}", "wb") as f:
            f.write(block)
        out.append(time.perf_counter() - t)
    return out


def masters_of(root: Path) -> dict[str, dict]:
    return {d["name"]: d for d in Home.at(root).read_state()["daemons"] if d["role"] == "master"}


def active_master(fs: FileSystem, root: Path) -> str:
    for name, d in masters_of(root).items():
        try:
            if fs.rpc_pool.call(d["address"], "cluster")["role"] == "active":
                return name
        except (errors.StackyardError, OSError):
            continue
    raise RuntimeError("no active master")


def failover_times(cluster: LocalCluster, root: Path, rounds: int) -> list[float]:
    out = []
    secret = Secret.load(Home.at(root).secret_file)
    for r in range(rounds):
        fs = FileSystem(Home.at(root).read_state()["master"], secret, retry_seconds=60)
        fs.mkdir(f"/failover/warm{r}")
        victim = active_master(fs, root)
        start = time.perf_counter()
        cluster.kill(victim, sig=9)
        fs.mkdir(f"/failover/after{r}")          # follows the new active master
        out.append(time.perf_counter() - start)
        fs.close()
        cluster.start(dict(cluster.daemon(victim)))
        time.sleep(3)                            # back as a standby, caught up
    return out


def measure(masters: int, n: int, rounds: int, servers: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="yard-bench-ha-", dir=os.environ.get("BENCH_DIR")))
    cluster = LocalCluster(Home.at(root), Settings(
        masters=masters, chunkservers=3, coords=0, workers=0, chunk_size=1 << 20,
        heartbeat_interval=1.0, dead_after=30, connect=False, tables=False, search=False))
    out: dict = {}
    try:
        cluster.up()
        client = connect(home=str(root), embedded=False)
        master, secret = Home.at(root).read_state()["master"], Secret.load(
            Home.at(root).secret_file)
        stop = threading.Event()
        sim = threading.Thread(target=simulate_servers, args=(master, secret, servers, stop))
        sim.start()
        time.sleep(HEARTBEAT)                   # every simulated server has registered
        for threads in (1, 16):
            for op in OPS:
                out[(op, threads)] = ops_per_second(master, secret, op, n, threads,
                                                    f"/nn/{threads}")
        stop.set()
        sim.join()
        lat = small_writes(client.fs, max(50, n // 10), "/small")
        out["write_p50"] = statistics.median(lat)
        out["write_p99"] = sorted(lat)[int(0.99 * (len(lat) - 1))]
        if masters > 1:
            out["failover"] = failover_times(cluster, root, rounds)
        client.close()
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=2000, help="operations per kind and thread count")
    ap.add_argument("--rounds", type=int, default=5, help="failovers to time")
    ap.add_argument("--servers", type=int, default=1000, help="simulated chunkservers")
    args = ap.parse_args()
    SIMULATED[0] = args.servers
    per_file, per_chunk = memory_per_object()
    one = measure(1, args.ops, args.rounds, args.servers)
    three = measure(3, args.ops, args.rounds, args.servers)
    print(f"\nDFS master, {args.ops} ops per kind, 3 chunkservers and {args.servers} simulated "
          f"ones on 127.0.0.1, {os.cpu_count()} cores")
    print(f"  {'operation':<26} {'1 master':>10} {'3 masters':>10} {'ratio':>7}")
    for threads in (1, 16):
        for op in OPS:
            a, b = one[(op, threads)], three[(op, threads)]
            print(f"  {op + f' ({threads} threads)':<26} {a:8.0f}/s {b:8.0f}/s {b / a:7.2f}")
    for key in ("write_p50", "write_p99"):
        a, b = one[key] * 1000, three[key] * 1000
        print(f"  {'4 KiB write ' + key[6:]:<26} {a:8.1f}ms {b:8.1f}ms {b / a:7.2f}")
    fo = three["failover"]
    print(f"  failover (kill -9 to the first acknowledged mkdir): median "
          f"{statistics.median(fo):.2f} s of {[round(x, 2) for x in fo]}")
    print(f"  master memory: {per_file:.0f} bytes per file, {per_chunk:.0f} bytes per chunk "
          "(target: under 300 per chunk; HDFS about 150 per object)")
    worst = min(three[(op, t)] / one[(op, t)] for op in OPS for t in (1, 16)
                if op in ("mkdirs", "create", "rename", "delete"))
    print(f"\n  lowest mutation ops/s ratio 3 / 1 masters = {worst:.2f}  (target >= 0.5)")
    print(f"  small-write p50 ratio 3 / 1 masters     = "
          f"{three['write_p50'] / one['write_p50']:.2f}  (target <= 1.5)")
    print(f"  failover median                          = {statistics.median(fo):.2f} s "
          "(target < 5 s)")


if __name__ == "__main__":
    main()

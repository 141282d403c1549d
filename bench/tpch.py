"""TPC-H in Parquet (data from tpchgen-cli): the 22 queries as the spec
writes them (examples/tpch/queries), each run --reps times, the median per
query and their sum, on yard (a fresh local cluster of 2 workers, the
tables EXTERNAL over the files in its DFS), DuckDB with 2 threads over the
same files on local disk, PySpark SQL local[2] and Sail (a Spark Connect
server, driven by pyspark-client), in one run. Every engine's answers are
checked against DuckDB's.

    python bench/tpch.py [--scale 1] [--reps 3] [--skip pyspark,sail] [--queries 1,3,6]
                         [--sail-python /path/to/venv/bin/python]

Issue 12's targets: yard's total ahead of PySpark's and Sail's, within 3x of
DuckDB's; at SF 3 at most 3.3x its time at SF 1 (run it with --scale 3).
Start-up (cluster, Spark context, Sail server) is outside every timer, and
so is loading: each engine's timer covers its queries only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
QUERIES = ROOT / "examples" / "tpch" / "queries"


def query(n: int) -> str:
    return (QUERIES / f"q{n:02d}.sql").read_text()


def normalized(rows) -> list[tuple]:
    out = []
    for row in rows:
        out.append(tuple(round(float(v), 2) if isinstance(v, float) or type(v).__name__ ==
                         "Decimal" else v for v in row))
    return sorted(out, key=repr)


def median_times(run, queries, reps, ref, name):
    times = {}
    for n in queries:
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            rows = run(n)
            samples.append(time.perf_counter() - t)
        if ref is not None and normalized(rows) != normalized(ref[n]):
            print(f"  {name} q{n:02d}: WRONG ANSWER", flush=True)
        times[n] = statistics.median(samples)
        print(f"  {name} q{n:02d}: {times[n]:.2f} s", flush=True)
    return times


def run_duckdb(data: Path, queries, reps):
    import duckdb
    con = duckdb.connect(config={"threads": 2})
    for t in TABLES:
        con.sql(f"CREATE VIEW {t} AS SELECT * FROM '{data / t}.parquet'")
    ref = {n: con.sql(query(n)).fetchall() for n in queries}
    times = median_times(lambda n: con.sql(query(n)).fetchall(), queries, reps, None, "duckdb")
    con.close()
    return times, ref


def run_yard(data: Path, queries, reps, ref):
    from scratch import scratch_cluster

    from stackyard.connect import connect
    with scratch_cluster(chunkservers=3, coords=1, workers=2, chunk_size=64 << 20) \
            as (root, cluster):
        cluster.up()
        client = connect(home=str(root / "cluster"), embedded=False)
        try:
            for t in TABLES:
                client.fs.put(str(data / f"{t}.parquet"), f"/tpch/{t}/{t}.parquet")
            s = client.sql_session(progress=False)
            for t in TABLES:
                s.sql(f"CREATE EXTERNAL TABLE {t} USING parquet LOCATION '/tpch/{t}'")
            return median_times(lambda n: s.sql(query(n)).fetchall(), queries, reps, ref,
                                "yard")
        finally:
            client.close()


def run_spark(data: Path, queries, reps, ref):
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("tpch")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for t in TABLES:
            spark.read.parquet(str(data / f"{t}.parquet")).createOrReplaceTempView(t)
        return median_times(lambda n: [tuple(r) for r in spark.sql(query(n)).collect()],
                            queries, reps, ref, "pyspark")
    finally:
        spark.stop()


def run_sail(data: Path, queries, reps, ref, python: str):
    """Sail's server and its pyspark-client run under PYTHON (Sail refuses a
    PySpark it does not know, such as 4.3: give it a venv with pysail and
    pyspark-client 4.0); this script drives it from a child there."""
    import json
    with sail_server(python) as port:
        child = subprocess.run([python, __file__, "--sail-child", str(port), "--data", str(data),
                                "--queries", ",".join(map(str, queries)), "--reps", str(reps)],
                               capture_output=True, text=True, timeout=7200)
        if child.returncode:
            raise RuntimeError(child.stderr.strip().splitlines()[-1] if child.stderr else "failed")
        out = json.loads(child.stdout.strip().splitlines()[-1])
        times = {}
        for n in queries:
            rows = [tuple(r) for r in out["rows"][str(n)]]
            if normalized(rows) != normalized([tuple(_plain(v) for v in r) for r in ref[n]]):
                print(f"  sail q{n:02d}: WRONG ANSWER", flush=True)
            times[n] = out["times"][str(n)]
            print(f"  sail q{n:02d}: {times[n]:.2f} s", flush=True)
        return times


@contextmanager
def sail_server(python: str):
    """A Sail Spark Connect server run by PYTHON on a free port, stopped after."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([python, "-m", "pysail", "spark", "server", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def _plain(v):
    """A value as JSON carries it back from the Sail child."""
    import datetime
    import decimal
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def sail_child(port: int, data: Path, queries, reps) -> None:
    import json

    from pyspark.sql import SparkSession
    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").getOrCreate()
    for t in TABLES:
        spark.read.parquet(str(data / f"{t}.parquet")).createOrReplaceTempView(t)
    times, rows = {}, {}
    for n in queries:
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            got = [tuple(_plain(v) for v in r) for r in spark.sql(query(n)).collect()]
            samples.append(time.perf_counter() - t)
        times[n], rows[n] = statistics.median(samples), got
    print(json.dumps({"times": times, "rows": rows}, default=str))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", default="")
    ap.add_argument("--queries", default=",".join(str(i) for i in range(1, 23)))
    ap.add_argument("--sail-python", default=os.environ.get("SAIL_PYTHON", sys.executable),
                    help="a Python with pysail and a pyspark-client Sail supports")
    ap.add_argument("--sail-child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--data", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sail_child:
        sail_child(args.sail_child, Path(args.data), [int(q) for q in args.queries.split(",")],
                   args.reps)
        return
    skip = set(filter(None, args.skip.split(",")))
    queries = [int(q) for q in args.queries.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tpch-", dir=os.environ.get("BENCH_DIR")))
    try:
        exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
        subprocess.run([exe, "parquet", "-s", str(args.scale), "-o", str(work)], check=True)
        results = {}
        results["duckdb"], ref = run_duckdb(work, queries, args.reps)
        results["yard"] = run_yard(work, queries, args.reps, ref)
        runs = (("pyspark", run_spark),
                ("sail", lambda *a: run_sail(*a, python=args.sail_python)))
        for name, fn in runs:
            if name in skip:
                continue
            try:
                results[name] = fn(work, queries, args.reps, ref)
            except Exception as e:              # a peer that cannot run is reported, not fatal
                print(f"{name}: could not run ({type(e).__name__}: {e})", flush=True)
        print(f"\nTPC-H SF {args.scale:g}, median of {args.reps} per query (seconds)")
        names = list(results)
        print("query  " + "  ".join(f"{n:>8}" for n in names))
        for q in queries:
            print(f"q{q:02d}    " + "  ".join(f"{results[n][q]:8.2f}" for n in names))
        totals = {n: sum(results[n].values()) for n in names}
        print("total  " + "  ".join(f"{totals[n]:8.2f}" for n in names))
        for n in names:
            if n != "yard":
                print(f"yard / {n}: {totals['yard'] / totals[n]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""TPC-H in Parquet (data from tpchgen-cli): the 22 queries as the spec
writes them (examples/tpch/queries), each run --reps times, the median per
query and their sum, on yard (a fresh local cluster of 2 workers, the
tables EXTERNAL over the files in its DFS), DuckDB with 2 threads over the
same files on local disk, PySpark SQL local[2] and Sail (a Spark Connect
server, driven by pyspark-client), in one run. Every engine's answers are
checked against DuckDB's.

    python bench/tpch.py [--scale 1] [--reps 3] [--skip spark,sail] [--queries 1,3,6]

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rdd_peers import ROOT  # noqa: E402
from scratch import scratch_cluster  # noqa: E402

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
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for t in TABLES:
            spark.read.parquet(str(data / f"{t}.parquet")).createOrReplaceTempView(t)
        return median_times(lambda n: [tuple(r) for r in spark.sql(query(n)).collect()],
                            queries, reps, ref, "pyspark")
    finally:
        spark.stop()


def run_sail(data: Path, queries, reps, ref):
    port = 50151
    server = subprocess.Popen([sys.executable, "-m", "pysail", "spark", "server", "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "SAIL_PARALLELISM": "2"})
    try:
        from pyspark.sql import SparkSession
        time.sleep(3)
        spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").getOrCreate()
        for t in TABLES:
            spark.read.parquet(str(data / f"{t}.parquet")).createOrReplaceTempView(t)
        return median_times(lambda n: [tuple(r) for r in spark.sql(query(n)).collect()],
                            queries, reps, ref, "sail")
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", default="")
    ap.add_argument("--queries", default=",".join(str(i) for i in range(1, 23)))
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    queries = [int(q) for q in args.queries.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tpch-", dir=os.environ.get("BENCH_DIR")))
    try:
        exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
        subprocess.run([exe, "parquet", "-s", str(args.scale), "-o", str(work)], check=True)
        results = {}
        results["duckdb"], ref = run_duckdb(work, queries, args.reps)
        results["yard"] = run_yard(work, queries, args.reps, ref)
        for name, fn in (("pyspark", run_spark), ("sail", run_sail)):
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

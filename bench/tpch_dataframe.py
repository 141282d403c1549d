"""TPC-H with PySpark's DataFrame API (examples/tpch/dataframe.py), the same
program on every engine: Stackyard's Spark Connect server and Sail's, both
driven by pyspark-client, and classic PySpark local[2]; plus a 20-step
interactive session (createDataFrame of 100k pandas rows, filters, group-bys,
toPandas, ...) timed call by call, for per-call latency. Answers are checked
against DuckDB's for the same queries in SQL.

    python bench/tpch_dataframe.py [--scale 1] [--reps 3] [--skip pyspark,sail]
                                   [--sail-python /path/to/venv/bin/python]

Issue 13's targets: ahead of classic PySpark in total and per-call latency,
ahead of Sail in total. Start-up (cluster, Spark, Sail's server) and loading
are outside every timer; each engine runs its own client process except
classic PySpark, whose driver is the client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from tpch import TABLES, _plain, normalized, query, sail_server  # noqa: E402

STEPS = 20


def run_queries(spark, table, queries, reps) -> dict:
    from examples.tpch.dataframe import QUERIES
    times, rows = {}, {}
    for n in queries:
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            got = [tuple(_plain(v) for v in r) for r in QUERIES[n](table).collect()]
            samples.append(time.perf_counter() - t)
        times[n], rows[n] = statistics.median(samples), got
        print(f"    q{n:02d}: {times[n]:.2f} s", file=sys.stderr, flush=True)
    return {"times": times, "rows": rows}


def interactive(spark) -> list[float]:
    """Twenty calls a person makes exploring a DataFrame; the seconds of each."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F
    rng = np.random.default_rng(1)
    n = 100_000
    pdf = pd.DataFrame({"id": np.arange(n), "k": np.arange(n) % 100, "v": rng.random(n),
                        "s": rng.choice(["apple", "banana", "cherry", "date"], n)})
    small = pd.DataFrame({"k": np.arange(100), "label": [f"L{i}" for i in range(100)]})
    state = {}

    def step(i):
        df = state.get("df")
        if i == 0:
            state["df"] = spark.createDataFrame(pdf)
        elif i == 1:
            df.count()
        elif i == 2:
            df.filter(F.col("v") > 0.5).count()
        elif i == 3:
            df.groupBy("k").count().toPandas()
        elif i == 4:
            df.groupBy("k").agg(F.avg("v"), F.max("v")).orderBy("k").toPandas()
        elif i == 5:
            df.select("id", (F.col("v") * 2).alias("v2")).limit(10).collect()
        elif i == 6:
            df.withColumn("w", F.col("v") + 1).filter(F.col("w") > 1.2).count()
        elif i == 7:
            df.orderBy(F.desc("v")).limit(5).collect()
        elif i == 8:
            df.describe("v").collect()
        elif i == 9:
            df.select("k").distinct().count()
        elif i == 10:
            df.join(spark.createDataFrame(small), "k").count()
        elif i == 11:
            df.createOrReplaceTempView("explore")
            spark.sql("SELECT k, sum(v) AS t FROM explore GROUP BY k").toPandas()
        elif i == 12:
            _ = df.schema
        elif i == 13:
            df.filter(F.col("s").startswith("a")).select("id").limit(3).collect()
        elif i == 14:
            df.dropna().count()
        elif i == 15:
            df.selectExpr("id % 7 AS m").groupBy("m").count().collect()
        elif i == 16:
            df.groupBy("s").agg(F.count("*").alias("n")).orderBy(F.desc("n")).collect()
        elif i == 17:
            df.withColumnRenamed("v", "value").select("value").limit(1).collect()
        elif i == 18:
            df.filter((F.col("k") < 10) & (F.col("v") > 0.9)).toPandas()
        elif i == 19:
            df.toPandas()
    out = []
    for i in range(STEPS):
        t = time.perf_counter()
        step(i)
        out.append(time.perf_counter() - t)
    return out


def client(url: str, data: str, tables: str, queries, reps) -> None:
    """A pyspark-client process against URL; prints JSON on its last line."""
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.remote(url).getOrCreate()
    if tables == "metastore":
        def table(name):
            return spark.read.table(name)
    else:
        frames = {t: spark.read.parquet(str(Path(data) / f"{t}.parquet")) for t in TABLES}

        def table(name):
            return frames[name]
    out = run_queries(spark, table, queries, reps)
    out["steps"] = interactive(spark)
    print(json.dumps(out, default=str))


def remote_engine(name: str, python: str, url: str, data: Path, tables: str, queries, reps):
    child = subprocess.run([python, __file__, "--client", url, "--data", str(data),
                            "--tables", tables, "--queries", ",".join(map(str, queries)),
                            "--reps", str(reps)], stdout=subprocess.PIPE, text=True,
                           timeout=7200)
    if child.returncode:
        raise RuntimeError(f"{name}'s client failed")
    return json.loads(child.stdout.strip().splitlines()[-1])


def run_yard(data: Path, queries, reps):
    from scratch import scratch_cluster

    from stackyard.connect import connect
    with scratch_cluster(chunkservers=3, coords=1, workers=2, chunk_size=64 << 20) \
            as (root, cluster):
        cluster.up()
        home = root / "cluster"
        client_ = connect(home=str(home), embedded=False)
        try:
            s = client_.sql_session(progress=False)
            for t in TABLES:
                client_.fs.put(str(data / f"{t}.parquet"), f"/tpch/{t}/{t}.parquet")
                s.sql(f"CREATE EXTERNAL TABLE {t} USING parquet LOCATION '/tpch/{t}'")
        finally:
            client_.close()
        port = cluster.daemon("connect")["address"].rsplit(":", 1)[1]
        token = (home / "secret").read_text().strip()
        return remote_engine("yard", sys.executable, f"sc://localhost:{port}/;token={token}",
                             data, "metastore", queries, reps)


def run_sail(data: Path, queries, reps, python: str):
    with sail_server(python) as port:
        return remote_engine("sail", python, f"sc://127.0.0.1:{port}", data, "files", queries,
                             reps)


def run_pyspark(data: Path, queries, reps):
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("tpch-df")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        frames = {t: spark.read.parquet(str(data / f"{t}.parquet")) for t in TABLES}
        out = run_queries(spark, frames.__getitem__, queries, reps)
        out["steps"] = interactive(spark)
        return out
    finally:
        spark.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", default="")
    ap.add_argument("--queries", default=",".join(str(i) for i in range(1, 23)))
    ap.add_argument("--sail-python", default=os.environ.get("SAIL_PYTHON", sys.executable))
    ap.add_argument("--client", default="", help=argparse.SUPPRESS)
    ap.add_argument("--data", default="", help=argparse.SUPPRESS)
    ap.add_argument("--tables", default="files", help=argparse.SUPPRESS)
    args = ap.parse_args()
    queries = [int(q) for q in args.queries.split(",")]
    if args.client:
        client(args.client, args.data, args.tables, queries, args.reps)
        return
    import duckdb
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="tpch-df-", dir=os.environ.get("BENCH_DIR")))
    try:
        exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
        subprocess.run([exe, "parquet", "-s", str(args.scale), "-o", str(work)], check=True,
                       capture_output=True)
        con = duckdb.connect()
        for t in TABLES:
            con.sql(f"CREATE VIEW {t} AS SELECT * FROM '{work / t}.parquet'")
        ref = {n: [tuple(_plain(v) for v in r) for r in con.sql(query(n)).fetchall()]
               for n in queries}
        con.close()
        engines = {"yard": lambda: run_yard(work, queries, args.reps),
                   "pyspark": lambda: run_pyspark(work, queries, args.reps),
                   "sail": lambda: run_sail(work, queries, args.reps, args.sail_python)}
        results = {}
        for name, fn in engines.items():
            if name in skip:
                continue
            print(f"{name}:", flush=True)
            try:
                results[name] = fn()
            except Exception as e:       # a peer that cannot run is reported, not fatal
                print(f"{name}: could not run ({type(e).__name__}: {e})", flush=True)
                continue
            for n in queries:
                rows = [tuple(r) for r in results[name]["rows"][n if n in results[name]["rows"]
                                                                 else str(n)]]
                if normalized(rows) != normalized(ref[n]):
                    print(f"  {name} q{n:02d}: WRONG ANSWER", flush=True)
        names = list(results)
        print(f"\nTPC-H SF {args.scale:g} with the DataFrame API, median of {args.reps} "
              "per query (seconds)")
        print("query  " + "  ".join(f"{n:>8}" for n in names))
        times = {n: {int(k): v for k, v in results[n]["times"].items()} for n in names}
        for q in queries:
            print(f"q{q:02d}    " + "  ".join(f"{times[n][q]:8.2f}" for n in names))
        totals = {n: sum(times[n].values()) for n in names}
        print("total  " + "  ".join(f"{totals[n]:8.2f}" for n in names))
        print(f"\ninteractive session, {STEPS} calls (seconds)")
        for n in names:
            steps = results[n]["steps"]
            print(f"{n:>8}: total {sum(steps):.2f}, median call {statistics.median(steps):.3f}, "
                  f"slowest {max(steps):.2f}")
        if "yard" in names:
            for n in names:
                if n != "yard":
                    ys, ps = results["yard"]["steps"], results[n]["steps"]
                    print(f"yard / {n}: queries {totals['yard'] / totals[n]:.2f}x, "
                          f"session {sum(ys) / sum(ps):.2f}x, median call "
                          f"{statistics.median(ys) / statistics.median(ps):.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

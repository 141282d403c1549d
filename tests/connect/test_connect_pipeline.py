"""A DataFrame program end to end on real processes: CSV read from the DFS,
joined with a metastore table, a pandas UDF, an aggregation, partitioned
Parquet written back; a worker killed with SIGKILL while it runs changes
nothing in the result. Also: Python files shipped with addArtifacts are
importable where UDFs run (the workers), and the scheduler's SQL page shows
the session's queries."""

from __future__ import annotations

import random
import threading

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from tests.conftest import wait_until
from tests.connect.conftest import CONNECT, remote, session

ROWS = 150_000


def _orders(tmp_path):
    rng = random.Random(7)
    rows = [(i, rng.randrange(50), rng.randrange(1, 10_000) / 100) for i in range(ROWS)]
    path = tmp_path / "orders.csv"
    with open(path, "w") as f:
        f.write("id,cust,amount\n")
        f.writelines(f"{i},{c},{a}\n" for i, c, a in rows)
    return path, pd.DataFrame(rows, columns=["id", "cust", "amount"])


def test_csv_join_pandas_udf_partitioned_parquet_survives_a_killed_worker(make_cluster,
                                                                           tmp_path):
    c = make_cluster(**CONNECT)
    path, local = _orders(tmp_path)
    c.fs.put(str(path), "/pipe/orders/orders.csv")
    spark = session(remote(c))
    try:
        regions = pd.DataFrame({"cust": range(50), "region": [f"r{i % 4}" for i in range(50)]})
        spark.createDataFrame(regions).write.saveAsTable("customers")

        @pandas_udf("double")
        def with_tax(a: pd.Series) -> pd.Series:
            return a * 1.25

        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        orders = spark.read.csv("/pipe/orders", header=True, inferSchema=True)
        out = (orders.join(spark.table("customers"), "cust")
               .withColumn("taxed", with_tax("amount"))
               .groupBy("region").agg(F.sum("taxed").alias("total"), F.count("*").alias("n")))
        before = {j["id"] for j in c.client.engine.jobs()}
        box = {}

        def write():
            try:
                out.write.partitionBy("region").parquet("/pipe/out")
            except Exception as e:        # reported by the assertion below
                box["error"] = e

        t = threading.Thread(target=write, daemon=True)
        t.start()
        wait_until(lambda: any(j["id"] not in before and j["state"] == "running"
                               for j in c.client.engine.jobs()), 60, "the job to start")
        c.kill("worker-1")
        t.join(300)
        assert not t.is_alive() and "error" not in box, box.get("error")

        want = local.merge(regions, on="cust")
        want = want.assign(taxed=want.amount * 1.25).groupby("region").agg(
            total=("taxed", "sum"), n=("taxed", "size"))
        back = spark.read.parquet("/pipe/out").toPandas()
        assert sorted(back.columns) == ["n", "region", "total"]
        got = back.set_index("region").sort_index()
        assert list(got.index) == list(want.index)
        assert list(got.n) == list(want.n)
        assert all(abs(a - b) < 1e-6 * max(1, abs(b)) for a, b in zip(got.total, want.total,
                                                                     strict=True))
        assert {p["name"] for p in c.fs.ls("/pipe/out")} >= {f"region=r{i}" for i in range(4)}
    finally:
        spark.stop()


def test_python_files_reach_the_workers_and_the_sql_page_shows_the_queries(make_cluster,
                                                                           tmp_path):
    c = make_cluster(**CONNECT)
    lib = tmp_path / "shipped_helpers.py"
    lib.write_text("def shout(s):\n    return s.upper() + '!'\n")
    (tmp_path / "words.csv").write_text("w\n" + "\n".join(["ab", "cd", "ef"] * 100) + "\n")
    c.fs.put(str(tmp_path / "words.csv"), "/words/words.csv")
    spark = session(remote(c))
    try:
        spark.addArtifacts(str(lib), pyfile=True)

        @F.udf("string")
        def loud(s):
            import shipped_helpers
            return shipped_helpers.shout(s)

        rows = (spark.read.csv("/words", header=True).select(loud("w").alias("l"))
                .distinct().orderBy("l").collect())
        assert [r.l for r in rows] == ["AB!", "CD!", "EF!"]
        sched = c.cluster.daemon("scheduler")["address"]
        page = c.fs.pool.request(sched, "GET", "/groups").read().decode()
        assert "spark-connect" in page or "DISTINCT" in page.upper()
        assert "succeeded" in page
    finally:
        spark.stop()


def test_a_tls_cluster_serves_spark_connect_over_tls(make_cluster, tmp_path):
    import os
    import subprocess
    import sys
    c = make_cluster(**{**CONNECT, "tls": True})
    port = c.cluster.daemon("connect")["address"].rsplit(":", 1)[1]
    secret = c.home.secret_file.read_text().strip()
    ca = c.home.root / "tls" / "ca.pem"
    script = ("import sys, warnings; warnings.simplefilter('ignore')\n"
              "from pyspark.sql import SparkSession\n"
              "s = SparkSession.builder.remote(sys.argv[1]).create()\n"
              "print(s.range(7).count()); s.stop()\n")
    # a file, not -c: pyspark-client takes a main module without a file for a doctest run
    client = tmp_path / "tls_client.py"
    client.write_text(script)
    env = {**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca)}
    ok = subprocess.run([sys.executable, str(client),
                         f"sc://localhost:{port}/;use_ssl=true;token={secret}"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip() == "7", ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, str(client),
                          f"sc://localhost:{port}/;use_ssl=true;token=not-it"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "token refused" in bad.stderr

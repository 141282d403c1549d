"""The SQL layer against real processes: DDL and the warehouse layout,
partition pruning, writes that fail leave the table as it was, broadcast and
shuffle joins agree, errors name the problem, concurrent DDL, the DB-API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from stackyard.sql.errors import AnalysisError, ParseError
from tests.conftest import wait_until


@pytest.fixture(scope="module")
def s(cluster):
    return cluster.client.sql_session()


def test_managed_tables_live_in_the_warehouse_and_drop_with_their_data(cluster, s):
    fs = cluster.fs
    s.sql("CREATE DATABASE sales")
    s.sql("CREATE TABLE sales.orders (id bigint, amount decimal(10,2), day string) "
          "PARTITIONED BY (country string) STORED AS PARQUET")
    s.sql("INSERT INTO sales.orders PARTITION (country='nl') VALUES "
          "(1, 9.50, 'mon'), (2, 3.25, 'tue')")
    s.sql("INSERT INTO sales.orders PARTITION (country) SELECT 3, 1.00, 'wed', 'de' "
          "UNION ALL SELECT 4, 2.00, 'thu', 'fr'")
    assert [r[0] for r in s.sql("SHOW PARTITIONS sales.orders").fetchall()] == \
        ["country=de", "country=fr", "country=nl"]
    files = fs.ls("/user/hive/warehouse/sales.db/orders/country=nl", detail=False)
    assert files and all(os.path.basename(f).startswith("part-") for f in files)
    got = s.sql("SELECT country, SUM(amount) FROM sales.orders GROUP BY country "
                "ORDER BY country").fetchall()
    assert [(c, float(a)) for c, a in got] == [("de", 1.0), ("fr", 2.0), ("nl", 12.75)]
    desc = dict((r[0], r[1]) for r in s.sql("DESCRIBE FORMATTED sales.orders").fetchall())
    assert desc["Type"] == "MANAGED" and desc["Location"].endswith("sales.db/orders")
    assert "PARTITIONED BY (country STRING)" in s.sql(
        "SHOW CREATE TABLE sales.orders").fetchall()[0][0]
    s.sql("DROP TABLE sales.orders")
    assert not fs.exists("/user/hive/warehouse/sales.db/orders")
    with pytest.raises(AnalysisError, match="Table or view not found: sales.orders"):
        s.sql("SELECT * FROM sales.orders")


def test_an_external_table_keeps_its_data_and_msck_finds_partitions_added_by_hand(cluster, s):
    fs = cluster.fs
    for k in ("a", "b"):
        with fs.open(f"/ext/logs/k={k}/part-0.txt", "wb") as f:
            f.write(f"1|{k}-one\n2|{k}-two\n".encode())
    s.sql("CREATE EXTERNAL TABLE logs (n int, msg string) PARTITIONED BY (k string) "
          "ROW FORMAT DELIMITED FIELDS TERMINATED BY '|' STORED AS TEXTFILE "
          "LOCATION '/ext/logs'")
    assert s.sql("SELECT COUNT(*) FROM logs").fetchall() == [(0,)]
    assert s.sql("MSCK REPAIR TABLE logs").fetchall() == [("Repaired 2 partitions",)]
    assert s.sql("SELECT k, COUNT(*) FROM logs GROUP BY k ORDER BY k").fetchall() == \
        [("a", 2), ("b", 2)]
    s.sql("DROP TABLE logs")
    assert fs.exists("/ext/logs/k=a/part-0.txt")


def test_a_query_on_one_of_50_partitions_reads_only_that_partition(cluster, s):
    s.sql("CREATE TABLE events (v bigint) PARTITIONED BY (d int) STORED AS PARQUET")
    s.sql("INSERT INTO events PARTITION (d) SELECT id, id % 50 FROM "
          "(SELECT explode(sequence(0, 4999)) AS id)")
    assert len(s.sql("SHOW PARTITIONS events")) == 50
    plan = s.sql("EXPLAIN SELECT SUM(v) FROM events WHERE d = 7").fetchall()[0][0]
    assert "partitions: 1 of 50" in plan
    before = {j["id"] for j in cluster.client.engine.jobs()}
    assert s.sql("SELECT SUM(v), COUNT(*) FROM events WHERE d = 7").fetchall() == \
        [(sum(range(7, 5000, 50)), 100)]
    job = [j for j in cluster.client.engine.jobs() if j["id"] not in before][0]
    scan = job["stages"][0]
    assert scan["tasks"] == 1          # one partition's one file: one scan task


def test_broadcast_and_shuffle_joins_agree_and_explain_says_which(cluster, s):
    s.sql("CREATE TABLE dim USING parquet AS SELECT id, concat('n', id) AS name FROM "
          "(SELECT explode(sequence(0, 99)) AS id)")
    s.sql("CREATE TABLE fact USING parquet AS SELECT id % 100 AS k, id AS v FROM "
          "(SELECT explode(sequence(0, 19999)) AS id)")
    q = "SELECT d.name, SUM(f.v) AS total FROM fact f JOIN dim d ON f.k = d.id GROUP BY d.name"
    assert "BroadcastHashJoin" in s.sql("EXPLAIN " + q).fetchall()[0][0]
    broadcast = sorted(s.sql(q).fetchall())
    s.sql("SET spark.sql.autoBroadcastJoinThreshold=-1")
    try:
        plan = s.sql("EXPLAIN " + q).fetchall()[0][0]
        assert "ShuffledHashJoin" in plan and "BroadcastHashJoin" not in plan
        shuffled = sorted(s.sql(q).fetchall())
    finally:
        s.sql("SET spark.sql.autoBroadcastJoinThreshold=10485760")
    assert broadcast == shuffled and len(broadcast) == 100
    assert dict(broadcast)["n7"] == sum(v for v in range(20000) if v % 100 == 7)


def test_errors_name_the_problem_with_line_and_column(cluster, s):
    with pytest.raises(ParseError) as e:
        s.sql("SELECT a,\n  FROM t WHERE")
    assert e.value.line == 2
    with pytest.raises(AnalysisError, match="Table or view not found: default.nope"):
        s.sql("SELECT * FROM nope")
    with pytest.raises(AnalysisError) as e:
        s.sql("SELECT id,\n       missing_col FROM dim")
    assert "missing_col" in str(e.value) and (e.value.line, e.value.col) == (2, 8)
    proc = cluster.yard("sql", "-e", "SELEC 1")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in err and "line 1" in err


def test_an_insert_overwrite_killed_half_way_leaves_the_old_data(cluster, s):
    s.sql("CREATE TABLE keep USING parquet AS SELECT id FROM (SELECT explode(sequence(1, 10)) AS id)")
    env = {**os.environ, "STACKYARD_HOME": str(cluster.home.root)}
    before = {j["id"] for j in cluster.client.engine.jobs()}
    slow = ("INSERT OVERWRITE TABLE keep SELECT a.v FROM fact a JOIN fact b ON a.k = b.k "
            "JOIN fact c ON b.k = c.k")
    driver = subprocess.Popen([sys.executable, "-m", "stackyard", "sql", "-e", slow], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def running():
            if driver.poll() is not None:
                raise AssertionError(f"the insert ended early: {driver.stderr.read().decode()}")
            return any(j["state"] == "running" and j["id"] not in before
                       for j in cluster.client.engine.jobs())
        wait_until(running, 60, "the insert's job to run")
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert sorted(r[0] for r in s.sql("SELECT id FROM keep").fetchall()) == list(range(1, 11))


def test_two_clients_creating_tables_at_once_both_see_all(cluster):
    from stackyard.sql.session import Session
    a, b = Session(cluster.client), Session(cluster.client)
    errors = []

    def make(session, prefix):
        try:
            for i in range(10):
                session.sql(f"CREATE TABLE {prefix}_{i} (x int) STORED AS PARQUET")
        except Exception as e:       # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=make, args=(a, "left")),
               threading.Thread(target=make, args=(b, "right"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    names = {r[1] for r in a.sql("SHOW TABLES").fetchall()}
    assert {f"left_{i}" for i in range(10)} | {f"right_{i}" for i in range(10)} <= names


def test_dbapi_and_result_shapes(cluster, s):
    import stackyard.sql as ysql
    conn = ysql.connect(client=cluster.client)
    cur = conn.cursor()
    cur.execute("SELECT name FROM dim WHERE id = ? OR name = ?", (3, "n5"))
    assert sorted(cur.fetchall()) == [("n3",), ("n5",)]
    assert cur.description[0][0] == "name"
    r = s.sql("SELECT id, name FROM dim WHERE id < 3 ORDER BY id")
    assert r.fetchall() == [(0, "n0"), (1, "n1"), (2, "n2")]
    assert list(r.to_pandas()["name"]) == ["n0", "n1", "n2"]
    assert r.arrow().num_rows == 3 and sum(b.num_rows for b in r.batches(2)) == 3
    conn.close()


def test_python_udfs_scalar_and_vectorized_run_in_the_workers(cluster, s):
    import pyarrow.compute as pc

    def shout(name):
        import os
        return f"{name.upper()}!{os.getpid()}"

    s.udf.register("shout", shout, "string")
    s.udf.register("times_ten", lambda a: pc.multiply(a, 10), "bigint", vectorized=True)
    rows = s.sql("SELECT shout(name) AS s, times_ten(id) AS t FROM dim WHERE id < 3 "
                 "ORDER BY t").fetchall()
    assert [r[1] for r in rows] == [0, 10, 20]
    assert [r[0].split("!")[0] for r in rows] == ["N0", "N1", "N2"]
    # they ran in a task process, not in this driver
    assert all(int(r[0].split("!")[1]) != os.getpid() for r in rows)
    with pytest.raises(AnalysisError, match="unknown return type"):
        s.udf.register("bad", shout, "no_such_type")


def test_the_schedulers_sql_page_shows_each_statement_with_its_stages(cluster, s):
    s.sql("SELECT g, COUNT(*) FROM (SELECT name AS g FROM dim) GROUP BY g")
    sched = next(d["address"] for d in cluster.home.read_state()["daemons"]
                 if d["role"] == "scheduler")
    page = cluster.fs.pool.request(sched, "GET", "/groups").read().decode()
    assert "SQL statements and job groups" in page
    assert "GROUP BY g" in page and "succeeded" in page and "sql_rows_out" in page
    import urllib.error
    import urllib.request
    for headers in ({}, {"Authorization": "Bearer not-the-secret"}):
        req = urllib.request.Request(f"http://{sched}/groups", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code in (401, 403)


@pytest.mark.parametrize("storage", [
    "STORED AS PARQUET TBLPROPERTIES ('parquet.compression'='zstd')",
    "USING parquet OPTIONS (compression 'gzip')",
    "STORED AS ORC",
    "STORED AS JSONFILE",
    "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE "
    "TBLPROPERTIES ('compression'='gzip')",
    "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' STORED AS TEXTFILE "
    "TBLPROPERTIES ('compression'='zstd')",
], ids=["parquet-zstd", "parquet-gzip", "orc", "json", "text-gzip", "text-zstd"])
def test_every_format_writes_and_reads_back_what_was_inserted(cluster, s, storage, request):
    name = "fmt_" + request.node.callspec.id.replace("-", "_")
    s.sql(f"DROP TABLE IF EXISTS {name}")
    s.sql(f"CREATE TABLE {name} (id bigint, label string, price decimal(10,2), day date) "
          f"{storage}")
    s.sql(f"INSERT INTO {name} SELECT id, concat('x', id), CAST(id AS decimal(10,2)) / 4, "
          f"date_add(DATE '2024-01-01', CAST(id AS int)) FROM "
          f"(SELECT explode(sequence(1, 500)) AS id)")
    rows = s.sql(f"SELECT COUNT(*), SUM(price), MAX(label), MIN(day) FROM {name}").fetchall()
    import datetime
    assert rows[0][0] == 500 and float(rows[0][1]) == sum(range(1, 501)) / 4
    assert rows[0][2] == "x99" and rows[0][3] == datetime.date(2024, 1, 2)
    s.sql(f"DROP TABLE {name}")


def test_values_in_from_and_duckdbs_own_aggregates_give_one_answer(cluster, s):
    import duckdb
    q = ("SELECT k, count(*) AS n, kurtosis_pop(v) AS kp FROM VALUES (1, 2.0), (1, 3.0), "
         "(1, 7.0), (2, 5.0) AS t(k, v) GROUP BY k ORDER BY k")
    # rows the driver holds run in the driver; the same answer as DuckDB's
    assert s.sql(q).fetchall() == duckdb.sql(q).fetchall()
    # an aggregate sqlglot does not know still aggregates across partitions
    s.sql("CREATE TABLE wide (id bigint, k bigint) USING parquet")
    for part in range(3):               # a file each: scans of three splits at least
        s.sql(f"INSERT INTO wide SELECT id, id % 3 AS k FROM (SELECT explode(sequence("
              f"{part * 10000}, {part * 10000 + 9999})) AS id)")
    s.sql("SET spark.sql.shuffle.partitions=4")
    rows = s.sql("SELECT kurtosis_pop(id) FROM wide").fetchall()
    assert len(rows) == 1 and abs(rows[0][0] - duckdb.sql(
        "SELECT kurtosis_pop(range) FROM range(30000)").fetchall()[0][0]) < 1e-9
    by_k = s.sql("SELECT k, kurtosis_pop(id) FROM wide GROUP BY k ORDER BY k").fetchall()
    assert [r[0] for r in by_k] == [0, 1, 2]

"""The table store as a source and sink of jobs, against real daemons:
MapReduce's TableInput / TableOutput, `sc.table` / `rdd.saveToTable`, and
SQL tables STORED BY the table store (Hive's HBase handler)."""

from __future__ import annotations

import pytest

from stackyard.mapreduce import Job, TableInput, TableOutput, TextOutput
from tests.compute.conftest import ENGINE
from tests.table.conftest import TABLES

JOBS = {**TABLES, **ENGINE, "coords": 1, "thrift": False}
ROWS = 3000


@pytest.fixture(scope="module")
def jc(tmp_path_factory):
    from tests.conftest import MiniCluster
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **JOBS)
    tables = c.client.tables
    tables.create_table("sales", {"cf": {}}, splits=[b"r1000", b"r2000"])
    tables.create_table("totals", {"sum": {}})
    c.client.table("sales").put_rows(
        (f"r{i:04d}", {b"cf:store": f"s{i % 7}", b"cf:amount": str(i)}) for i in range(ROWS))
    yield c
    c.close()


class StoreTotals(Job):
    input_format = TableInput(columns=[b"cf:store", b"cf:amount"])
    output_format = TableOutput(families=["sum"])

    def mapper(self, row, cells):
        yield cells[b"cf:store"].decode(), int(cells[b"cf:amount"])

    def reducer(self, store, amounts):
        yield store, {b"sum:total": sum(amounts)}


def expected_totals() -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(ROWS):
        out[f"s{i % 7}"] = out.get(f"s{i % 7}", 0) + i
    return out


def test_mapreduce_reads_a_split_per_tablet_beside_its_server_and_writes_a_table(jc):
    from stackyard.table.jobs import table_splits
    tables = jc.client.tables
    splits = table_splits(tables, "sales")
    assert [(s.start, s.stop) for s in splits] == [(b"", b"r1000"), (b"r1000", b"r2000"),
                                                   (b"r2000", b"")]
    chunkservers = {c["address"] for c in jc.chunkservers()}
    for s in splits:         # each names the chunkserver beside the tablet's server
        assert len(s.hosts) == 1 and s.hosts[0] in chunkservers

    r = StoreTotals(reducers=2).run("sales", "totals", client=jc.client)
    assert r.counters["map_input_records"] == ROWS
    assert r.counters["table_rows_read"] == ROWS
    got = {row.decode(): int(d[b"sum:total"]) for row, d in jc.client.table("totals").scan()}
    assert got == expected_totals()
    assert not jc.fs.exists("/totals")        # a table output makes no directory


def test_mapreduce_from_a_table_into_files_with_a_filter_and_a_key_range(jc):
    class Keys(Job):
        input_format = TableInput(columns=[b"cf:store"], filter="ValueFilter(=, 'binary:s3')",
                                  start=b"r0500", stop=b"r2500")
        output_format = TextOutput()
        reducers = 0

        def mapper(self, row, cells):
            yield row.decode(), cells[b"cf:store"].decode()

    Keys().run("sales", "/out/keys", client=jc.client)
    lines = []
    for f in sorted(e["path"] for e in jc.fs.ls("/out/keys") if e["name"].startswith("part")):
        lines += jc.fs.cat(f).decode().splitlines()
    want = [f"r{i:04d}\ts3" for i in range(500, 2500) if i % 7 == 3]
    assert sorted(lines) == want


def test_a_retried_task_writes_the_same_cells_not_new_versions(jc):
    jc.client.tables.create_table("copy", {"cf": {"max_versions": 5}})

    class FailsOnce(Job):
        input_format = TableInput()
        output_format = TableOutput(batch=100)
        reducers = 0

        def mapper(self, row, cells):
            # the first attempt of the middle split dies after its first batches went out
            if self.ctx.number == 0 and row == b"r1500":
                raise RuntimeError("first attempt dies")
            yield row, cells

    r = FailsOnce().run("sales", "copy", client=jc.client)
    assert r.counters.get("output_records", 0) >= ROWS
    t = jc.client.table("copy")
    assert sum(1 for _ in t.scan()) == ROWS
    for key in ("r1000", "r1400", "r2999"):      # written by both attempts: one version
        assert len(t.cells(key, [b"cf:amount"], versions=5)) == 1


def test_the_dataset_api_reads_and_saves_tables(jc):
    sc = jc.client.context("tables")
    try:
        rdd = sc.table("sales", columns=[b"cf:amount"])
        assert rdd.getNumPartitions() == 3
        assert rdd.map(lambda kv: int(kv[1][b"cf:amount"])).sum() == sum(range(ROWS))
        jc.client.tables.create_table("evens", {"cf": {}})
        (rdd.filter(lambda kv: int(kv[1][b"cf:amount"]) % 2 == 0)
            .map(lambda kv: (kv[0], {b"cf:half": int(kv[1][b"cf:amount"]) // 2}))
            .saveToTable("evens"))
        got = dict(jc.client.table("evens").scan())
        assert len(got) == ROWS // 2
        assert got[b"r0010"] == {b"cf:half": b"5"}
        with pytest.raises(Exception, match="does not exist"):
            sc.parallelize([(b"a", {b"cf:x": 1})]).saveToTable("no_such_table")
    finally:
        sc.stop()


def test_sql_over_a_table_stored_by_the_table_store(jc):
    s = jc.client.sql_session()
    s.sql("""CREATE EXTERNAL TABLE sales (id STRING, store STRING, amount INT)
             STORED BY 'org.apache.hadoop.hive.hbase.HBaseStorageHandler'
             WITH SERDEPROPERTIES ('hbase.columns.mapping' = ':key,cf:store,cf:amount')
             TBLPROPERTIES ('hbase.table.name' = 'sales')""")
    rows = s.sql("SELECT store, sum(amount) AS total, count(*) AS n FROM sales "
                 "GROUP BY store ORDER BY store").fetchall()
    assert {r[0]: r[1] for r in rows} == expected_totals()
    assert sum(r[2] for r in rows) == ROWS
    # a condition on the key narrows the scan to the tablets that hold it
    plan = "\n".join(r[0] for r in s.sql(
        "EXPLAIN SELECT amount FROM sales WHERE id >= 'r2100' AND id < 'r2200'").fetchall())
    assert "1 tablets" in plan
    assert s.sql("SELECT count(*), min(amount), max(amount) FROM sales "
                 "WHERE id >= 'r2100' AND id < 'r2200'").fetchall() == [(100, 2100, 2199)]
    assert s.sql("SELECT amount FROM sales WHERE id = 'r0042'").fetchall() == [(42,)]

    # INSERT INTO writes rows; a NULL is no cell; text that is not an INT reads as NULL
    jc.client.tables.create_table("people", {"p": {}})
    s.sql("CREATE EXTERNAL TABLE people (name STRING, age INT, city STRING) USING hbase "
          "OPTIONS ('hbase.columns.mapping' ':key,p:age,p:city')")
    assert "2 rows" in s.sql("INSERT INTO people VALUES ('ann', 31, 'Oslo'), "
                             "('bob', NULL, 'Rome')").fetchall()[0][0]
    assert jc.client.table("people").row("bob") == {b"p:city": b"Rome"}
    jc.client.table("people").put("cy", {b"p:age": "unknown"})
    assert s.sql("SELECT name, age, city FROM people ORDER BY name").fetchall() == [
        ("ann", 31, "Oslo"), ("bob", None, "Rome"), ("cy", None, None)]
    # joins with file tables go through the same engine
    s.sql("CREATE TABLE stores (store STRING, name STRING) STORED AS PARQUET")
    s.sql("INSERT INTO stores VALUES ('s1', 'one'), ('s2', 'two')")
    got = s.sql("SELECT st.name, count(*) FROM sales JOIN stores st ON sales.store = st.store "
                "GROUP BY st.name ORDER BY st.name").fetchall()
    assert got == [("one", len(range(1, ROWS, 7))), ("two", len(range(2, ROWS, 7)))]


@pytest.mark.parametrize("ddl, message", [
    ("CREATE EXTERNAL TABLE x (k STRING) STORED BY 'org.apache.hadoop.hive.hbase."
     "HBaseStorageHandler' TBLPROPERTIES ('hbase.table.name' = 'sales')", "hbase.columns.mapping"),
    ("CREATE EXTERNAL TABLE x (k STRING, v STRING) STORED BY 'org.apache.hadoop.hive.hbase."
     "HBaseStorageHandler' WITH SERDEPROPERTIES ('hbase.columns.mapping' = ':key,cf:v') "
     "TBLPROPERTIES ('hbase.table.name' = 'nope')", "'nope' does not exist"),
    ("CREATE EXTERNAL TABLE x (k STRING, v STRING) STORED BY 'org.apache.hadoop.hive.hbase."
     "HBaseStorageHandler' WITH SERDEPROPERTIES ('hbase.columns.mapping' = ':key,zz:v') "
     "TBLPROPERTIES ('hbase.table.name' = 'sales')", "no column family zz"),
    ("CREATE EXTERNAL TABLE x (k STRING, v STRING) STORED BY 'org.apache.hadoop.hive.hbase."
     "HBaseStorageHandler' WITH SERDEPROPERTIES ('hbase.columns.mapping' = ':key') "
     "TBLPROPERTIES ('hbase.table.name' = 'sales')", "1 entries for 2 columns"),
    ("CREATE TABLE x (k STRING, v STRING) STORED BY 'org.apache.hadoop.hive.hbase."
     "HBaseStorageHandler' WITH SERDEPROPERTIES ('hbase.columns.mapping' = ':key,cf:v')",
     "must be EXTERNAL"),
    ("CREATE EXTERNAL TABLE x (k STRING) STORED BY 'com.example.Other'", "storage handler"),
])
def test_bad_table_store_ddl_is_named(jc, ddl, message):
    from stackyard.sql.errors import AnalysisError
    with pytest.raises(AnalysisError, match=message):
        jc.client.sql_session().sql(ddl)

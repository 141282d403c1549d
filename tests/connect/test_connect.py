"""PySpark's DataFrame client (pyspark-client) against Stackyard's Spark
Connect server: the common DataFrame calls, spark.sql, writes, the catalog,
sessions kept apart, errors as Spark's own classes, the token, reattaching
to an execution, and artifacts shipped to the workers."""

from __future__ import annotations

import uuid

import grpc
import pytest
from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import Row
from pyspark.sql import functions as F

from tests.connect.conftest import remote, session


def test_dataframe_calls_answer_as_spark_does(spark):
    df = spark.createDataFrame([(14, "Tom"), (23, "Alice"), (16, "Bob")], ["age", "name"])
    assert df.columns == ["age", "name"]
    assert [f.dataType.simpleString() for f in df.schema] == ["bigint", "string"]
    assert df.filter(df.age > 15).orderBy("age").collect() == [Row(age=16, name="Bob"),
                                                               Row(age=23, name="Alice")]
    got = df.groupBy((df.age > 15).alias("old")).agg(F.count("*"), F.sum("age")).orderBy(
        "old").collect()
    assert got == [Row(old=False, **{"count(1)": 1, "sum(age)": 14}),
                   Row(old=True, **{"count(1)": 2, "sum(age)": 39})]
    assert df.select((df.age + 1).alias("a"), F.upper("name")).orderBy("a").first() == \
        Row(a=15, **{"upper(name)": "TOM"})
    assert df.select(df.age * 2).columns == ["(age * 2)"]
    other = spark.createDataFrame([Row(name="Tom", height=80), Row(name="Bob", height=85)])
    joined = df.join(other, df.name == other.name, "left").select(df.name, other.height)
    assert sorted(joined.collect(), key=lambda r: r.name) == [
        Row(name="Alice", height=None), Row(name="Bob", height=85), Row(name="Tom", height=80)]
    assert df.join(other, "name").orderBy("name").collect() == [
        Row(name="Bob", age=16, height=85), Row(name="Tom", age=14, height=80)]
    assert spark.range(3).union(spark.range(2, 4)).distinct().count() == 4
    assert df.count() == 3 and not df.isEmpty() and df.limit(0).isEmpty()
    assert df.orderBy(F.desc("age")).head(2)[0].name == "Alice"
    w = spark.sql("SELECT 1 AS x, 'a' AS y").toPandas()
    assert w.to_dict("records") == [{"x": 1, "y": "a"}]


def test_show_prints_spark_s_table(spark, capsys):
    spark.createDataFrame([(2, "Alice"), (5, "Bob")], ["age", "name"]).show()
    assert capsys.readouterr().out == ("+---+-----+\n|age| name|\n+---+-----+\n|  2|Alice|\n"
                                       "|  5|  Bob|\n+---+-----+\n")


def test_window_pivot_and_na(spark):
    from pyspark.sql import Window
    df = spark.createDataFrame([("a", 1, 10.0), ("a", 2, None), ("b", 1, 30.0)],
                               ["k", "n", "v"])
    ranked = df.withColumn("r", F.row_number().over(Window.partitionBy("k").orderBy(
        F.desc("n")))).orderBy("k", "n")
    assert [r.r for r in ranked.collect()] == [2, 1, 1]
    pivoted = df.groupBy("k").pivot("n").agg(F.sum("n")).orderBy("k").collect()
    assert pivoted == [Row(k="a", **{"1": 1, "2": 2}), Row(k="b", **{"1": 1, "2": None})]
    assert df.na.fill(0.0).where(F.col("v") == 0).count() == 1
    assert df.na.drop().count() == 2


def test_spark_sql_with_parameters_and_ddl(spark):
    spark.sql("CREATE DATABASE IF NOT EXISTS conn_db")
    spark.sql("CREATE TABLE conn_db.t (id INT, name STRING) USING parquet")
    spark.sql("INSERT INTO conn_db.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert spark.sql("SELECT name FROM conn_db.t WHERE id > :lo ORDER BY id",
                     args={"lo": 1}).collect() == [Row(name="b"), Row(name="c")]
    assert spark.sql("SELECT count(*) AS n FROM conn_db.t WHERE id < ?",
                     args=[3]).first().n == 2
    assert spark.catalog.tableExists("t", "conn_db")
    assert [c.name for c in spark.catalog.listColumns("t", "conn_db")] == ["id", "name"]
    assert "conn_db" in [d.name for d in spark.catalog.listDatabases()]
    spark.sql("DROP TABLE conn_db.t")
    assert not spark.catalog.tableExists("t", "conn_db")


def test_writes_to_paths_and_tables(spark):
    df = spark.createDataFrame([(i, f"k{i % 3}") for i in range(30)], ["id", "k"])
    df.write.partitionBy("k").parquet("/conn/out")
    back = spark.read.parquet("/conn/out/k=k1")
    assert sorted(r.id for r in back.collect()) == list(range(1, 30, 3))
    with pytest.raises(AnalysisException, match="PATH_ALREADY_EXISTS"):
        df.write.parquet("/conn/out")
    df.write.mode("overwrite").csv("/conn/csv", header=True)
    again = spark.read.csv("/conn/csv", header=True, inferSchema=True)
    assert sorted(r.id for r in again.collect()) == list(range(30))
    df.write.saveAsTable("conn_tab")
    df.limit(5).write.mode("append").saveAsTable("conn_tab")
    assert spark.table("conn_tab").count() == 35
    df.limit(2).write.insertInto("conn_tab", overwrite=True)
    assert spark.table("conn_tab").count() == 2
    df.writeTo("conn_v2").create()
    df.writeTo("conn_v2").append()
    assert spark.table("conn_v2").count() == 60
    df.limit(1).writeTo("conn_v2").overwrite(F.lit(True))
    assert spark.table("conn_v2").count() == 1


def test_sessions_keep_their_temp_views_and_settings_apart(connect_cluster, spark):
    other = session(remote(connect_cluster))
    try:
        spark.range(3).createOrReplaceTempView("mine")
        assert spark.table("mine").count() == 3
        with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
            other.table("mine").count()
        spark.range(5).createOrReplaceGlobalTempView("shared")
        assert other.table("global_temp.shared").count() == 5
        spark.conf.set("spark.sql.shuffle.partitions", "3")
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert other.conf.get("spark.sql.shuffle.partitions") != "3"
    finally:
        other.stop()


def test_errors_are_spark_s_error_classes(spark):
    with pytest.raises(AnalysisException) as e:
        spark.table("no_such_table").collect()
    assert e.value.getCondition() == "TABLE_OR_VIEW_NOT_FOUND"
    with pytest.raises(AnalysisException) as e:
        spark.range(2).select("nope").collect()
    assert e.value.getCondition().startswith("UNRESOLVED_COLUMN")
    assert "`nope`" in str(e.value)
    with pytest.raises(ParseException) as e:
        spark.sql("SELEC 1").collect()
    assert e.value.getCondition() == "PARSE_SYNTAX_ERROR"
    assert "line 1" in str(e.value)


def test_a_client_without_the_token_is_refused(connect_cluster):
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException
    url = remote(connect_cluster)
    port = url.split(":")[2].split("/")[0]
    for bad in (f"sc://localhost:{port}/;token=wrong", f"sc://localhost:{port}"):
        s = None
        with pytest.raises((SparkConnectGrpcException, grpc.RpcError, Exception)) as e:
            s = session(bad)
            s.range(1).collect()
        if s is not None:
            s.stop()
        text = str(e.value)
        assert "token" in text.lower() or "unavailable" in text.lower() or \
            "refused" in text.lower() or "failed to connect" in text.lower(), text
    token = connect_cluster.yard("token", check=True).stdout.decode().strip()
    s = session(remote(connect_cluster, token))
    try:
        assert s.range(2).count() == 2
    finally:
        s.stop()


def _stub(connect_cluster):
    from pyspark.sql.connect.proto import base_pb2_grpc
    url = remote(connect_cluster)
    port = url.split(":")[2].split("/")[0]
    token = connect_cluster.home.secret_file.read_text().strip()
    creds = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(token))
    channel = grpc.secure_channel(f"localhost:{port}", creds)
    return channel, base_pb2_grpc.SparkConnectServiceStub(channel)


def test_an_execution_can_be_reattached_until_released(connect_cluster):
    from pyspark.sql.connect.proto import base_pb2 as B
    channel, stub = _stub(connect_cluster)
    try:
        sid, op = str(uuid.uuid4()), str(uuid.uuid4())
        req = B.ExecutePlanRequest(session_id=sid, operation_id=op)
        req.user_context.user_id = "tester"
        req.plan.root.range.end = 25000
        req.plan.root.range.step = 1
        opt = req.request_options.add()
        opt.reattach_options.reattachable = True
        stream = stub.ExecutePlan(req)
        first = next(stream)           # the client goes away after one response
        stream.cancel()
        again = B.ReattachExecuteRequest(session_id=sid, operation_id=op,
                                         last_response_id=first.response_id)
        again.user_context.user_id = "tester"
        rest = list(stub.ReattachExecute(again))
        assert rest[-1].HasField("result_complete")
        assert sum(r.arrow_batch.row_count for r in [first] + rest) == 25000
        rel = B.ReleaseExecuteRequest(session_id=sid, operation_id=op)
        rel.user_context.user_id = "tester"
        rel.release_all.SetInParent()
        stub.ReleaseExecute(rel)
        with pytest.raises(grpc.RpcError) as e:
            list(stub.ReattachExecute(again))
        assert "OPERATION_NOT_FOUND" in e.value.details()
    finally:
        channel.close()


def test_malformed_requests_get_errors_not_crashes(connect_cluster):
    from pyspark.sql.connect.proto import base_pb2 as B
    channel, stub = _stub(connect_cluster)
    try:
        with pytest.raises(grpc.RpcError) as e:
            stub.AnalyzePlan(B.AnalyzePlanRequest(session_id="not-a-uuid"))
        assert "INVALID_HANDLE" in e.value.details()
        req = B.ExecutePlanRequest(session_id=str(uuid.uuid4()))
        with pytest.raises(grpc.RpcError) as e:
            list(stub.ExecutePlan(req))     # no plan at all
        assert e.value.code() != grpc.StatusCode.UNAVAILABLE
        raw = channel.unary_unary("/spark.connect.SparkConnectService/AnalyzePlan")
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\xff\xff\xff garbage")
        assert e.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT,
                                  grpc.StatusCode.UNKNOWN)
    finally:
        channel.close()
    assert session(remote(connect_cluster)).range(1).count() == 1   # the server lives on


def test_cache_keeps_partitions_in_the_workers(spark, connect_cluster, tmp_path, capsys):
    from pyspark import StorageLevel
    (tmp_path / "n.csv").write_text("n\n" + "\n".join(str(i) for i in range(5000)) + "\n")
    connect_cluster.fs.put(str(tmp_path / "n.csv"), "/conn/cache/n.csv")
    df = spark.read.csv("/conn/cache", header=True, inferSchema=True).where("n % 2 = 0")
    df.persist(StorageLevel.MEMORY_AND_DISK)
    assert df.storageLevel == StorageLevel.MEMORY_AND_DISK
    assert df.count() == 2500 and df.agg(F.sum("n")).first()[0] == sum(range(0, 5000, 2))
    capsys.readouterr()
    df.select("n").explain()
    assert "InMemoryTableScan" in capsys.readouterr().out
    df.unpersist()
    assert df.storageLevel == StorageLevel(False, False, False, False, 1)
    assert df.count() == 2500

"""A cluster with a Spark Connect server, and PySpark's own client of it."""

from __future__ import annotations

import warnings

import pytest

from tests.conftest import MiniCluster
from tests.sql.conftest import SQL

warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
CONNECT = {**SQL, "connect": True}


def remote(cluster: MiniCluster, token: str | None = None) -> str:
    address = cluster.cluster.daemon("connect")["address"]
    port = address.rsplit(":", 1)[1]
    token = token if token is not None else (cluster.home.secret_file.read_text().strip())
    return f"sc://localhost:{port}/;token={token}"


@pytest.fixture(scope="module")
def connect_cluster(tmp_path_factory):
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **CONNECT)
    yield c
    c.close()


def session(url: str):
    from pyspark.sql import SparkSession
    # a new session each time: builder.remote() would hand back a cached one
    return SparkSession.builder.remote(url).create()


@pytest.fixture(scope="module")
def spark(connect_cluster):
    s = session(remote(connect_cluster))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tpch_connect(connect_cluster, tmp_path_factory):
    """TPC-H SF 0.1 as Parquet tables tpch.T, and DuckDB over the same files."""
    import duckdb

    from tests.sql.conftest import TABLES, tpchgen
    root = tmp_path_factory.mktemp("tpch")
    pq_dir = tpchgen("parquet", 0.1, root / "parquet")
    s = connect_cluster.client.sql_session()
    s.sql("CREATE DATABASE IF NOT EXISTS tpch")
    for t in TABLES:
        connect_cluster.fs.put(str(pq_dir / f"{t}.parquet"), f"/tpch/parquet/{t}/{t}.parquet")
        s.sql(f"CREATE EXTERNAL TABLE IF NOT EXISTS tpch.{t} USING parquet "
              f"LOCATION '/tpch/parquet/{t}'")
    ref = duckdb.connect()
    for t in TABLES:
        ref.sql(f"CREATE VIEW {t} AS SELECT * FROM '{pq_dir / t}.parquet'")
    yield ref
    ref.close()

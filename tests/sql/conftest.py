"""A cluster with a coordination cell (the metastore) and two workers, and
TPC-H data made by tpchgen-cli, loaded into the DFS as Parquet and as
delimited text, with DuckDB over the same files as the reference."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compute.conftest import ENGINE
from tests.conftest import MiniCluster

SQL = {**ENGINE, "coords": 1}
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
QUERIES = Path(__file__).resolve().parents[2] / "examples" / "tpch" / "queries"
TPCH_COLUMNS = {
    "nation": "n_nationkey bigint, n_name string, n_regionkey bigint, n_comment string",
    "region": "r_regionkey bigint, r_name string, r_comment string",
    "part": "p_partkey bigint, p_name string, p_mfgr string, p_brand string, p_type string, "
            "p_size int, p_container string, p_retailprice decimal(15,2), p_comment string",
    "supplier": "s_suppkey bigint, s_name string, s_address string, s_nationkey bigint, "
                "s_phone string, s_acctbal decimal(15,2), s_comment string",
    "partsupp": "ps_partkey bigint, ps_suppkey bigint, ps_availqty int, "
                "ps_supplycost decimal(15,2), ps_comment string",
    "customer": "c_custkey bigint, c_name string, c_address string, c_nationkey bigint, "
                "c_phone string, c_acctbal decimal(15,2), c_mktsegment string, c_comment string",
    "orders": "o_orderkey bigint, o_custkey bigint, o_orderstatus string, "
              "o_totalprice decimal(15,2), o_orderdate date, o_orderpriority string, "
              "o_clerk string, o_shippriority int, o_comment string",
    "lineitem": "l_orderkey bigint, l_partkey bigint, l_suppkey bigint, l_linenumber int, "
                "l_quantity decimal(15,2), l_extendedprice decimal(15,2), "
                "l_discount decimal(15,2), l_tax decimal(15,2), l_returnflag string, "
                "l_linestatus string, l_shipdate date, l_commitdate date, "
                "l_receiptdate date, l_shipinstruct string, l_shipmode string, "
                "l_comment string",
}


def tpchgen(fmt: str, scale: float, out: Path) -> Path:
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    subprocess.run([exe, fmt, "-s", str(scale), "-o", str(out)], check=True,
                   capture_output=True, timeout=600)
    return out


def query(n: int) -> str:
    return (QUERIES / f"q{n:02d}.sql").read_text()


def normalized(rows) -> list[tuple]:
    """Rows sorted, numbers rounded to the cent (decimals and doubles alike)."""
    out = []
    for row in rows:
        out.append(tuple(round(float(v), 2) if isinstance(v, float) or type(v).__name__ ==
                         "Decimal" else v for v in row))
    return sorted(out, key=repr)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **SQL)
    yield c
    c.close()


@pytest.fixture(scope="module")
def tpch(cluster, tmp_path_factory):
    """TPC-H SF 0.1 in the DFS: Parquet under /tpch/parquet/T, text under /tpch/tbl/T;
    tables tpch.T (Parquet) and tpch_text.T (delimited text); a DuckDB reference."""
    import duckdb
    root = tmp_path_factory.mktemp("tpch")
    pq_dir = tpchgen("parquet", 0.1, root / "parquet")
    tbl_dir = tpchgen("tbl", 0.1, root / "tbl")
    fs = cluster.fs
    for t in TABLES:
        fs.put(str(pq_dir / f"{t}.parquet"), f"/tpch/parquet/{t}/{t}.parquet")
        fs.put(str(tbl_dir / f"{t}.tbl"), f"/tpch/tbl/{t}/{t}.tbl")
    s = cluster.client.sql_session()
    s.sql("CREATE DATABASE IF NOT EXISTS tpch")
    s.sql("CREATE DATABASE IF NOT EXISTS tpch_text")
    for t in TABLES:
        s.sql(f"CREATE EXTERNAL TABLE IF NOT EXISTS tpch.{t} USING parquet "
              f"LOCATION '/tpch/parquet/{t}'")
        s.sql(f"CREATE EXTERNAL TABLE IF NOT EXISTS tpch_text.{t} ({TPCH_COLUMNS[t]}) "
              f"ROW FORMAT DELIMITED FIELDS TERMINATED BY '|' STORED AS TEXTFILE "
              f"LOCATION '/tpch/tbl/{t}'")
    ref = duckdb.connect()
    for t in TABLES:
        ref.sql(f"CREATE VIEW {t} AS SELECT * FROM '{pq_dir / t}.parquet'")
    yield {"duckdb": ref, "root": root}
    ref.close()

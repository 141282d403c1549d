"""The 22 TPC-H queries written with PySpark's DataFrame API, through
pyspark-client against the Stackyard Spark Connect server, give DuckDB's
answers for the same SQL over the same files."""

from __future__ import annotations

import pytest

from examples.tpch.dataframe import QUERIES
from tests.sql.conftest import normalized, query


@pytest.mark.parametrize("n", range(1, 23))
def test_tpch_dataframe_query_gives_duckdbs_answer(spark, tpch_connect, n):
    got = QUERIES[n](lambda name: spark.read.table(f"tpch.{name}")).collect()
    want = tpch_connect.sql(query(n)).fetchall()
    assert normalized([tuple(r) for r in got]) == normalized(want)
    assert len(got) == len(want) > 0

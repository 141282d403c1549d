"""All 22 TPC-H queries, written as the spec writes them, give DuckDB's
answers over the same files: in Parquet through sy.connect().sql, and in
delimited text through `yard sql -f`."""

from __future__ import annotations

import json

import pytest

from tests.sql.conftest import normalized, query


@pytest.mark.parametrize("n", range(1, 23), ids=lambda n: f"q{n:02d}")
def test_tpch_query_over_parquet_matches_duckdb(cluster, tpch, n):
    s = cluster.client.sql_session()
    s.sql("USE tpch")
    got = s.sql(query(n)).fetchall()
    want = tpch["duckdb"].sql(query(n)).fetchall()
    assert len(got) == len(want) and len(want) > 0
    assert normalized(got) == normalized(want)


def test_all_22_queries_over_delimited_text_through_yard_sql_f(cluster, tpch, tmp_path):
    script = tmp_path / "tpch.sql"
    with open(script, "w") as f:
        for n in range(1, 23):
            f.write(f"SELECT 'q{n:02d}' AS marker;\n{query(n)}\n")
    proc = cluster.yard("sql", "-d", "tpch_text", "-f", str(script), "--output", "json",
                        timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    results: dict[int, list] = {}
    current = None
    for line in proc.stdout.decode().splitlines():
        row = json.loads(line)
        if list(row) == ["marker"]:
            current = int(row["marker"][1:])
            results[current] = []
        else:
            results[current].append(tuple(row.values()))
    assert sorted(results) == list(range(1, 23))
    for n in range(1, 23):
        want = tpch["duckdb"].sql(query(n)).fetchall()
        got = [tuple(_number(v) for v in r) for r in results[n]]
        assert normalized(got) == normalized([tuple(_number(v) for v in r) for r in want]), n


def _number(v):
    """JSON carries decimals as text; dates too (compared as text)."""
    import datetime
    import decimal
    if isinstance(v, decimal.Decimal | float):
        return round(float(v), 2)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, str):
        try:
            return round(float(v), 2) if any(c.isdigit() for c in v) and "-" not in v[1:] \
                and v.replace(".", "", 1).lstrip("-").isdigit() else v
        except ValueError:
            return v
    return v

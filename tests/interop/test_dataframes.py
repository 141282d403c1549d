"""pandas, pyarrow, polars, dask and duckdb read and write DFS files through
"yard://" URLs, as a user's code would: no stackyard import, no options."""

from __future__ import annotations

import uuid

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest


@pytest.fixture
def frame():
    n = 20_000
    return pd.DataFrame({"id": range(n), "word": [f"w{i % 97}" for i in range(n)],
                         "x": [i * 0.5 for i in range(n)]})


@pytest.fixture
def base(yard_home):
    path = f"/interop-{uuid.uuid4().hex[:8]}"
    yield path
    yard_home.fs.rm(path, recursive=True)


def test_pandas_csv_and_parquet_round_trip(frame, base, yard_home):
    frame.to_csv(f"yard://{base}/x.csv", index=False)
    frame.to_parquet(f"yard://{base}/x.parquet")
    pd.testing.assert_frame_equal(pd.read_csv(f"yard://{base}/x.csv"), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(f"yard://{base}/x.parquet"), frame)
    # they are real DFS files, replicated like any other
    st = yard_home.fs.stat(f"{base}/x.parquet")
    assert st["type"] == "file" and st["replication"] == 3 and st["length"] > 0


def test_pyarrow_dataset_over_a_directory(frame, base):
    fs = fsspec.filesystem("yard")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i in range(3):
        pq.write_table(table.slice(i * 5000, 5000), f"{base}/parts/part-{i}.parquet", filesystem=fs)
    # pyarrow resolves URIs only against its built-in file systems (it has no
    # scheme registry), so the fsspec one is passed in with a plain DFS path
    dataset = ds.dataset(f"{base}/parts/", format="parquet", filesystem=fs)
    got = dataset.to_table().sort_by("id")
    assert got.num_rows == 15000
    assert got.column("id").to_pylist() == list(range(15000))
    # the CSV side: pyarrow writes through an fsspec file, reads back through the URL
    from pyarrow import csv
    with fs.open(f"{base}/t.csv", "wb") as f:
        csv.write_csv(table, f)
    with fsspec.open(f"yard://{base}/t.csv", "rb") as f:
        assert csv.read_csv(f).to_pylist() == table.to_pylist()


def test_duckdb_reads_and_writes_through_registered_filesystem(frame, base):
    import duckdb
    con = duckdb.connect()
    con.register_filesystem(fsspec.filesystem("yard"))
    frame.to_parquet(f"yard://{base}/in.parquet")
    frame.to_csv(f"yard://{base}/in.csv", index=False)
    q = "SELECT word, count(*) AS n, sum(x) AS s FROM '{}' GROUP BY word ORDER BY word"
    from_parquet = con.sql(q.format(f"yard://{base}/in.parquet")).df()
    from_csv = con.sql(q.format(f"yard://{base}/in.csv")).df()
    expected = (frame.groupby("word").agg(n=("id", "size"), s=("x", "sum")).reset_index()
                .sort_values("word").reset_index(drop=True))
    pd.testing.assert_frame_equal(from_parquet, expected, check_dtype=False)
    pd.testing.assert_frame_equal(from_csv, expected, check_dtype=False)
    con.sql(f"COPY (SELECT * FROM '{f'yard://{base}/in.parquet'}' WHERE id < 100) "
            f"TO 'yard://{base}/out.parquet' (FORMAT parquet)")
    con.sql(f"COPY (SELECT * FROM '{f'yard://{base}/in.parquet'}' WHERE id < 100) "
            f"TO 'yard://{base}/out.csv' (FORMAT csv, HEADER)")
    assert pd.read_parquet(f"yard://{base}/out.parquet")["id"].tolist() == list(range(100))
    assert pd.read_csv(f"yard://{base}/out.csv")["id"].tolist() == list(range(100))


def test_polars_reads_and_writes(frame, base):
    import polars as pl
    frame.to_parquet(f"yard://{base}/p.parquet")
    # polars' native reader knows only cloud schemes; use_pyarrow=True (or a
    # file object) goes through fsspec
    got = pl.read_parquet(f"yard://{base}/p.parquet", use_pyarrow=True)
    assert got.height == len(frame) and got["id"].to_list() == frame["id"].tolist()
    with fsspec.open(f"yard://{base}/p2.csv", "wb") as f:
        got.write_csv(f)
    with fsspec.open(f"yard://{base}/p2.csv", "rb") as f:
        assert pl.read_csv(f)["word"].to_list() == frame["word"].tolist()


def test_dask_reads_csv_glob(frame, base):
    import dask
    import dask.dataframe as dd
    for i in range(3):
        frame.iloc[i * 1000:(i + 1) * 1000].to_csv(f"yard://{base}/d/{i}.csv", index=False)
    with dask.config.set(scheduler="processes", num_workers=2):
        df = dd.read_csv(f"yard://{base}/d/*.csv")
        assert df.npartitions == 3
        assert int(df["id"].sum().compute()) == sum(range(3000))
        df.to_parquet(f"yard://{base}/d-out")
    assert sorted(pd.read_parquet(f"yard://{base}/d-out")["id"]) == list(range(3000))


def test_ranged_read_fetches_only_what_it_needs(base, yard_home):
    """A 3-chunk file (1 MiB chunks in tests): reading 10 bytes from the
    middle chunk transfers about one 64 KiB block, not the chunk."""
    data = bytes(range(256)) * (3 * 4096)
    fs = fsspec.filesystem("yard")
    fs.pipe(f"{base}/r.bin", data)
    before = _bytes_served(yard_home)
    assert fs.cat_file(f"{base}/r.bin", start=1_500_000, end=1_500_010) == data[1_500_000:1_500_010]
    assert 0 < _bytes_served(yard_home) - before <= 2 * 65536
    with fs.open(f"{base}/r.bin", "rb", block_size=4096, cache_type="none") as f:
        f.seek(2_100_000)
        assert f.read(100) == data[2_100_000:2_100_100]
    assert _bytes_served(yard_home) - before <= 4 * 65536


def _bytes_served(cluster) -> int:
    """Sum of chunk bytes every chunkserver has sent, from its /metrics."""
    total = 0
    for d in cluster.chunkservers():
        text = cluster.client.fs.pool.request(d["address"], "GET", "/metrics", {}).read().decode()
        for line in text.splitlines():
            if line.startswith("stackyard_chunkserver_bytes_read "):
                total += int(float(line.split()[1]))
    return total

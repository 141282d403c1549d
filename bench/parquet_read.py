"""Reading a Parquet file with pyarrow through "yard://", beside the same
file read from local disk, in one run.

    python bench/parquet_read.py [--size 1g] [--repeat 3]

Generates a Parquet file of about SIZE (numeric and string columns, snappy),
stores one copy on local disk and one in a fresh 3-chunkserver cluster
(replication 3, 64 MiB chunks), then reads each with `pyarrow.parquet.
read_table` REPEAT times, alternating, and prints the best MB/s of each
and their ratio. Both copies are in the page cache by then, so the ratio
measures what the DFS path costs over a local read. Issue 4's target: the
yard read at least half the local one. Every table read is checked equal
to the generated one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import scratch_cluster  # noqa: E402

from stackyard.cli.common import parse_size  # noqa: E402
from stackyard.connect import connect  # noqa: E402

MB = 1e6


def make_table(target_bytes: int) -> pa.Table:
    """Rows of (int64, float64, int32, 12-char string): ~20 bytes of Parquet
    each once encoded, with random values so that compression leaves the
    size near the target."""
    rows = target_bytes // 20
    rng = np.random.default_rng(7)
    words = np.array([f"w{i:011d}" for i in range(50_000)])
    return pa.table({
        "id": np.arange(rows, dtype=np.int64),
        "x": rng.random(rows),
        "k": rng.integers(0, 1 << 31, rows, dtype=np.int32),
        "w": pa.array(words[rng.integers(0, len(words), rows)]),
    })


def timed_read(source, **kwargs) -> tuple[float, pa.Table]:
    t = time.perf_counter()
    table = pq.read_table(source, **kwargs)
    return time.perf_counter() - t, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="1g")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    size = parse_size(args.size)
    with scratch_cluster(chunkservers=3, coords=0, workers=0,
                         chunk_size=64 << 20) as (root, cluster):
        print(f"generating a ~{size / MB:.0f} MB Parquet file ...", flush=True)
        table = make_table(size)
        local = root / "local.parquet"
        pq.write_table(table, local, row_group_size=1 << 20)
        nbytes = local.stat().st_size
        cluster.up()
        client = connect(home=str(root / "cluster"), embedded=False)
        client.fs.put(str(local), "/bench.parquet")
        import fsspec
        yfs = fsspec.filesystem("yard", home=str(root / "cluster"))
        best = {"local": float("inf"), "yard": float("inf")}
        for _ in range(args.repeat):
            for name in best:
                if name == "local":
                    secs, got = timed_read(str(local))
                else:
                    secs, got = timed_read("yard:///bench.parquet", filesystem=yfs)
                assert got.num_rows == table.num_rows and got.equals(table), f"{name}: wrong table"
                del got
                best[name] = min(best[name], secs)
        local_mbs, yard_mbs = nbytes / best["local"] / MB, nbytes / best["yard"] / MB
        print(f"file: {nbytes / MB:.0f} MB, {table.num_rows} rows, "
              f"{pq.ParquetFile(local).num_row_groups} row groups")
        print(f"{'pyarrow read_table, local disk':40s} {local_mbs:8.0f} MB/s")
        print(f"{'pyarrow read_table, yard:// (r3)':40s} {yard_mbs:8.0f} MB/s")
        print(f"ratio yard / local: {yard_mbs / local_mbs:.2f}  (target >= 0.5)")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

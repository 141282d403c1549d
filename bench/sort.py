"""Sorting 100-byte records (10-byte keys), TeraSort style: yard beside its
peers, in one run.

    python bench/sort.py [--records 10000000] [--skip spark,dask]

Generates the records (examples/terasort/teragen.py's format) on local disk
and in a fresh local cluster (2 workers), then prints MB/s for:
  - a one-process numpy sort (read, argsort on the keys, write): the
    per-core limit;
  - yard: examples/terasort/terasort.py, 2 reducers, a sampled range
    partitioner, output replication 1;
  - PySpark local[2]: RDD (binaryRecords, sortByKey) and DataFrame (orderBy);
  - Dask: a LocalCluster of 2 single-threaded processes, sort_values on a
    DataFrame of (key, the 100-byte record in an Arrow binary column).
Every output is checked: globally sorted, same record count, and the same
order-independent fingerprint as the input. Spark and Dask are measured up
to their sorted partitions being checked, not written out; yard's time
includes writing its output to the DFS.
Issue 6's target: yard ahead of every peer in the run, Dask included.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratch import scratch_cluster, timed  # noqa: E402

from stackyard.connect import connect  # noqa: E402

MB = 1e6
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)   # Spark's workers need our numpy
RECORD, KEY = 100, 10
_MULT = (np.arange(1, 13, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def load_example(name: str, rel: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / rel)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fingerprint(rows: np.ndarray) -> int:
    """Order-independent: a sum over records of a mix of their 8-byte words."""
    if not len(rows):
        return 0
    r = np.ascontiguousarray(rows)
    words = r[:, :96].view(np.uint64)
    tail = r[:, 96:].view(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        mixed = (words * _MULT).sum(axis=1, dtype=np.uint64) ^ (tail[:, 0] * np.uint64(31))
        return int(mixed.sum(dtype=np.uint64))


def keys_of(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows[:, :KEY]).view(f"S{KEY}").ravel()


class Checker:
    """Accumulates partitions in order; verifies order, count, fingerprint."""

    def __init__(self):
        self.last, self.count, self.fp = b"", 0, 0

    def add_keys(self, first: bytes, last: bytes, ordered: bool, count: int, fp: int) -> None:
        if count:
            assert ordered and first >= self.last, "not globally sorted"
            self.last = last
        self.count += count
        self.fp = (self.fp + fp) % (1 << 64)

    @classmethod
    def of(cls, summaries) -> Checker:
        """A checker fed partition summaries (partition_summary's), in order."""
        c = cls()
        for s in summaries:
            c.add_keys(*s)
        return c

    def add_rows(self, rows: np.ndarray) -> None:
        k = keys_of(rows)
        self.add_keys(k[0] if len(k) else b"", k[-1] if len(k) else b"",
                      bool(np.all(k[1:] >= k[:-1])), len(k), fingerprint(rows))


def numpy_sort(src: Path, dst: Path) -> Checker:
    rows = np.fromfile(src, dtype=np.uint8).reshape(-1, RECORD)
    out = rows[np.argsort(keys_of(rows), kind="stable")]
    out.tofile(dst)
    c = Checker()
    c.add_rows(out)
    return c


def partition_summary(rows_iter):
    """For Spark / Dask partitions: (first key, last key, sorted?, count, fingerprint)."""
    rows = list(rows_iter)
    if not rows:
        return [(b"", b"", True, 0, 0)]
    r = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, RECORD)
    k = keys_of(r)
    return [(bytes(k[0]), bytes(k[-1]), bool(np.all(k[1:] >= k[:-1])), len(k), fingerprint(r))]


def spark_rdd(path: Path) -> Checker:
    from pyspark import SparkConf, SparkContext
    sc = SparkContext(conf=SparkConf().setMaster("local[2]").setAppName("sort")
                      .set("spark.ui.enabled", "false").set("spark.driver.memory", "4g"))
    try:
        records = sc.binaryRecords(str(path), RECORD).map(lambda r: (bytes(r[:KEY]), bytes(r)))
        parts = records.sortByKey(numPartitions=2).values().mapPartitions(partition_summary)
        return Checker.of(parts.collect())
    finally:
        sc.stop()


def spark_df(path: Path) -> Checker:
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("sort-df")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
             .getOrCreate())
    try:
        rdd = spark.sparkContext.binaryRecords(str(path), RECORD).map(
            lambda r: (bytes(r[:KEY]), bytes(r)))
        df = spark.createDataFrame(rdd, "key binary, record binary").orderBy("key")
        parts = df.rdd.map(lambda row: bytes(row["record"])).mapPartitions(partition_summary)
        return Checker.of(parts.collect())
    finally:
        spark.stop()


def _dask_block(path: str, start: int, count: int):
    """A partition for Dask: the key's first 8 bytes as a big-endian integer to
    sort by (printable ASCII: the same order as the bytes), and the whole
    record in an Arrow binary column, so that the shuffle moves it."""
    import pandas as pd
    import pyarrow as pa
    r = np.fromfile(path, dtype=np.uint8, count=count * RECORD,
                    offset=start * RECORD).reshape(-1, RECORD)
    k8 = np.ascontiguousarray(r[:, :8]).view(">i8").ravel().astype(np.int64)
    offsets = pa.py_buffer((np.arange(len(r) + 1, dtype=np.int32) * RECORD).tobytes())
    records = pa.Array.from_buffers(pa.binary(), len(r),
                                    [None, offsets, pa.py_buffer(r.tobytes())])
    return pd.DataFrame({"k": k8, "record": pd.Series(records,
                                                      dtype=pd.ArrowDtype(pa.binary()))})


def _dask_summary(df):
    import pandas as pd
    arr = df["record"].array._pa_array.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    rows = data[offsets[0]:offsets[-1]].reshape(-1, RECORD)
    k = keys_of(rows)
    # the fingerprint travels as text: a uint64 column would come back as float
    s = (bytes(k[0]), bytes(k[-1]), bool(np.all(k[1:] >= k[:-1])), len(k),
         str(fingerprint(rows))) if len(k) else (b"", b"", True, 0, "0")
    return pd.DataFrame([s], columns=["first", "last", "ordered", "count", "fp"])


def dask_sort(path: Path, n: int) -> Checker:
    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster
    per = 1_000_000
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="8GB") as cluster, Client(cluster):
        parts = [dask.delayed(_dask_block)(str(path), s, min(per, n - s)) for s in range(0, n, per)]
        meta = _dask_block(str(path), 0, 1).iloc[:0]
        df = dd.from_delayed(parts, meta=meta).sort_values("k")
        summaries = df.map_partitions(_dask_summary, meta={
            "first": object, "last": object, "ordered": bool, "count": int,
            "fp": object}).compute()
    return Checker.of((s.first, s.last, s.ordered, s.count, int(s.fp))
                      for s in summaries.itertuples(index=False))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--skip", default="", help="comma-separated: spark,dask")
    args = ap.parse_args()
    n, skip = args.records, set(filter(None, args.skip.split(",")))
    gen = load_example("bench_teragen", "terasort/teragen.py")
    sorter = load_example("bench_terasort", "terasort/terasort.py")
    rows = []
    with scratch_cluster(chunkservers=3, coords=0, workers=2,
                         chunk_size=64 << 20) as (root, cluster):
        cluster.up()
        client = connect(home=str(root / "cluster"), embedded=False)
        print(f"generating {n} records ({n * RECORD / MB:.0f} MB) ...", flush=True)
        gen.generate(client.fs, n, "/sort/in")
        local = root / "in.bin"
        client.fs.get("/sort/in", str(local))
        data = np.fromfile(local, dtype=np.uint8).reshape(-1, RECORD)
        expected = (n, fingerprint(data))
        del data
        nbytes = n * RECORD

        def check(name: str, c: Checker) -> None:
            if (c.count, c.fp) != expected:
                raise AssertionError(f"{name}: {c.count} records, fingerprint {c.fp}; "
                                     f"expected {expected}")

        secs, c = timed(lambda: numpy_sort(local, root / "out.bin"))
        check("numpy", c)
        rows.append(("one-process numpy sort (per-core limit)", secs))
        (root / "out.bin").unlink()

        t = time.perf_counter()
        result = sorter.TeraSort(reducers=2).run("/sort/in", "/sort/out", client=client)
        secs = time.perf_counter() - t
        c = Checker()
        for part in client.fs.glob("/sort/out/part-r-*"):
            with client.fs.open(part, "rb") as f:
                c.add_rows(np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, RECORD))
        check("yard", c)
        rows.append(("yard TeraSort (2 reducers, output r1)", secs))
        for name, s_ in rows:
            print(f"  {name}: {nbytes / s_ / MB:.1f} MB/s", flush=True)
        client.close()
        cluster.down()
        for name, fn, key in (("PySpark local[2], RDD sortByKey", lambda: spark_rdd(local), "spark"),
                              ("PySpark local[2], DataFrame orderBy", lambda: spark_df(local),
                               "spark"),
                              ("Dask, 2 processes, sort_values", lambda: dask_sort(local, n),
                               "dask")):
            if key in skip:
                continue
            try:
                secs, c = timed(fn)
            except ImportError as exc:
                print(f"  {name}: skipped ({exc})")
                continue
            check(name, c)
            rows.append((name, secs))
            print(f"  {name}: {nbytes / secs / MB:.1f} MB/s", flush=True)
        print(f"\nsort of {n} records ({nbytes / MB:.0f} MB), every output checked:")
        for name, secs in rows:
            print(f"  {name:44s} {nbytes / secs / MB:7.1f} MB/s  {secs:6.1f} s")
        yard = rows[1][1]
        print(f"\nyard ahead of every peer: {all(yard < s for n_, s in rows[2:])}")
        print(f"yard counters: {result.counters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

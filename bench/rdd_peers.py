"""What the dataset benchmarks share: yard's local cluster and its context,
PySpark local[2] and a Dask cluster of 2 single-threaded processes, each
running the very same example functions (PySpark's RDD API)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)     # Spark's workers: our numpy

from scratch import scratch_cluster  # noqa: E402

from stackyard.connect import connect  # noqa: E402

MB = 1e6


def example(name: str):
    """examples/NAME/NAME.py as module NAME_example, pickled by value by every
    engine (their workers cannot import it)."""
    import importlib.util

    import cloudpickle
    spec = importlib.util.spec_from_file_location(f"{name}_example",
                                                  ROOT / "examples" / name / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    cloudpickle.register_pickle_by_value(mod)
    try:
        from pyspark import cloudpickle as spark_pickle
        spark_pickle.register_pickle_by_value(mod)
    except ImportError:
        pass
    return mod


@contextmanager
def yard_context() -> Iterator[tuple]:
    """(context, folder): a fresh local cluster of 2 workers, as `yard cluster up`."""
    with scratch_cluster(chunkservers=3, coords=0, workers=2,
                         chunk_size=64 << 20) as (root, cluster):
        cluster.up()
        client = connect(home=str(root / "cluster"), embedded=False)
        try:
            with client.context("bench", progress=False) as sc:
                yield sc, root
        finally:
            client.close()


@contextmanager
def spark_context() -> Iterator:
    from pyspark import SparkConf, SparkContext
    sc = SparkContext(conf=SparkConf().setMaster("local[2]").setAppName("bench")
                      .set("spark.ui.enabled", "false"))
    sc.setLogLevel("ERROR")
    try:
        yield sc
    finally:
        sc.stop()


@contextmanager
def dask_client() -> Iterator:
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def report(title: str, rows: list[tuple[str, float]], target: str) -> None:
    print(f"\n{title}, every answer checked against the others:")
    base = dict(rows).get("PySpark local[2], RDD")
    for name, secs in rows:
        ratio = f"  ({base / secs:.2f}x PySpark RDD's speed)" if base else ""
        print(f"  {name:36s} {secs:7.1f} s{ratio}")
    yard = dict(rows).get("yard, 2 workers")
    if yard and base:
        print(f"\n{target}: yard {'ahead of' if yard < base else 'BEHIND'} PySpark's RDD API "
              f"({base / yard:.2f}x its speed)")

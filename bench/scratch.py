"""What every benchmark sets up: a scratch folder ($BENCH_DIR or /tmp) with
a local cluster configured under it, both gone when the benchmark ends,
whatever happened (a filled disk once stopped the whole machine); and a
stopwatch."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackyard.cluster.home import Home  # noqa: E402
from stackyard.cluster.local import LocalCluster, Settings  # noqa: E402


@contextmanager
def scratch_cluster(**settings) -> Iterator[tuple[Path, LocalCluster]]:
    """(folder, cluster): the cluster lives in FOLDER/cluster and is not started."""
    root = Path(tempfile.mkdtemp(prefix="yard-bench-", dir=os.environ.get("BENCH_DIR")))
    cluster = LocalCluster(Home.at(root / "cluster"), Settings(**settings))
    try:
        yield root, cluster
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)


def timed(fn):
    """(seconds, result) of FN()."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out

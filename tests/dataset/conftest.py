from __future__ import annotations

import pytest

from tests.compute.conftest import ENGINE
from tests.conftest import MiniCluster

# PySpark local[2]: two task slots, so defaultParallelism is 2 as in its docs
DATASET = {**ENGINE, "worker_slots": 1}


def write(fs, path: str, data: bytes | str) -> None:
    """A DFS file with DATA (text is written as UTF-8)."""
    with fs.open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def worker_metric(engine, name: str) -> int:
    """The sum over the live workers of their /metrics value stackyard_worker_NAME."""
    total = 0
    for w in engine.workers():
        text = engine.pool.request(w["address"], "GET", "/metrics").read().decode()
        line = [x for x in text.splitlines() if x.startswith(f"stackyard_worker_{name} ")][0]
        total += int(float(line.split()[1]))
    return total


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **DATASET)
    yield c
    c.close()


@pytest.fixture(scope="module")
def sc(cluster):
    """A dataset context (PySpark's SparkContext) on a 2-worker cluster."""
    with cluster.client.context("tests") as context:
        yield context

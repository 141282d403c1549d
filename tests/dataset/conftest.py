from __future__ import annotations

import pytest

from tests.conftest import MiniCluster

# PySpark local[2]: two task slots, so defaultParallelism is 2 as in its docs
DATASET = dict(workers=2, worker_dead_after=2.0, speculative_min_seconds=1.0, worker_slots=1)


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

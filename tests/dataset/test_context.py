"""The context (PySpark's SparkContext): making datasets from driver data
and files, shared variables, laziness, caching in the workers."""

from __future__ import annotations

import random
import time
from operator import add

import pytest

from stackyard.compute.client import JobFailed
from stackyard.dataset import AccumulatorParam, StorageLevel
from tests.dataset.conftest import worker_metric, write


def jobs(cluster) -> int:
    return len(cluster.client.engine.jobs())


def test_parallelize_and_range(sc):
    assert sc.range(1, 7, 2).collect() == [1, 3, 5]
    assert sc.range(10, numSlices=3).glom().collect() == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert sc.parallelize(range(5), 5).getNumPartitions() == 5
    assert sc.parallelize([]).collect() == []
    with pytest.raises(ValueError, match="numSlices"):
        sc.parallelize([1], -1)


def test_large_driver_data_goes_through_the_dfs(sc, cluster):
    rng = random.Random(3)
    data = [(rng.random(), f"row {i:012d}") for i in range(60_000)]     # over 1 MiB pickled
    rdd = sc.parallelize(data, 4)
    assert cluster.fs.exists(sc.staging)
    assert rdd.map(lambda r: r[0]).sum() == pytest.approx(sum(r[0] for r in data))
    assert rdd.count() == 60_000


def test_transformations_are_lazy(sc, cluster):
    before = jobs(cluster)
    rdd = sc.parallelize(range(100)).map(lambda x: 1 / 0).filter(bool).reduceByKey(add)
    rdd.cache()
    assert jobs(cluster) == before          # nothing ran, not even the failing map
    assert sc.parallelize(range(10)).count() == 10
    assert jobs(cluster) == before + 1


def test_text_file_from_the_dfs(sc, cluster):
    lines = [f"line {i} " + "y" * (i % 50) for i in range(40_000)]
    write(cluster.fs, "/texts/big.txt", ("\n".join(lines) + "\n").encode())   # ~2 chunks
    write(cluster.fs, "/texts/small.txt", b"one\ntwo\n")
    rdd = sc.textFile("/texts/big.txt")
    assert rdd.getNumPartitions() >= 2
    assert rdd.collect() == lines
    assert sc.textFile("/texts/big.txt", minPartitions=7).getNumPartitions() >= 7
    assert sc.textFile("/texts/big.txt", minPartitions=7).count() == 40_000
    assert sorted(sc.textFile("/texts/*.txt").filter(lambda s: "o" in s).collect()) == \
        ["one", "two"]
    assert sc.textFile("/texts/small.txt,/texts/small.txt").count() == 4
    assert sc.textFile("/texts/small.txt", use_unicode=False).first() == b"one"
    with pytest.raises(FileNotFoundError, match="Input path does not exist"):
        sc.textFile("/texts/missing.txt")


def test_text_file_from_local_disk(sc, tmp_path):
    path = tmp_path / "local.txt"
    path.write_text("".join(f"{i}\n" for i in range(1000)))
    rdd = sc.textFile(f"file://{path}", 3)
    assert rdd.getNumPartitions() == 3
    assert rdd.map(int).sum() == sum(range(1000))


def test_whole_text_files(sc, cluster):
    for i in range(3):
        write(cluster.fs, f"/whole/f{i}.txt", f"content {i}\nmore".encode())
    got = dict(sc.wholeTextFiles("/whole").collect())
    assert got == {f"/whole/f{i}.txt": f"content {i}\nmore" for i in range(3)}


def test_broadcast(sc):
    lookup = sc.broadcast({i: str(i) for i in range(100)})
    assert lookup.value[7] == "7"
    assert sc.parallelize(range(10), 3).map(lambda i: lookup.value[i * 10]).collect() == \
        [str(i * 10) for i in range(10)]
    lookup.destroy()
    with pytest.raises(ValueError, match="destroyed"):
        sc.parallelize([1]).map(lambda i: lookup.value).collect()


def test_accumulators(sc):
    total = sc.accumulator(0)
    fsum = sc.accumulator(0.0)

    def visit(x):
        total.add(x)
        fsum.add(0.5)
        return x

    assert sc.parallelize(range(100), 4).map(visit).count() == 100
    assert total.value == sum(range(100)) and fsum.value == 50.0

    class ListParam(AccumulatorParam):
        def zero(self, value):
            return []

        def addInPlace(self, value1, value2):  # noqa: N802
            return value1 + value2

    seen = sc.accumulator([], ListParam())
    sc.parallelize(["a", "b", "c"], 3).foreach(lambda x: seen.add([x]))
    assert sorted(seen.value) == ["a", "b", "c"]
    with pytest.raises(TypeError, match="accum_param"):
        sc.accumulator("text")
    with pytest.raises(JobFailed, match="only read on the driver"):
        sc.parallelize([1]).map(lambda x: total.value).collect()


def test_default_parallelism(sc):
    assert sc.defaultParallelism == 2
    assert sc.defaultMinPartitions == 2


def test_cached_partitions_live_in_the_workers_and_tasks_go_to_them(sc, cluster):
    engine = cluster.client.engine
    rdd = sc.parallelize(range(10_000), 4).map(lambda x: x * 2).cache()
    assert rdd.sum() == 2 * sum(range(10_000))
    where = engine.blocks(sc.applicationId + f"/rdd_{rdd.id()}_")
    assert len(where) == 4
    assert {w for held in where.values() for w, _ in held} == {"worker-1", "worker-2"}
    assert rdd.count() == 10_000
    job = engine.jobs()[-1]
    assert job["counters"].get("cache_hits", 0) + job["counters"].get("cache_remote_hits", 0) \
        == 4
    assert job["counters"].get("data_local_tasks", 0) >= 3     # scheduled beside their blocks
    assert not job["counters"].get("cached_partitions")
    page = engine.pool.request(engine.scheduler, "GET", "/status").read().decode()
    assert "Dataset applications" in page and sc.applicationId in page
    rdd.unpersist()
    assert engine.blocks(sc.applicationId + f"/rdd_{rdd.id()}_") == {}


def test_a_cached_shuffle_output_is_not_recomputed(sc, cluster):
    counted = sc.accumulator(0)

    def tick(kv):
        counted.add(1)
        return kv

    grouped = sc.parallelize([(i % 10, i) for i in range(1000)], 4).map(tick) \
        .groupByKey().cache()
    assert grouped.count() == 10
    assert counted.value == 1000
    assert sorted(grouped.mapValues(len).collect()) == [(k, 100) for k in range(10)]
    assert counted.value == 1000        # the map before the shuffle did not run again
    before = len(cluster.client.engine.jobs()[-1]["stages"])
    assert before == 1                   # no shuffle stage in the second job


def test_persist_on_disk_and_memory_and_disk(sc):
    disk = sc.parallelize(range(1000), 2).map(lambda x: (x, str(x))) \
        .persist(StorageLevel.DISK_ONLY)
    assert disk.count() == 1000
    assert dict(disk.collect())[999] == "999"
    both = sc.parallelize(range(1000), 2).persist(StorageLevel.MEMORY_AND_DISK)
    assert both.sum() == both.sum() == sum(range(1000))


def test_stop_forgets_the_application(cluster):
    engine = cluster.client.engine
    with cluster.client.context("short") as sc:
        rdd = sc.parallelize(range(100), 2).cache()
        rdd.count()
        kept = engine.jobs()[-1]["id"]          # its folders stay while the app lives
        assert any((cluster.home.data(w) / "jobs" / kept).exists()
                   for w in ("worker-1", "worker-2"))
        sc.broadcast([1, 2, 3])
        app, staging = sc.applicationId, sc.staging
        assert engine.blocks(app + "/")
        assert cluster.fs.exists(staging)
    assert engine.blocks(app + "/") == {}
    assert not cluster.fs.exists(staging)
    from tests.conftest import wait_until
    wait_until(lambda: not any((cluster.home.data(w) / "jobs" / kept).exists()
                               for w in ("worker-1", "worker-2")),
               10, "the workers to remove the application's job folders")
    with pytest.raises(RuntimeError, match="stopped"):
        sc.parallelize([1])


def test_run_job(sc):
    rdd = sc.parallelize(range(6), 3)
    assert sc.runJob(rdd, lambda part: [x * x for x in part]) == [0, 1, 4, 9, 16, 25]
    assert sc.runJob(rdd, lambda part: [sum(part)], [0, 2]) == [1, 9]
    assert sc.union([rdd, rdd]).count() == 12


def test_reduce_by_key_combines_on_the_map_side(sc, cluster):
    pairs = sc.parallelize([(i % 10, 1) for i in range(10_000)], 4)
    assert sorted(pairs.reduceByKey(add).collect()) == [(k, 1000) for k in range(10)]
    counters = cluster.client.engine.jobs()[-1]["counters"]
    assert counters["shuffle_records_written"] <= 4 * 10      # one record per key per map


def test_a_shuffle_larger_than_the_sort_buffer_spills_and_stays_right(sc, cluster):
    old = sc.sort_buffer
    sc.sort_buffer = 64 << 10
    try:
        pairs = sc.parallelize([(f"key-{i}", i) for i in range(60_000)], 2)
        grouped = pairs.groupByKey(3).mapValues(sum)
        assert grouped.count() == 60_000
        counters = cluster.client.engine.jobs()[-1]["counters"]
        assert counters["spilled_records"] > counters["shuffle_records_written"]   # runs merged
        assert sorted(grouped.values().collect()) == list(range(60_000))
    finally:
        sc.sort_buffer = old


DRIVER = """
import sys, time
import stackyard as sy
sc = sy.connect(embedded=False).context("doomed")
sc.parallelize(range(1000), 2).cache().count()
print(sc.applicationId, flush=True)
time.sleep(600)
"""


def test_a_driver_killed_without_stop_loses_its_cache_after_its_lease(make_cluster):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import wait_until
    from tests.dataset.conftest import DATASET

    c = make_cluster(**{**DATASET, "app_lease": 2.0})
    env = {**os.environ, "STACKYARD_HOME": str(c.home.root)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        app = driver.stdout.readline().strip()
        assert app.startswith("app_")
        engine = c.client.engine
        time.sleep(3)                     # past one lease: the living driver renews it
        assert len(engine.blocks(app + "/")) == 2
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        wait_until(lambda: engine.blocks(app + "/") == {}, 10, "the dead driver's blocks dropped")
        wait_until(lambda: worker_metric(engine, "block_memory_bytes") == 0, 10,
                   "the workers to forget the blocks")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)


def test_a_later_job_reads_the_shuffle_an_earlier_job_wrote(sc, cluster):
    calls = sc.accumulator(0)

    def tick(kv):
        calls.add(1)
        return kv

    counts = sc.parallelize([(i % 7, 1) for i in range(700)], 3).map(tick).reduceByKey(add)
    assert counts.count() == 7
    assert calls.value == 700
    assert sorted(counts.collect()) == [(k, 100) for k in range(7)]
    assert calls.value == 700            # the map stage was skipped, not run again
    job = cluster.client.engine.jobs()[-1]
    assert len(job["stages"]) == 1
    assert sorted(counts.mapValues(lambda v: v * 2).collect()) == [(k, 200) for k in range(7)]
    assert calls.value == 700


def test_combining_in_place_past_the_memory_bound_spills_and_stays_right(sc, cluster):
    pairs = sc.parallelize([(i % 5000, i) for i in range(40_000)], 2).partitionBy(2)
    old = sc.task_memory
    sc.task_memory = 1                   # every memory check flushes the combining dict
    try:
        sums = pairs.reduceByKey(add)    # same partitioner: combined where it is
        assert b"+-" not in sums.toDebugString().split(b"ShuffledRDD")[0]
        got = dict(sums.collect())
    finally:
        sc.task_memory = old
    assert got == {k: sum(range(k, 40_000, 5000)) for k in range(5000)}
    counters = cluster.client.engine.jobs()[-1]["counters"]
    assert counters["combine_spills"] == 2            # both partitions went through the disk


def test_levels_under_a_small_block_memory(make_cluster):
    from tests.dataset.conftest import DATASET
    c = make_cluster(**{**DATASET, "worker_block_memory": 200_000})
    engine = c.client.engine
    with c.client.context("small") as sc:
        # 510 KB pickled per partition: none fits the 200 KB, so no partition is
        # kept, whichever worker runs it (at 180 KB one was, now and then)
        data = [f"record {i:08d} {'x' * 32}" for i in range(40_000)]
        spilled = sc.parallelize(data, 4).persist(StorageLevel.MEMORY_AND_DISK)
        assert spilled.count() == 40_000
        assert worker_metric(engine, "block_disk_bytes") > 0           # spilled, not dropped
        assert spilled.count() == 40_000
        job = engine.jobs()[-1]["counters"]
        assert job.get("cache_hits", 0) + job.get("cache_remote_hits", 0) == 4
        spilled.unpersist()
        dropped = sc.parallelize(data, 4).cache()          # MEMORY_ONLY: too big to keep
        assert dropped.count() == 40_000
        assert sorted(dropped.collect()) == data           # recomputed from lineage
        job = engine.jobs()[-1]["counters"]
        assert job.get("cache_misses", 0) == 4 and job.get("cached_partitions", 0) == 4


def test_functions_that_cannot_reach_the_workers_get_a_clear_error(sc):
    import threading
    other = sc.parallelize([1, 2])
    with pytest.raises(RuntimeError, match="cannot be used inside another's functions"):
        sc.parallelize([1]).map(lambda x: other.count()).collect()
    with pytest.raises(RuntimeError, match="driver only"):
        sc.parallelize([1]).map(lambda x: sc.defaultParallelism).collect()
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot be sent to the workers"):
        sc.parallelize([1]).map(lambda x: lock.locked()).collect()

"""Lineage recomputation against real processes: a worker holding cached
partitions is killed with SIGKILL between two k-means iterations, and
another while a shuffle's map outputs live on it; the results equal a
failure-free run's."""

from __future__ import annotations

import random
import threading
from operator import add

from tests.conftest import wait_until
from tests.dataset.conftest import DATASET, write
from tests.dataset.test_examples import blobs, km


def holders(engine, prefix: str) -> set[str]:
    return {w for held in engine.blocks(prefix).values() for w, _ in held}


def test_kmeans_survives_the_loss_of_a_worker_holding_cached_partitions(make_cluster):
    c = make_cluster(**DATASET)
    engine = c.client.engine
    write(c.fs, "/km/points.txt", "".join(f"{x!r} {y!r}\n" for x, y in blobs(30_000, 4, 7)))
    with c.client.context("clean") as sc:
        want = km.kmeans(sc, "/km/points.txt", 4, iterations=5, converge=-1, partitions=4)
    with c.client.context("killed") as sc:
        killed = []

        def kill_after_the_second(i, centers):
            if i == 1:
                assert holders(engine, sc.applicationId + "/") == {"worker-1", "worker-2"}
                c.kill("worker-1")
                killed.append(len(engine.jobs()))

        got = km.kmeans(sc, "/km/points.txt", 4, iterations=5, converge=-1, partitions=4,
                        on_iteration=kill_after_the_second)
        assert killed
        later = engine.jobs()[killed[0]:]
        assert later and all(j["state"] == "succeeded" for j in later)
        # the partitions worker-1 held were recomputed from the file and cached again
        assert later[0]["counters"].get("cached_partitions", 0) >= 1
    assert got == want


def test_a_shuffle_survives_the_loss_of_the_worker_holding_its_map_outputs(make_cluster):
    c = make_cluster(**DATASET)
    rng = random.Random(2)
    pairs = [(rng.randrange(500), rng.randrange(100)) for _ in range(40_000)]
    want = {}
    for k, v in pairs:
        want[k] = want.get(k, 0) + v
    with c.client.context("shuffle") as sc:
        slow = sc.parallelize(pairs, 8).reduceByKey(add).map(_slowly)
        box = {}
        t = threading.Thread(target=lambda: box.update(result=slow.collectAsMap()), daemon=True)
        t.start()
        # the reduce stage is running: every map output is written, half on worker-1
        wait_until(lambda: any(s["succeeded"] == s["tasks"] and s["partitions"]
                               for j in c.client.engine.jobs() if j["state"] == "running"
                               for s in j["stages"]), 60, "the reduce stage to start")
        c.kill("worker-1")
        t.join(120)
        assert box.get("result") == want
        job = c.client.engine.jobs()[-1]
        assert job["state"] == "succeeded"
        counters = job["counters"]
        # map outputs lost with worker-1 were computed again from lineage
        assert counters.get("rerun_lost_outputs", 0) + counters.get("fetch_failures", 0) >= 1


def _slowly(kv):
    import time
    time.sleep(0.004)
    return kv


def test_a_lost_shuffle_output_of_an_earlier_job_is_recomputed(make_cluster):
    c = make_cluster(**DATASET)
    with c.client.context("reuse") as sc:
        counts = sc.parallelize([(i % 50, 1) for i in range(5000)], 6).reduceByKey(add, 4)
        assert counts.count() == 50                     # its map outputs stay on the workers
        # the worker holding map outputs (on a loaded machine one may have run them all)
        tasks = c.client.engine.call("detail", job=c.client.engine.jobs()[-1]["id"])
        holders = sorted({a["worker"] for t in tasks if t["stage"] == tasks[0]["stage"]
                          for a in t["attempts"] if a["state"] == "succeeded"})
        c.kill(holders[0])
        assert sorted(counts.collect()) == [(k, 100) for k in range(50)]
        jobs = c.client.engine.jobs()
        # the job reading the lost outputs was resubmitted with its whole lineage
        assert [len(j["stages"]) for j in jobs[-2:]] == [1, 2]
        assert jobs[-1]["state"] == "succeeded"


def test_a_straggler_gets_a_backup_attempt_and_the_answer_is_unchanged(make_cluster, tmp_path):
    c = make_cluster(**DATASET)
    marker = str(tmp_path / "slow-once")

    def slow_first_time(split, it):
        import os
        import time
        if split == 0 and not os.path.exists(marker):     # the first attempt only
            open(marker, "w").close()
            time.sleep(60)
        return it

    with c.client.context("straggler") as sc:
        total = sc.parallelize(range(1000), 4).mapPartitionsWithIndex(slow_first_time).sum()
    assert total == sum(range(1000))
    job = c.client.engine.jobs()[-1]
    assert job["state"] == "succeeded"
    assert job["counters"].get("speculative_attempts", 0) >= 1

"""Wide shuffles at scale of tasks, against real processes: one request per
reducer and remote worker, empty segments never asked for, drivers whose
jobs die with them, fair sharing between applications, cancellation, and
lineage that stays short (checkpoints)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from operator import add
from pathlib import Path

import pytest

from stackyard.compute.client import JobFailed
from tests.conftest import wait_until
from tests.dataset.conftest import DATASET, worker_metric

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "transitive_closure"))

import transitive_closure as tc  # noqa: E402


# 14 rounds, the last with 32,766 partitions (as PySpark's own run of the
# example): 84 s on an idle 2-core machine, three times that beside the rest
# of the suite
@pytest.mark.timeout(900)
def test_transitive_closure_example_reaches_the_closure(sc):
    rounds = []
    graph = tc.random_graph()
    count, n = tc.closure(sc, graph, 2, lambda r, p, c: rounds.append((r, p, c)))
    assert count == len(tc.closure_here(graph)) == 6816
    # each round doubles the partitions, as on PySpark: the last shuffles are wide
    assert [p for _, p, _ in rounds] == [2 ** (r + 1) - 2 for r in range(2, n + 2)]
    assert n == 14


def test_a_reduce_asks_each_remote_worker_once_and_never_for_empty_segments(make_cluster):
    c = make_cluster(**{**DATASET, "task_group_seconds": 0})     # 1,000 map outputs
    with c.client.context("fanin") as sc:
        before = worker_metric(c.client.engine, "shuffle_requests_total")
        segments = worker_metric(c.client.engine, "shuffle_segments_total")
        # map i holds one key, so each map output has 1 non-empty partition of 8
        got = sc.parallelize(range(1000), 1000).map(lambda i: (i % 8, 1)).reduceByKey(add, 8)
        assert sorted(got.collect()) == [(k, 125) for k in range(8)]
        job = c.client.engine.jobs()[-1]
    requests = worker_metric(c.client.engine, "shuffle_requests_total") - before
    asked = worker_metric(c.client.engine, "shuffle_segments_total") - segments
    # 8 reducers, each with 1 remote worker: at most 8 requests for 1,000 maps
    assert 1 <= requests <= 8
    # only non-empty segments are asked for: 1,000 at most (8,000 with the empty ones)
    assert asked <= 1000
    counters = job["counters"]
    assert counters.get("shuffle_local_segments", 0) + counters.get("shuffle_remote_segments", 0) == 1000
    assert counters["shuffle_local_segments"] > 0          # read from disk, no request


def test_quick_map_tasks_share_outputs(sc):
    got = sc.parallelize(range(2000), 500).map(lambda i: (i % 50, i)).reduceByKey(add, 50)
    assert dict(got.collect()) == {k: sum(range(k, 2000, 50)) for k in range(50)}
    job = sc.engine.jobs()[-1]
    c = job["counters"]
    assert c["task_groups"] >= 1
    # fewer map outputs than maps: the groups' outputs are what reducers read
    assert c.get("shuffle_local_segments", 0) + c.get("shuffle_remote_segments", 0) < 500 * 50


DRIVER = textwrap.dedent("""
    import os, sys, time
    import stackyard as sy

    def sleepy(x, where=sys.argv[2]):
        with open(os.path.join(where, str(os.getpid())), "w"):
            pass
        time.sleep(120)
        return x

    with sy.connect(home=sys.argv[1], embedded=False).context("doomed") as sc:
        print(sc.applicationId, flush=True)
        sc.parallelize(range(8), 8).map(sleepy).count()
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "ctrl-c"])
def test_a_dead_drivers_jobs_and_tasks_die_with_it(make_cluster, tmp_path, how):
    c = make_cluster(**{**DATASET, "app_lease": 3.0})
    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, str(script), str(c.home.root), str(pids)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        app = driver.stdout.readline().strip()
        assert app.startswith("app_"), driver.stderr.read()
        tasks = wait_until(lambda: [int(p.name) for p in pids.iterdir()] if len(
            list(pids.iterdir())) >= 2 else None, 60, "the driver's tasks to start")
        driver.send_signal(how)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    engine = c.client.engine
    job = wait_until(lambda: [j for j in engine.jobs() if j["app"] == app
                              and j["state"] != "running"], 30, "its job to be cancelled")[0]
    assert job["state"] == "killed" and "cancelled" in job["error"]
    for pid in tasks:
        wait_until(lambda pid=pid: not _alive(pid), 15, f"task process {pid} to be killed")
    assert all(w["running"] == 0 for w in engine.workers())
    # the slots are free: another driver's job runs at once
    with c.client.context("next") as sc:
        assert sc.parallelize(range(10), 2).count() == 10
    page = engine.pool.request(engine.scheduler, "GET", "/status").read().decode()
    assert "cancelled" in page


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is dead: its parent has not reaped it yet
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_applications_share_the_slots(cluster):
    def work(x):
        time.sleep(0.005)
        return x

    big_done = threading.Event()
    with cluster.client.context("big") as big, cluster.client.context("small") as small:
        errors = []

        def run_big() -> None:
            try:
                big.parallelize(range(5000), 5000).map(work).count()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            big_done.set()

        t = threading.Thread(target=run_big)
        t.start()
        engine = cluster.client.engine
        wait_until(lambda: any(j["app"] == big.applicationId and j["state"] == "running"
                               and j["stages"][0]["succeeded"] > 0 for j in engine.jobs()),
                   60, "the big job to run")
        assert small.parallelize(range(10), 10).map(work).count() == 10
        mine = [j for j in engine.jobs() if j["app"] == big.applicationId][-1]
        t.join(300)
        assert not errors
    # the small job did not wait behind the big one's queue of 5,000 tasks
    assert mine["state"] == "running" and mine["stages"][0]["succeeded"] < 2500


def test_cancel_all_jobs_and_job_groups_from_another_thread(sc):
    def slow(x):
        time.sleep(30)
        return x

    engine = sc.engine

    def cancel_when_running(cancel) -> threading.Thread:
        def go() -> None:
            wait_until(lambda: sc.runningJobs() and any(
                j["id"] in sc.runningJobs() and j["stages"][0]["running"] for j in engine.jobs()),
                60, "a running job")
            cancel()
        t = threading.Thread(target=go)
        t.start()
        return t

    t = cancel_when_running(sc.cancelAllJobs)
    with pytest.raises(JobFailed, match="cancelled all of its jobs"):
        sc.parallelize(range(4), 4).map(slow).count()
    t.join()
    sc.setJobGroup("nightly", "the nightly sums")
    t = cancel_when_running(lambda: sc.cancelJobGroup("nightly"))
    with pytest.raises(JobFailed, match="job group 'nightly'"):
        sc.parallelize(range(4), 4).map(slow).sum()
    t.join()
    sc.setJobGroup("", "")
    assert engine.jobs()[-1]["name"] == "the nightly sums"
    assert all(w["running"] == 0 for w in wait_until(
        lambda: all(w["running"] == 0 for w in engine.workers()) and engine.workers(), 30,
        "the cancelled tasks to be killed"))
    with pytest.raises(ValueError, match="not a running job"):
        sc.cancelJob("job_nonesuch")
    assert sc.parallelize(range(5)).sum() == 10          # the context still works


def test_checkpoint_cuts_the_lineage_and_keeps_the_data(sc, cluster):
    with pytest.raises(ValueError, match="Checkpoint directory has not been set"):
        sc.parallelize(range(3)).checkpoint()
    sc.setCheckpointDir("/checkpoints")
    sums = sc.parallelize(range(100), 4).map(lambda x: (x % 10, x)).reduceByKey(add)
    sums.checkpoint()
    assert not sums.isCheckpointed()
    want = {k: sum(range(k, 100, 10)) for k in range(10)}
    assert dict(sums.collect()) == want
    assert sums.isCheckpointed()
    files = cluster.fs.ls(sums.getCheckpointFile(), detail=False)
    assert len([f for f in files if "part-" in f]) == sums.getNumPartitions()
    assert b"+-" not in sums.toDebugString()            # no shuffle left behind it
    assert dict(sums.mapValues(lambda v: v + 1).collect()) == {k: v + 1 for k, v in want.items()}


def test_an_iterative_lineage_keeps_its_payload_small(sc):
    x = sc.parallelize([(i, 1) for i in range(20)], 2)
    sizes, cut = [], None
    for r in range(12):
        x = x.union(sc.parallelize([(r, 1)], 1)).reduceByKey(add, 2)
        if r == 6:
            cut = x
            x.localCheckpoint()
        assert x.count() == 20
        sizes.append(sc.engine.jobs()[-1]["payload_bytes"])
    # the payload carries what is new since the last shuffle, not every round
    assert max(sizes[4:]) < 1.5 * sizes[3]
    assert cut.isLocallyCheckpointed() and cut.isCheckpointed()
    assert dict(x.collect())[5] == 2
    # the lineage printed ends at the checkpoint: 5 rounds after it, not 12
    assert len(x.toDebugString().splitlines()) < 5 * 6


def test_shuffle_outputs_no_dataset_can_read_are_deleted(sc, cluster):
    import gc

    def job_dirs() -> set[str]:
        return {p.name for p in Path(cluster.home.root, "data").glob("worker-*/jobs/*")}

    x = sc.parallelize([(i, 1) for i in range(20)], 2)
    for r in range(6):
        x = x.union(sc.parallelize([(r, 1)], 1)).reduceByKey(add, 2)
        x.count()
    early = {j["id"] for j in sc.engine.jobs()[-6:-3]}
    assert early <= job_dirs()            # kept: a later job of the application may read them
    x.localCheckpoint()
    x.count()
    gc.collect()                          # the rounds before the checkpoint are garbage now
    assert x.map(lambda kv: kv[1]).sum() == 26
    wait_until(lambda: not early & job_dirs(), 30, "the unreachable shuffle outputs to go")
    assert dict(x.collect())[3] == 2


@pytest.mark.parametrize("path", ["/shuffle", "/blocks/get", "/blocks/put"])
def test_the_workers_data_endpoints_refuse_strangers_and_bad_bodies(cluster, path):
    import http.client

    import msgpack

    from stackyard.net.auth import Secret
    from stackyard.net.client import HttpPool
    address = cluster.client.engine.workers()[0]["address"]
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", path, body=b"\x90")                      # no credentials
    resp = conn.getresponse()
    assert resp.status == 401 and b"missing credentials" in resp.read()
    stranger = HttpPool(Secret(b"not-the-secret-at-all"))
    resp = stranger.request(address, "POST", path, body=b"\x90")  # a wrong secret
    assert resp.status == 401 and b"wrong cluster secret" in resp.read()
    pool = cluster.client.engine.pool
    for bad in (b"\xc1", msgpack.packb({"job": 1}), msgpack.packb([[1, 2, 3]]),
                msgpack.packb({"job": "j", "want": [["a", [1 << 62]]]}), msgpack.packb(7)):
        resp = pool.request(address, "POST", path, body=bad)      # malformed
        assert resp.status == 400, (bad, resp.status, resp.read())
        resp.read()
    # oversized: refused from its length, before the body is read
    limit = (1 << 30) if path == "/blocks/put" else (32 << 20)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", path)
    from stackyard.net.auth import body_digest
    conn.putheader("Authorization", pool.secret.sign("POST", path, address, body_digest(b"x")))
    conn.putheader("Content-Length", str(limit + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413, resp.read()

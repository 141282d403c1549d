"""The MapReduce paper's fault tolerance against real processes: a worker
killed with SIGKILL during the map stage and during the reduce stage, and a
straggler beaten by its backup attempt. Each job's output must equal a
failure-free answer."""

from __future__ import annotations

import collections
import threading

import pytest

from tests.compute import jobs
from tests.compute.conftest import ENGINE, make_text, read_output
from tests.conftest import wait_until


@pytest.fixture
def engine_cluster(make_cluster):
    c = make_cluster(**ENGINE)
    text = make_text(60_000, seed=11)
    with c.fs.open("/in/a.txt", "wb") as f:
        f.write(text.encode())
    return c, collections.Counter(text.split())


def start(job, cluster, output):
    box = {}

    def go():
        try:
            box["result"] = job.run("/in", output, client=cluster.client)
        except BaseException as exc:
            box["error"] = exc
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def current_job(cluster) -> str:
    jobs_ = cluster.client.engine.jobs()
    return jobs_[-1]["id"] if jobs_ else ""


def attempts(cluster, job_id):
    return [a | {"stage": t["stage"], "task": t["task"]}
            for t in cluster.client.engine.call("detail", job=job_id) for a in t["attempts"]]


def running_on(cluster, stage: str) -> str | None:
    """The worker of a running attempt of STAGE in the current job, if any."""
    job_id = current_job(cluster)
    if not job_id:
        return None
    busy = [a["worker"] for a in attempts(cluster, job_id)
            if a["state"] == "running" and a["stage"] == stage]
    return busy[0] if busy else None


def finish(t, box, timeout=120):
    t.join(timeout)
    assert not t.is_alive(), "the job did not finish"
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_worker_killed_during_the_map_stage(engine_cluster):
    cluster, expected = engine_cluster
    t, box = start(jobs.SlowWordCount(map_delay=0.0002, reducers=2), cluster, "/out/kill-map")
    victim = wait_until(lambda: running_on(cluster, "map"), 30, "a running map")
    job_id = current_job(cluster)
    cluster.kill(victim)
    result = finish(t, box)
    assert {k: int(v) for k, v in read_output(cluster.fs, "/out/kill-map").items()} == expected
    history = attempts(cluster, job_id)
    lost = [a for a in history if a["worker"] == victim and a["state"] == "killed"]
    assert lost, history
    assert all(a["worker"] != victim for a in history if a["stage"] == "reduce")
    assert result.counters["map_input_records"] == 60_000


def test_worker_killed_during_the_reduce_stage(engine_cluster):
    cluster, expected = engine_cluster
    t, box = start(jobs.SlowWordCount(reduce_delay=0.02, reducers=2), cluster, "/out/kill-reduce")
    victim = wait_until(lambda: running_on(cluster, "reduce"), 30, "a running reduce")
    job_id = current_job(cluster)
    cluster.kill(victim)
    finish(t, box)
    assert {k: int(v) for k, v in read_output(cluster.fs, "/out/kill-reduce").items()} == expected
    history = attempts(cluster, job_id)
    redone = [a for a in history if a["stage"] == "reduce" and a["worker"] != victim
              and a["state"] == "succeeded"]
    assert len(redone) == 2, history      # both reduces end on the survivor
    assert any(a["worker"] == victim and a["state"] == "killed" for a in history), history


def test_a_straggler_is_beaten_by_its_backup(engine_cluster):
    cluster, expected = engine_cluster
    t, box = start(jobs.Straggler(reducers=2), cluster, "/out/straggler")
    result = finish(t, box)
    assert {k: int(v) for k, v in read_output(cluster.fs, "/out/straggler").items()} == expected
    assert result.counters["speculative_attempts"] >= 1
    task1 = [a for a in attempts(cluster, result.id) if a["stage"] == "map" and a["task"] == 1]
    winner = [a for a in task1 if a["state"] == "succeeded"]
    assert len(winner) == 1 and winner[0]["speculative"], task1
    assert any(a["state"] == "killed" and not a["speculative"] for a in task1), task1

"""The scheduler core, one event at a time: locality, retries, lost workers,
lost map outputs, speculation, commit permission."""

from __future__ import annotations

from stackyard.compute.sched_core import FAILED, KILLED, PENDING, SUCCEEDED, SchedulerCore


def mr_spec(maps=4, reducers=2, preferred=None, max_attempts=4, speculative=True):
    return {"name": "t", "user": "u", "max_attempts": max_attempts, "speculative": speculative,
            "stages": [{"name": "map", "tasks": maps, "partitions": reducers,
                        "preferred": preferred or [[] for _ in range(maps)]},
                       {"name": "reduce", "tasks": reducers, "parents": [0]}]}


def beat(core, name, now, reports=(), slots=2, cs=""):
    w = core.workers.get(name)
    running = sorted(w.running) if w else []
    done = {r["attempt"] for r in reports}
    return core.heartbeat(name, f"{name}:1", cs or f"cs-{name}", slots, list(reports),
                          [a for a in running if a not in done], now)


def ok(aid):
    return {"attempt": aid, "state": SUCCEEDED, "counters": {"n": 1}}


def test_maps_then_reduces_and_locality():
    core = SchedulerCore()
    core.submit("j", mr_spec(maps=2, preferred=[["cs-a"], ["cs-b"]]), 0)
    got_b = beat(core, "b", 0, slots=1)["launch"]
    got_a = beat(core, "a", 0, slots=1)["launch"]
    assert [x["task"] for x in got_b] == [1] and [x["task"] for x in got_a] == [0]
    assert beat(core, "c", 0)["launch"] == []          # nothing else is runnable yet
    beat(core, "a", 1, [ok(got_a[0]["attempt"])], slots=1)
    # reduces wait for every map
    assert all(x["stage"] == 0 for x in beat(core, "c", 1)["launch"])
    r = beat(core, "b", 2, [ok(got_b[0]["attempt"])], slots=2)["launch"]
    assert [(x["stage"], x["task"]) for x in r] == [(1, 0)]     # one reduce per heartbeat
    r += beat(core, "b", 2.5, slots=2)["launch"]
    assert [(x["stage"], x["task"]) for x in r] == [(1, 0), (1, 1)]
    beat(core, "b", 3, [ok(x["attempt"]) for x in r])
    s = core.summary(core.jobs["j"])
    assert s["state"] == SUCCEEDED and s["counters"]["data_local_tasks"] == 2
    assert s["counters"]["n"] == 4                     # winners' counters summed


def test_failures_are_retried_then_fail_the_job_with_the_error():
    core = SchedulerCore()
    core.submit("j", mr_spec(maps=1, reducers=0, max_attempts=3), 0)
    a = beat(core, "w", 0)["launch"]
    for i in range(3):
        assert len(a) == 1 and a[0]["number"] == i
        # the heartbeat that reports the failure carries the retry
        a = beat(core, "w", i + 1, [{"attempt": a[0]["attempt"], "state": FAILED,
                                     "error": f"Traceback...\nValueError: boom {i}"}])["launch"]
    assert a == []
    job = core.jobs["j"]
    assert job.state == FAILED and "boom 2" in job.error and "failed 3 times" in job.error


def test_lost_worker_requeues_running_and_unconsumed_map_outputs():
    core = SchedulerCore(dead_after=5)
    core.submit("j", mr_spec(maps=2, reducers=1), 0)
    a = beat(core, "a", 0)["launch"]
    beat(core, "a", 1, [ok(a[0]["attempt"])])                   # map 0 done on a; map 1 runs on a
    assert core.tick(10) == ["a"]
    job = core.jobs["j"]
    assert [t.state for t in job.stages[0].tasks] == [PENDING, PENDING]
    assert job.counters["rerun_lost_outputs"] == 1
    b = beat(core, "b", 11)["launch"]
    assert sorted(x["task"] for x in b) == [0, 1] and all(x["stage"] == 0 for x in b)


def test_fetch_failure_reruns_the_map_without_counting_a_failure():
    core = SchedulerCore()
    core.submit("j", mr_spec(maps=1, reducers=1), 0)
    m = beat(core, "a", 0)["launch"][0]
    r = beat(core, "a", 1, [ok(m["attempt"])])["launch"][0]
    assert r["stage"] == 1
    again = beat(core, "a", 2, [{"attempt": r["attempt"], "state": FAILED, "error": "fetch",
                                 "fetch_failed": [0, 0]}])["launch"]
    job = core.jobs["j"]
    assert [(x["stage"], x["task"]) for x in again] == [(0, 0)]      # the map again, not the reduce
    assert job.stages[1].tasks[0].state == PENDING and job.stages[1].tasks[0].failures == 0
    assert job.counters["fetch_failures"] == 1


def test_straggler_gets_a_backup_and_first_finisher_wins():
    core = SchedulerCore(speculative_slowdown=1.5, speculative_min_seconds=1.0)
    core.submit("j", mr_spec(maps=4, reducers=0), 0)
    a = beat(core, "a", 0, slots=4)["launch"]
    slow = a[3]["attempt"]
    beat(core, "a", 1, [ok(x["attempt"]) for x in a[:3]], slots=4)
    assert beat(core, "b", 1.2)["launch"] == []                 # not yet slow enough
    backup = beat(core, "b", 5)["launch"]
    assert len(backup) == 1 and backup[0]["speculative"] and backup[0]["task"] == 3
    out = beat(core, "b", 6, [ok(backup[0]["attempt"])])
    assert core.jobs["j"].state == SUCCEEDED
    assert core.attempts[slow].state == KILLED
    assert slow in beat(core, "a", 6.5, slots=4)["kill"] or slow in out["kill"]
    assert core.summary(core.jobs["j"])["counters"]["speculative_attempts"] == 1


def test_only_one_attempt_may_commit():
    core = SchedulerCore(speculative_min_seconds=0.1)
    core.submit("j", mr_spec(maps=2, reducers=0), 0)
    a = beat(core, "a", 0)["launch"]
    beat(core, "a", 1, [ok(a[0]["attempt"])])
    b = beat(core, "b", 5)["launch"][0]
    assert b["task"] == 1
    assert core.commit(b["attempt"]) is True
    assert core.commit(a[1]["attempt"]) is False
    assert core.commit(b["attempt"]) is True                    # asking again is fine
    beat(core, "b", 6, [{"attempt": b["attempt"], "state": FAILED, "error": "x"}])
    assert core.commit(a[1]["attempt"]) is True                 # the committer died: next one


def test_worker_restart_loses_what_it_ran():
    core = SchedulerCore()
    core.submit("j", mr_spec(maps=1, reducers=0), 0)
    a = beat(core, "a", 0)["launch"][0]
    core.heartbeat("a", "a:1", "cs-a", 2, [], [], 1)            # restarted: runs nothing
    assert core.attempts[a["attempt"]].state == KILLED
    assert core.jobs["j"].stages[0].tasks[0].failures == 0


def test_results_blocks_and_preferences_by_worker_name():
    core = SchedulerCore()
    core.heartbeat("w1", "w1:1", "cs-1", 1, [], [], 0, blocks=["app/rdd_1_0"])
    core.heartbeat("w2", "w2:1", "cs-2", 1, [], [], 0, blocks=["app/rdd_1_1", "other/rdd_1_0"])
    assert core.block_locations("app/") == {"app/rdd_1_0": [["w1", "w1:1"]],
                                            "app/rdd_1_1": [["w2", "w2:1"]]}
    spec = {"name": "t", "stages": [{"name": "result", "tasks": 2,
                                     "preferred": [["w1"], ["w2"]]}]}
    core.submit("j", spec, 0)
    got = core.heartbeat("w2", "w2:1", "cs-2", 1, [], [], 1)["launch"]
    assert [x["task"] for x in got] == [1]                  # the one whose block it holds
    a = got[0]["attempt"]
    core.heartbeat("w2", "w2:1", "cs-2", 1, [{**ok(a), "output": b"value"}], [], 2)
    assert core.results("j", 0) == [None, b"value"]
    assert core.jobs["j"].counters["data_local_tasks"] == 1
    core.drop_blocks("app/rdd_1_")
    assert core.block_locations("app/") == {}
    assert core.heartbeat("w1", "w1:1", "cs-1", 0, [], [], 3)["drop"] == ["app/rdd_1_"]
    core.tick(100)                                          # both silent: lost, blocks gone
    assert core.block_locations("") == {}


def test_an_application_that_stops_renewing_loses_its_blocks():
    core = SchedulerCore(app_lease=5.0)
    core.heartbeat("w1", "w1:1", "cs-1", 1, [], [], 0, blocks=["a1/rdd_0_0", "a2/rdd_0_0"])
    assert core.app_alive("a1", 0) == 5.0 and core.app_alive("a2", 0) == 5.0
    core.app_alive("a1", 4)
    core.heartbeat("w1", "w1:1", "cs-1", 1, [], [], 6)
    core.tick(6)                                  # a2 silent for 6 s: over its lease
    assert sorted(core.block_locations("")) == ["a1/rdd_0_0"]
    assert core.heartbeat("w1", "w1:1", "cs-1", 1, [], [], 6.5)["drop"] == ["a2/"]
    core.app_ended("a1")
    assert core.block_locations("") == {} and core.apps == {}


def test_delay_scheduling_waits_a_little_for_a_slot_near_the_data():
    core = SchedulerCore(locality_wait=1.0)
    core.heartbeat("w1", "w1:1", "cs-1", 1, [], [], 0)
    core.heartbeat("w2", "w2:1", "cs-2", 1, [], [], 0)
    spec = {"name": "t", "stages": [{"name": "s", "tasks": 2, "preferred": [["w1"], ["w1"]]}]}
    core.submit("j", spec, 0)
    assert [x["task"] for x in core.heartbeat("w1", "w1:1", "cs-1", 1, [], [], 0.1)["launch"]] \
        == [0]
    assert core.heartbeat("w2", "w2:1", "cs-2", 1, [], [], 0.5)["launch"] == []   # waits
    late = core.heartbeat("w2", "w2:1", "cs-2", 1, [], [], 1.2)["launch"]
    assert [x["task"] for x in late] == [1]                  # waited long enough: goes anyway
    spec = {"name": "t2", "stages": [{"name": "s", "tasks": 1, "preferred": [["w9"]]}]}
    core.submit("k", spec, 2)                                # nobody alive is near: at once
    now = core.heartbeat("w2", "w2:1", "cs-2", 2, [], [late[0]["attempt"]], 2.0)["launch"]
    assert [x["job"] for x in now] == ["k"]


def test_quick_tasks_ride_together_and_a_failed_group_splits():
    core = SchedulerCore(group_seconds=0.5)
    core.submit("j", {"name": "t", "stages": [{"name": "s", "tasks": 100}]}, 0)
    first = beat(core, "w", 0, slots=1)["launch"]
    assert first[0]["tasks"] == [0]                     # nothing measured yet: one task
    # it took 10 ms: the next attempt runs a group, within its share of what is left
    nxt = beat(core, "w", 0.01, [ok(first[0]["attempt"])], slots=1)["launch"]
    assert len(nxt[0]["tasks"]) == 50 and nxt[0]["tasks"][0] == 1
    group = nxt[0]["attempt"]
    again = beat(core, "w", 0.02, [{"attempt": group, "state": FAILED, "error": "boom"}],
                 slots=1)["launch"]
    job = core.jobs["j"]
    assert all(job.stages[0].tasks[i].solo for i in nxt[0]["tasks"])
    failed, now, seen = set(nxt[0]["tasks"]), 0.03, []
    while again:                                      # run the job out
        seen.append(again[0]["tasks"])
        outputs = [b"x%d" % i for i in again[0]["tasks"]]
        again = beat(core, "w", now, [{**ok(again[0]["attempt"]), "outputs": outputs}],
                     slots=1)["launch"]
        now += 0.01
    assert job.state == SUCCEEDED
    assert all(len(ts) == 1 for ts in seen if failed & set(ts))   # each alone now
    assert core.results("j", 0) == [b""] + [b"x%d" % i for i in range(1, 100)]


def test_a_map_group_is_one_output_and_empty_segments_are_left_out():
    core = SchedulerCore(group_seconds=1.0)
    core.submit("j", mr_spec(maps=6, reducers=3), 0)
    a = beat(core, "w", 0, slots=1)["launch"][0]
    g = beat(core, "w", 0.01, [{**ok(a["attempt"]), "empty": bytes([0b110])}],
             slots=1)["launch"][0]
    assert g["tasks"] == [1, 2, 3]          # 10 ms a task, 5 left for 1 slot: half of them
    beat(core, "w", 0.03, [{**ok(g["attempt"]), "empty": bytes([0b011])}], slots=1)
    where = core.map_outputs("j", 0, [0, 1, 2])
    assert where["missing_count"] == 2 and where["missing"] == [4, 5]
    got = {o["attempt"]: o["parts"] for o in where["outputs"]}
    assert got == {a["attempt"]: [0], g["attempt"]: [2]}     # one entry for the whole group
    # a reducer that cannot fetch the group's output re-runs all of its tasks
    core._lost_output(core.jobs["j"], 0, 2, 1)
    tasks = core.jobs["j"].stages[0].tasks
    assert [t.state for t in tasks[:4]] == [SUCCEEDED, PENDING, PENDING, PENDING]


def test_applications_share_slots_fairly():
    core = SchedulerCore()
    spec = {"name": "big", "stages": [{"name": "s", "tasks": 5000}]}
    core.submit("big", {**spec, "app": "A"}, 0)
    first = beat(core, "w", 0, slots=4)["launch"]
    assert len(first) == 4 and all(x["job"] == "big" for x in first)
    core.submit("small", {"name": "small", "app": "B", "stages": [{"name": "s", "tasks": 10}]}, 1)
    # the next free slot goes to the application running nothing, not to A's queue
    nxt = beat(core, "w", 2, [ok(first[0]["attempt"])], slots=4)["launch"]
    assert [x["job"] for x in nxt] == ["small"]
    nxt = beat(core, "w", 3, [ok(first[1]["attempt"])], slots=4)["launch"]
    assert [x["job"] for x in nxt] == ["small"]      # A still runs 2, B 1


def test_a_driver_that_stops_renewing_has_its_jobs_cancelled_and_tasks_killed():
    core = SchedulerCore(app_lease=3.0)
    core.app_alive("app1", 0)
    core.submit("j", {"name": "t", "app": "app1", "stages": [{"name": "s", "tasks": 3}]}, 0)
    running = beat(core, "w", 0, slots=2)["launch"]
    assert len(running) == 2
    core.tick(2.0)
    assert core.jobs["j"].state == "running"
    core.tick(4.0)                                   # silent past its lease
    job = core.jobs["j"]
    assert job.state == KILLED and "driver went away" in job.error
    out = beat(core, "w", 4.1, slots=2)
    assert sorted(out["kill"]) == sorted(x["attempt"] for x in running)
    assert out["launch"] == []


def test_cancel_by_group_and_release_of_kept_outputs():
    core = SchedulerCore()
    core.app_alive("a", 0)
    for jid, group in (("j1", "g1"), ("j2", "g2")):
        core.submit(jid, {"name": jid, "app": "a", "job_group": group,
                          "stages": [{"name": "s", "tasks": 1}]}, 0)
    assert core.cancel(1, "a", "g1") == ["j1"]
    assert core.jobs["j1"].state == KILLED and core.jobs["j2"].state == "running"
    assert core.cancel(1, "other") == []
    a = beat(core, "w", 2)["launch"][0]
    beat(core, "w", 3, [ok(a["attempt"])])
    assert core.kept["a"] == ["j2"]                  # its shuffle outputs stay ...
    core.release("a", "j2")                          # ... until the driver needs them no more
    assert core.kept["a"] == [] and "j2" in beat(core, "w", 4)["cleanup"]


def test_a_late_fetch_failure_keeps_an_output_made_again():
    core = SchedulerCore(dead_after=5)
    core.submit("j", mr_spec(maps=1, reducers=2), 0)
    m = beat(core, "a", 0)["launch"][0]
    assert beat(core, "b", 0.5, slots=1)["launch"] == []      # the map is not done yet
    beat(core, "a", 1, [ok(m["attempt"])], slots=0)
    reducer = beat(core, "b", 1.1, slots=1)["launch"][0]
    assert reducer["stage"] == 1
    beat(core, "b", 6.5, slots=1)
    assert core.tick(7) == ["a"]              # a is lost: its map runs again, on c
    again = beat(core, "c", 7, slots=1)["launch"][0]
    assert again["stage"] == 0
    beat(core, "c", 8, [ok(again["attempt"])], slots=0)
    # b's reducer reports, late, that it could not fetch a's (old) output
    beat(core, "b", 9, [{"attempt": reducer["attempt"], "state": FAILED, "error": "fetch",
                         "fetch_failed": [0, 0, m["attempt"]]}], slots=0)
    task = core.jobs["j"].stages[0].tasks[0]
    assert task.state == SUCCEEDED and task.winner.id == again["attempt"]

"""The scheduler's core: jobs, stages, tasks and attempts as plain objects,
driven by events (submit, a worker's heartbeat with its reports, a clock
tick) and answering with what each worker should start or kill. No I/O: the
daemon (scheduler.py) feeds it and delivers its answers.

What it does, as the MapReduce paper and Hadoop's JobTracker do:
- Workers pull: on each heartbeat a worker with free slots gets runnable
  tasks, a task beside a replica of its input first (data locality).
- A stage runs when every stage it reads from has finished.
- A failed attempt is retried, up to `max_attempts`; then the job fails
  with that attempt's error (the user's traceback).
- A worker that stops heartbeating is declared lost: its running attempts
  are re-queued, and so are its finished map tasks whose output a later
  stage still needs (that output lived on its disk).
- A reducer that cannot fetch a map output reports it; the map task is
  re-run, the reducer re-queued, neither counted as a failure.
- Near the end of a stage, a task running much longer than its finished
  peers gets a backup attempt on another worker; the first to finish wins
  and the other is killed (speculative execution).
- A result task asks before committing its output; one attempt per task is
  allowed to, so a speculative pair never both write.
Beyond them:
- Tiny tasks ride together. Once a stage's finished tasks show that a task
  costs far less than starting a process, one attempt runs a group of its
  pending tasks, sized to take about `group_seconds` (and never so large
  that the stage's last slots idle). A map group writes one output for all
  of its tasks, so a worker's outputs, and the segments reducers read,
  grow with the groups, not with the maps (Spark's shuffle consolidation
  and adaptive coalescing of small partitions, decided here from measured
  task times). A group that fails is split: its tasks run alone after it.
- Applications share the slots fairly: a free slot goes to the pool (a
  dataset application, or a job of its own) running the fewest attempts,
  first come first served within a pool (Spark's FAIR scheduler pools).
- A job whose application's driver stops renewing its lease is cancelled
  and its attempts killed, as Spark's jobs die with their driver.
The job's code and records are opaque bytes to this class.
"""

from __future__ import annotations

import itertools
import math
import statistics

from stackyard.compute.sched_state import (  # noqa: F401 (the states are part of this API)
    FAILED,
    KILLED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    Attempt,
    Job,
    Stage,
    Task,
    Worker,
    add_counters,
    job_detail,
    job_summary,
    stage_outputs,
    stage_results,
)

MAX_GROUP = 4096               # tasks one attempt may run
DRIVER_GONE = ("cancelled: its application's driver went away (it stopped renewing its "
               "lease, or stopped)")


class SchedulerCore:
    def __init__(self, dead_after: float = 10.0, speculative_slowdown: float = 1.5,
                 speculative_min_seconds: float = 1.0, app_lease: float = 60.0,
                 locality_wait: float = 0.0, group_seconds: float = 0.0):
        self.jobs: dict[str, Job] = {}
        self.apps: dict[str, float] = {}     # dataset application -> when its driver last spoke
        self.kept: dict[str, list[str]] = {}  # application -> its finished jobs' ids
        self.app_lease = app_lease
        self.locality_wait = locality_wait
        self.group_seconds = group_seconds
        self.workers: dict[str, Worker] = {}
        self.attempts: dict[str, Attempt] = {}
        self.dead_after = dead_after
        self.slowdown = speculative_slowdown
        self.spec_min = speculative_min_seconds
        self.pool_running: dict[str, int] = {}   # pool -> attempts running

    # -- jobs ------------------------------------------------------------------

    def submit(self, job_id: str, spec: dict, now: float) -> Job:
        if job_id in self.jobs:
            raise ValueError(f"job {job_id} exists")
        job = Job(job_id, spec.get("name") or job_id, spec.get("user", ""), now,
                  int(spec.get("max_attempts", 4)), bool(spec.get("speculative", True)))
        job.groups = [str(g) for g in spec.get("groups", [])]
        job.app = str(spec.get("app") or "")
        job.group = str(spec.get("job_group") or "")
        for sid, s in enumerate(spec["stages"]):
            parents = [int(p) for p in s.get("parents", [])]
            if any(not 0 <= p < sid for p in parents):
                raise ValueError(f"stage {sid}: parents must be earlier stages, got {parents}")
            ntasks = int(s["tasks"])
            if ntasks < 0:
                raise ValueError(f"stage {sid}: tasks must be >= 0")
            stage = Stage(job, sid, s.get("name") or f"stage-{sid}", parents,
                          int(s.get("partitions", 0)))
            preferred = s.get("preferred") or [[] for _ in range(ntasks)]
            if len(preferred) != ntasks:
                raise ValueError(f"stage {sid}: {len(preferred)} preferences for {ntasks} tasks")
            stage.tasks = [Task(stage, i, [str(x) for x in preferred[i]], pending_since=now)
                           for i in range(ntasks)]
            for t in stage.tasks:
                self._queue(t)
            job.stages.append(stage)
        if not job.stages:
            raise ValueError("a job needs at least one stage")
        self.jobs[job_id] = job
        self._maybe_finish(job, now)
        return job

    def kill_job(self, job_id: str, now: float, reason: str = "killed by the user") -> None:
        job = self.jobs[job_id]
        if job.state == RUNNING:
            self._end_job(job, KILLED, reason, now)

    def cancel(self, now: float, app: str = "", group: str | None = None,
               reason: str = "cancelled") -> list[str]:
        """Kill the running jobs of application APP (of its job GROUP, if given);
        returns their ids."""
        out = []
        for job in list(self.jobs.values()):
            if job.state == RUNNING and job.app == app and (group is None or job.group == group):
                self._end_job(job, KILLED, reason, now)
                out.append(job.id)
        return out

    def _end_job(self, job: Job, state: str, error: str, now: float) -> None:
        job.state, job.error, job.finished = state, error, now
        for stage in job.stages:
            for a in list(stage.running.values()):
                self._kill(a, now)
            stage.pending.clear()
            stage.near.clear()
        if state == SUCCEEDED and job.app in self.apps:
            # a later job of the application may read its shuffle outputs
            # (Spark's skipped stages): they stay until the application ends
            self.kept.setdefault(job.app, []).append(job.id)
            return
        for w in self.workers.values():
            w.to_clean.append(job.id)

    def _maybe_finish(self, job: Job, now: float) -> None:
        if job.state == RUNNING and all(s.done for s in job.stages):
            self._end_job(job, SUCCEEDED, "", now)

    # -- task states -------------------------------------------------------------

    def _queue(self, task: Task) -> None:
        stage = task.stage
        stage.pending[task.index] = task
        for loc in task.preferred:
            stage.near.setdefault(loc, {})[task.index] = task

    def _unqueue(self, task: Task) -> None:
        stage = task.stage
        stage.pending.pop(task.index, None)
        for loc in task.preferred:
            near = stage.near.get(loc)
            if near is not None:
                near.pop(task.index, None)
                if not near:
                    del stage.near[loc]

    def _requeue(self, task: Task, now: float) -> None:
        """TASK runs again: it has no running attempt left, or lost its output."""
        if task.state == SUCCEEDED:
            task.stage.succeeded -= 1
            task.winner = None
        if task.stage.job.state != RUNNING:
            task.state = PENDING
            return
        task.state, task.pending_since = PENDING, now
        self._queue(task)

    # -- workers ---------------------------------------------------------------

    def heartbeat(self, name: str, address: str, chunkserver: str, slots: int,
                  reports: list[dict], running: list[str], now: float,
                  blocks: list[str] | None = None, blocks_added: list[str] = (),
                  blocks_removed: list[str] = ()) -> dict:
        """A worker's heartbeat: record its reports, then hand it work. RUNNING
        is what the worker runs now; an attempt we placed there that it neither
        runs nor reports (it restarted) is lost. BLOCKS, when given, are the
        cached partitions it holds now; BLOCKS_ADDED and BLOCKS_REMOVED change
        what it held at its last heartbeat.
        Returns {"launch": [assignments], "kill": [attempt ids], "cleanup": [job ids],
        "drop": [block-id prefixes]}, and "blocks": True when the worker should
        send its whole list of blocks (the scheduler does not know them)."""
        w = self.workers.get(name)
        fresh = w is None or not w.alive
        if fresh:
            w = Worker(name, address, chunkserver, slots, now)
            self.workers[name] = w
        w.address, w.chunkserver, w.slots, w.last_seen = address, chunkserver, slots, now
        if blocks is not None:
            w.blocks = set(blocks)
        w.blocks.update(blocks_added)
        w.blocks.difference_update(blocks_removed)
        for r in reports:
            self.report(r, now)
        for aid in w.running - set(running):
            self.report({"attempt": aid, "state": FAILED, "killed": True,
                         "error": f"worker {name} no longer runs it"}, now)
        out = self.assign(name, now)
        if fresh and blocks is None:
            out["blocks"] = True
        return out

    def assign(self, name: str, now: float) -> dict:
        """What worker NAME (just heard from) should start, kill, clean and drop."""
        w = self.workers[name]
        w.last_seen = now
        launch = []
        while len(w.running) < w.slots:
            # at most one task reading a shuffle per heartbeat, as Hadoop hands out
            # reduces, so that they spread over the workers instead of piling on one
            a = self._next_attempt(w, now, shuffle_ok=not any(x["parents"] for x in launch))
            if a is None:
                break
            launch.append(self._assignment(a))
        out = {"launch": launch, "kill": w.to_kill, "cleanup": w.to_clean, "drop": w.to_drop}
        w.to_kill, w.to_clean, w.to_drop = [], [], []
        return out

    def _assignment(self, a: Attempt) -> dict:
        stage = a.task.stage
        return {"job": stage.job.id, "stage": stage.id, "task": a.task.index,
                "tasks": [t.index for t in a.tasks], "attempt": a.id,
                "number": a.number, "partitions": stage.partitions, "parents": stage.parents,
                "user": stage.job.user, "groups": stage.job.groups,
                "speculative": a.speculative}

    def _runnable_jobs(self) -> list[Job]:
        """Running jobs, the pool running the fewest attempts first, then by age."""
        jobs = [j for j in self.jobs.values() if j.state == RUNNING]
        if len({j.pool for j in jobs}) > 1:
            jobs.sort(key=lambda j: self.pool_running.get(j.pool, 0))   # stable: keeps age order
        return jobs

    def _next_attempt(self, w: Worker, now: float, shuffle_ok: bool = True) -> Attempt | None:
        for job in self._runnable_jobs():
            fallback: Stage | None = None
            for stage in job.stages:
                if not stage.pending or not job.ready(stage) or (stage.parents and not shuffle_ok):
                    continue
                tasks = self._near_tasks(stage, w)
                if tasks:
                    return self._launch(tasks, w, now)
                if fallback is None and self._elsewhere(stage, w, now, 1):
                    fallback = stage
            if fallback is not None:
                return self._launch(self._elsewhere(fallback, w, now, self._group_size(fallback)),
                                    w, now)
        return self._speculate(w, now)

    def _group_size(self, stage: Stage) -> int:
        """How many tasks of STAGE one attempt should run now: enough to take
        about group_seconds by its finished tasks' times, and few enough that
        every slot still gets a share of what is pending."""
        if not self.group_seconds or not stage.timed:
            return 1
        # scaled from the latest attempt: k tasks took d seconds, so about
        # k * group_seconds / d fill the time. An attempt's fixed cost (its
        # process, the job's code) is in d, which keeps the step cautious
        # while it grows the groups geometrically to their size.
        k, took = stage.last
        slots = sum(w.slots for w in self.workers.values() if w.alive) or 1
        share = math.ceil(len(stage.pending) / (2 * slots))
        want = int(k * self.group_seconds / max(took, 1e-3))
        if took < self.group_seconds / 2:
            want = max(want, 2 * k)        # (truncation alone would stall at 1)
        return max(1, min(want, share, MAX_GROUP))

    def _take(self, candidates, k: int, ok=None) -> list[Task]:
        """Up to K pending tasks from CANDIDATES, a solo task only alone."""
        out: list[Task] = []
        for t in candidates:
            if ok is not None and not ok(t):
                continue
            if t.solo and out:
                continue
            out.append(t)
            if t.solo or len(out) >= k:
                break
        return out

    def _near_tasks(self, stage: Stage, w: Worker) -> list[Task]:
        """Pending tasks of STAGE that are best run on W: near its data, or
        without a preference."""
        k = self._group_size(stage)
        out: list[Task] = []
        for loc in (w.chunkserver, w.name):
            near = stage.near.get(loc)
            if near and not (out and out[-1].solo):
                taken = {t.index for t in out}
                more = self._take(itertools.islice(near.values(), 4 * k + 64), k - len(out),
                                  (lambda t: not t.solo) if out else None)
                out += [t for t in more if t.index not in taken]
                if len(out) >= k:
                    return out[:k]
        if out:
            return out
        # tasks without a preference come first in the pending order only
        # rarely behind preferred ones: look at a bounded stretch
        return self._take(itertools.islice(stage.pending.values(), 4 * k + 64), k,
                          lambda t: not t.preferred)

    def _elsewhere(self, stage: Stage, w: Worker, now: float, k: int) -> list[Task]:
        """Pending tasks of STAGE whose data is elsewhere but that may run on W
        (delay scheduling: a task with a live worker near its data waits up to
        `locality_wait` for a slot there)."""
        def may(t: Task) -> bool:
            if now - t.pending_since >= self.locality_wait:
                return True
            return not any(o.alive and o.near(t) for o in self.workers.values())
        return self._take(itertools.islice(stage.pending.values(), 4 * k + 64), k, may)

    def _launch(self, tasks: list[Task], w: Worker, now: float,
                speculative: bool = False) -> Attempt:
        first = tasks[0]
        stage = first.stage
        job = stage.job
        number = len(first.attempts)
        size = f"_n{len(tasks)}" if len(tasks) > 1 else ""
        aid = f"{job.id}_s{stage.id}_t{first.index:05d}{size}_a{number}"
        a = Attempt(aid, tasks, number, w.name, now, speculative=speculative,
                    local=bool(first.preferred) and w.near(first))
        for t in tasks:
            self._unqueue(t)
            t.attempts.append(a)
            t.state = RUNNING
        self.attempts[aid] = a
        stage.running[aid] = a
        w.running.add(aid)
        self.pool_running[job.pool] = self.pool_running.get(job.pool, 0) + 1
        c = job.counters
        c["launched_tasks"] = c.get("launched_tasks", 0) + len(tasks)
        if len(tasks) > 1:
            c["task_groups"] = c.get("task_groups", 0) + 1
        if first.preferred:
            key = "data_local_tasks" if a.local else "non_local_tasks"
            c[key] = c.get(key, 0) + 1
        if speculative:
            c["speculative_attempts"] = c.get("speculative_attempts", 0) + 1
        return a

    def _ended(self, a: Attempt, state: str, now: float) -> None:
        """Bookkeeping of an attempt that stops running."""
        a.state, a.finished = state, now
        stage = a.task.stage
        stage.running.pop(a.id, None)
        pool = stage.job.pool
        left = self.pool_running.get(pool, 0) - 1
        if left > 0:
            self.pool_running[pool] = left
        else:
            self.pool_running.pop(pool, None)
        w = self.workers.get(a.worker)
        if w is not None:
            w.running.discard(a.id)

    def _speculate(self, w: Worker, now: float) -> Attempt | None:
        """A backup attempt for a straggler of a stage whose other tasks are all
        placed, when its run time is well beyond what its finished peers took.
        Groups are made of tasks known to be quick and get no backups."""
        for job in self.jobs.values():
            if job.state != RUNNING or not job.speculative:
                continue
            for stage in job.stages:
                if stage.done or stage.pending or not stage.running or not job.ready(stage):
                    continue
                took = stage.solo_took
                if not took or stage.succeeded < len(stage.tasks) / 2:
                    continue
                limit = max(self.spec_min, self.slowdown * statistics.median(took[-1000:]))
                for a in list(stage.running.values()):
                    task = a.task
                    if (len(a.tasks) == 1 and task.state == RUNNING and len(task.running) == 1
                            and a.worker != w.name
                            and not any(x.speculative for x in task.attempts)
                            and now - a.started > limit):
                        return self._launch([task], w, now, speculative=True)
        return None

    # -- reports ---------------------------------------------------------------

    def report(self, r: dict, now: float) -> None:
        """An attempt ended: {"attempt", "state": succeeded|failed, "error",
        "counters", "outputs": [bytes per task], "empty": bitmap, "size",
        "fetch_failed": [stage, task] or None}."""
        a = self.attempts.get(r["attempt"])
        if a is None or a.state != RUNNING:
            return
        stage, job = a.task.stage, a.task.stage.job
        if r["state"] == SUCCEEDED:
            self._ended(a, SUCCEEDED, now)
            a.counters = r.get("counters") or {}
            outputs = r.get("outputs")
            a.outputs = list(outputs) if outputs is not None else [r.get("output") or b""]
            a.empty, a.size = bytes(r.get("empty") or b""), int(r.get("size") or 0)
            stage.seconds += now - a.started
            stage.timed += len(a.tasks)
            stage.last = (len(a.tasks), now - a.started)
            if len(a.tasks) == 1:
                stage.solo_took.append(now - a.started)
            if job.state != RUNNING:
                return
            won = False
            for task in a.tasks:
                if task.state != SUCCEEDED:
                    task.state, task.winner = SUCCEEDED, a
                    stage.succeeded += 1
                    won = True
                    for other in task.running:
                        self._kill(other, now)
            if won:
                add_counters(job.task_counters, a.counters)
            self._maybe_finish(job, now)
            return
        error = r.get("error") or "attempt failed"
        fetch = r.get("fetch_failed")
        state = KILLED if r.get("killed") and fetch is None else FAILED
        self._ended(a, state, now)
        a.error = error
        if fetch is not None:
            self._lost_output(job, int(fetch[0]), int(fetch[1]), now,
                              str(fetch[2]) if len(fetch) > 2 else "")
            job.counters["fetch_failures"] = job.counters.get("fetch_failures", 0) + 1
        elif state == FAILED:
            for task in a.tasks:
                task.failures += 1
            job.counters["failed_attempts"] = job.counters.get("failed_attempts", 0) + 1
        for task in a.tasks:
            if task.committer == a.id:
                task.committer = ""
            if len(a.tasks) > 1 and state == FAILED and fetch is None:
                task.solo = True         # its own error, perhaps: find out alone
            if task.state == RUNNING and not task.running:
                self._requeue(task, now)
        worst = max(a.tasks, key=lambda t: t.failures)
        if worst.failures >= job.max_attempts and job.state == RUNNING:
            self._end_job(job, FAILED, f"task {worst.index} of stage {stage.name} failed "
                                       f"{worst.failures} times; last error:\n{error}", now)

    def _lost_output(self, job: Job, sid: int, index: int, now: float,
                     attempt: str = "") -> None:
        """Map output SID/INDEX (made by ATTEMPT, if known) cannot be fetched:
        run every task whose output it was again. A late report about an
        output that has been made again since is ignored."""
        if not 0 <= sid < len(job.stages) or not 0 <= index < len(job.stages[sid].tasks):
            return
        task = job.stages[sid].tasks[index]
        if (task.state == SUCCEEDED and task.winner is not None
                and attempt in ("", task.winner.id)):
            self._unwin(task.winner, now)

    def _unwin(self, a: Attempt, now: float) -> None:
        """Attempt A's output is lost: the tasks it won run again."""
        job = a.task.stage.job
        lost = [t for t in a.tasks if t.winner is a]
        for t in lost:
            self._requeue(t, now)
        if lost:
            add_counters(job.task_counters, a.counters, -1)

    def _kill(self, a: Attempt, now: float) -> None:
        self._ended(a, KILLED, now)
        w = self.workers.get(a.worker)
        if w is not None:
            w.to_kill.append(a.id)
        for task in a.tasks:
            if task.state == RUNNING and not task.running:
                self._requeue(task, now)

    def commit(self, attempt_id: str, task: int | None = None) -> bool:
        """May ATTEMPT_ID commit the output of its TASK (default: its first)?
        Yes to the first that asks (until it fails), no to every other attempt
        of the task."""
        a = self.attempts.get(attempt_id)
        if a is None or a.state != RUNNING:
            return False
        t = a.task if task is None else next((x for x in a.tasks if x.index == task), None)
        if t is None or t.state == SUCCEEDED:
            return False
        if t.committer in ("", a.id):
            t.committer = a.id
            return True
        return False

    def map_outputs(self, job_id: str, sid: int, partitions: list[int] | None = None) -> dict:
        return stage_outputs(self.jobs[job_id].stage(sid), self.workers, partitions)

    def results(self, job_id: str, sid: int, forget: bool = False) -> list[bytes | None]:
        return stage_results(self.jobs[job_id].stage(sid), forget)

    # -- cached blocks -----------------------------------------------------------

    def block_locations(self, prefix: str | tuple[str, ...]) -> dict[str, list[list[str]]]:
        """{block id: [[worker name, address], ...]} for the live workers' blocks
        starting with PREFIX (or one of several)."""
        out: dict[str, list[list[str]]] = {}
        for w in self.workers.values():
            if w.alive:
                for b in w.blocks:
                    if b.startswith(prefix):
                        out.setdefault(b, []).append([w.name, w.address])
        return out

    def app_alive(self, app: str, now: float) -> float:
        """A dataset driver is alive; returns how long its lease lasts. A driver
        that stops renewing (killed, or its machine gone) has its running jobs
        cancelled and its cached partitions dropped, as executors die with
        Spark's."""
        self.apps[app] = now
        return self.app_lease

    def app_ended(self, app: str, now: float = 0.0) -> list[str]:
        """The application is gone: its running jobs are cancelled (their ids
        returned), its blocks and kept shuffle outputs dropped."""
        self.apps.pop(app, None)
        cancelled = self.cancel(now, app, reason=DRIVER_GONE) if app else []
        self.drop_blocks(app + "/")
        for job_id in self.kept.pop(app, []):
            for w in self.workers.values():
                w.to_clean.append(job_id)
        return cancelled

    def release(self, app: str, job_id: str) -> None:
        """APP no longer reads JOB_ID's shuffle outputs: the workers delete them."""
        kept = self.kept.get(app, [])
        if job_id in kept:
            kept.remove(job_id)
            for w in self.workers.values():
                w.to_clean.append(job_id)

    def drop_blocks(self, prefix: str) -> None:
        """Have every worker forget the blocks starting with PREFIX (unpersist)."""
        for w in self.workers.values():
            if w.alive:
                w.blocks = {b for b in w.blocks if not b.startswith(prefix)}
                w.to_drop.append(prefix)

    # -- time ------------------------------------------------------------------

    def tick(self, now: float) -> list[str]:
        """Declare silent workers lost, and end silent applications; returns
        the lost workers' names."""
        for app, seen in list(self.apps.items()):
            if now - seen > self.app_lease:
                self.app_ended(app, now)
        lost = []
        for w in self.workers.values():
            if w.alive and now - w.last_seen > self.dead_after:
                w.alive = False
                lost.append(w.name)
                self._worker_lost(w, now)
        return lost

    def _worker_lost(self, w: Worker, now: float) -> None:
        for aid in list(w.running):
            a = self.attempts[aid]
            self.report({"attempt": aid, "state": FAILED, "killed": True,
                         "error": f"worker {w.name} lost"}, now)
            a.error = f"worker {w.name} lost"
        w.running.clear()
        for job in self.jobs.values():
            if job.state != RUNNING:
                continue
            for stage in job.stages:
                if not stage.partitions:
                    continue        # result stages keep their output in the DFS
                consumers = [s for s in job.stages if stage.id in s.parents]
                if consumers and all(s.done for s in consumers):
                    continue
                lost = {t.winner.id: t.winner for t in stage.tasks
                        if t.state == SUCCEEDED and t.winner and t.winner.worker == w.name}
                for a in lost.values():
                    n = sum(t.winner is a for t in a.tasks)
                    self._unwin(a, now)
                    job.counters["rerun_lost_outputs"] = job.counters.get(
                        "rerun_lost_outputs", 0) + n

    # -- views -----------------------------------------------------------------

    def summary(self, job: Job) -> dict:
        return job_summary(job)

    def detail(self, job: Job, limit: int = 2000) -> list[dict]:
        return job_detail(job, limit)

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
The job's code and records are opaque bytes to this class.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

PENDING, RUNNING, SUCCEEDED, FAILED, KILLED = "pending", "running", "succeeded", "failed", "killed"


@dataclass
class Attempt:
    id: str
    task: Task
    number: int
    worker: str
    started: float
    speculative: bool = False
    local: bool = False
    state: str = RUNNING
    finished: float = 0.0
    error: str = ""
    counters: dict = field(default_factory=dict)
    output: bytes = b""                # what the task returns to the driver (opaque)


@dataclass
class Task:
    stage: Stage
    index: int
    preferred: list[str]               # chunkservers holding its input, or workers caching it
    state: str = PENDING
    attempts: list[Attempt] = field(default_factory=list)
    failures: int = 0
    winner: Attempt | None = None
    committer: str = ""                # the attempt allowed to commit its output
    pending_since: float = 0.0

    @property
    def running(self) -> list[Attempt]:
        return [a for a in self.attempts if a.state == RUNNING]


@dataclass
class Stage:
    job: Job
    id: int
    name: str
    parents: list[int]
    partitions: int                    # output partitions (0: a result stage)
    tasks: list[Task] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return all(t.state == SUCCEEDED for t in self.tasks)

    def progress(self) -> float:
        return sum(t.state == SUCCEEDED for t in self.tasks) / max(1, len(self.tasks))


@dataclass
class Job:
    id: str
    name: str
    user: str
    submitted: float
    max_attempts: int
    speculative: bool
    stages: list[Stage] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    state: str = RUNNING
    error: str = ""
    finished: float = 0.0
    counters: dict = field(default_factory=dict)   # engine counters (launches, locality)
    app: str = ""                      # the dataset application it belongs to, if any

    def stage(self, sid: int) -> Stage:
        return self.stages[sid]

    def ready(self, stage: Stage) -> bool:
        return all(self.stages[p].done for p in stage.parents)


@dataclass
class Worker:
    name: str
    address: str
    chunkserver: str
    slots: int
    last_seen: float
    alive: bool = True
    running: set[str] = field(default_factory=set)      # attempt ids
    to_kill: list[str] = field(default_factory=list)
    to_clean: list[str] = field(default_factory=list)   # finished job ids
    blocks: set[str] = field(default_factory=set)       # cached partitions it holds
    to_drop: list[str] = field(default_factory=list)    # block-id prefixes to forget

    def near(self, task: Task) -> bool:
        return self.chunkserver in task.preferred or self.name in task.preferred


class SchedulerCore:
    def __init__(self, dead_after: float = 10.0, speculative_slowdown: float = 1.5,
                 speculative_min_seconds: float = 1.0, app_lease: float = 60.0,
                 locality_wait: float = 0.0):
        self.jobs: dict[str, Job] = {}
        self.apps: dict[str, float] = {}     # dataset application -> when its driver last spoke
        self.kept: dict[str, list[str]] = {}  # application -> its finished jobs' ids
        self.app_lease = app_lease
        self.locality_wait = locality_wait
        self.workers: dict[str, Worker] = {}
        self.attempts: dict[str, Attempt] = {}
        self.dead_after = dead_after
        self.slowdown = speculative_slowdown
        self.spec_min = speculative_min_seconds

    # -- jobs ------------------------------------------------------------------

    def submit(self, job_id: str, spec: dict, now: float) -> Job:
        if job_id in self.jobs:
            raise ValueError(f"job {job_id} exists")
        job = Job(job_id, spec.get("name") or job_id, spec.get("user", ""), now,
                  int(spec.get("max_attempts", 4)), bool(spec.get("speculative", True)))
        job.groups = [str(g) for g in spec.get("groups", [])]
        job.app = str(spec.get("app") or "")
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
            stage.tasks = [Task(stage, i, list(preferred[i]), pending_since=now)
                           for i in range(ntasks)]
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

    def _end_job(self, job: Job, state: str, error: str, now: float) -> None:
        job.state, job.error, job.finished = state, error, now
        for stage in job.stages:
            for task in stage.tasks:
                for a in task.running:
                    self._kill(a, now)
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

    # -- workers ---------------------------------------------------------------

    def heartbeat(self, name: str, address: str, chunkserver: str, slots: int,
                  reports: list[dict], running: list[str], now: float,
                  blocks: list[str] | None = None) -> dict:
        """A worker's heartbeat: record its reports, then hand it work. RUNNING
        is what the worker runs now; an attempt we placed there that it neither
        runs nor reports (it restarted) is lost. BLOCKS, when given, are the
        cached partitions it holds now.
        Returns {"launch": [assignments], "kill": [attempt ids], "cleanup": [job ids],
        "drop": [block-id prefixes]}."""
        w = self.workers.get(name)
        if w is None or not w.alive:
            w = Worker(name, address, chunkserver, slots, now)
            self.workers[name] = w
        w.address, w.chunkserver, w.slots, w.last_seen = address, chunkserver, slots, now
        if blocks is not None:
            w.blocks = set(blocks)
        for r in reports:
            self.report(r, now)
        for aid in w.running - set(running):
            self.report({"attempt": aid, "state": FAILED, "killed": True,
                         "error": f"worker {name} no longer runs it"}, now)
        return self.assign(name, now)

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
        return {"job": stage.job.id, "stage": stage.id, "task": a.task.index, "attempt": a.id,
                "number": a.number, "partitions": stage.partitions, "parents": stage.parents,
                "user": stage.job.user, "groups": stage.job.groups,
                "speculative": a.speculative}

    def _next_attempt(self, w: Worker, now: float, shuffle_ok: bool = True) -> Attempt | None:
        fallback = None
        for job in self.jobs.values():
            if job.state != RUNNING:
                continue
            for stage in job.stages:
                if stage.done or not job.ready(stage) or (stage.parents and not shuffle_ok):
                    continue
                for task in stage.tasks:
                    if task.state != PENDING:
                        continue
                    if not task.preferred or w.near(task):
                        return self._launch(task, w, now)
                    if fallback is None and self._may_go_elsewhere(task, now):
                        fallback = task
            if fallback is not None:
                return self._launch(fallback, w, now)
        return self._speculate(w, now)

    def _may_go_elsewhere(self, task: Task, now: float) -> bool:
        """Delay scheduling: a task with a live worker near its data waits up to
        `locality_wait` for a slot there before it runs anywhere."""
        if now - task.pending_since >= self.locality_wait:
            return True
        return not any(o.alive and o.near(task) for o in self.workers.values())

    def _launch(self, task: Task, w: Worker, now: float, speculative: bool = False) -> Attempt:
        job = task.stage.job
        number = len(task.attempts)
        aid = f"{job.id}_s{task.stage.id}_t{task.index:05d}_a{number}"
        a = Attempt(aid, task, number, w.name, now, speculative=speculative,
                    local=bool(task.preferred) and w.near(task))
        task.attempts.append(a)
        task.state = RUNNING
        self.attempts[aid] = a
        w.running.add(aid)
        c = job.counters
        kind = "launched_tasks"
        c[kind] = c.get(kind, 0) + 1
        if task.preferred:
            key = "data_local_tasks" if a.local else "non_local_tasks"
            c[key] = c.get(key, 0) + 1
        if speculative:
            c["speculative_attempts"] = c.get("speculative_attempts", 0) + 1
        return a

    def _speculate(self, w: Worker, now: float) -> Attempt | None:
        """A backup attempt for a straggler of a stage whose other tasks are all
        placed, when its run time is well beyond what its finished peers took."""
        for job in self.jobs.values():
            if job.state != RUNNING or not job.speculative:
                continue
            for stage in job.stages:
                if stage.done or not job.ready(stage):
                    continue
                if any(t.state == PENDING for t in stage.tasks):
                    continue
                took = [t.winner.finished - t.winner.started for t in stage.tasks if t.winner]
                if not took or len(took) < len(stage.tasks) / 2:
                    continue
                limit = max(self.spec_min, self.slowdown * statistics.median(took))
                for task in stage.tasks:
                    running = task.running
                    if (task.state == RUNNING and len(running) == 1
                            and running[0].worker != w.name
                            and not any(a.speculative for a in task.attempts)
                            and now - running[0].started > limit):
                        return self._launch(task, w, now, speculative=True)
        return None

    # -- reports ---------------------------------------------------------------

    def report(self, r: dict, now: float) -> None:
        """An attempt ended: {"attempt", "state": succeeded|failed, "error",
        "counters", "fetch_failed": [stage, task] or None}."""
        a = self.attempts.get(r["attempt"])
        if a is None or a.state != RUNNING:
            return
        w = self.workers.get(a.worker)
        if w is not None:
            w.running.discard(a.id)
        task, job = a.task, a.task.stage.job
        a.finished = now
        if r["state"] == SUCCEEDED:
            a.state, a.counters = SUCCEEDED, r.get("counters") or {}
            a.output = r.get("output") or b""
            if task.state != SUCCEEDED and job.state == RUNNING:
                task.state, task.winner = SUCCEEDED, a
                for other in task.running:
                    self._kill(other, now)
                self._maybe_finish(job, now)
            return
        a.state, a.error = FAILED, r.get("error") or "attempt failed"
        fetch = r.get("fetch_failed")
        if fetch is not None:
            self._lost_output(job, int(fetch[0]), int(fetch[1]), now)
            job.counters["fetch_failures"] = job.counters.get("fetch_failures", 0) + 1
        elif r.get("killed"):
            a.state = KILLED
        else:
            task.failures += 1
            job.counters["failed_attempts"] = job.counters.get("failed_attempts", 0) + 1
        if task.committer == a.id:
            task.committer = ""
        if task.state == RUNNING and not task.running:
            task.state, task.pending_since = PENDING, now
        if task.failures >= job.max_attempts and job.state == RUNNING:
            self._end_job(job, FAILED, f"task {task.index} of stage {task.stage.name} failed "
                                       f"{task.failures} times; last error:\n{a.error}", now)

    def _lost_output(self, job: Job, sid: int, index: int, now: float) -> None:
        """Map output SID/INDEX cannot be fetched: run that task again."""
        if not 0 <= sid < len(job.stages) or not 0 <= index < len(job.stages[sid].tasks):
            return
        task = job.stages[sid].tasks[index]
        if task.state == SUCCEEDED:
            task.state, task.winner, task.pending_since = PENDING, None, now

    def _kill(self, a: Attempt, now: float) -> None:
        a.state, a.finished = KILLED, now
        w = self.workers.get(a.worker)
        if w is not None:
            w.running.discard(a.id)
            w.to_kill.append(a.id)
        task = a.task
        if task.state == RUNNING and not task.running:
            task.state, task.pending_since = PENDING, now

    def commit(self, attempt_id: str) -> bool:
        """May ATTEMPT_ID commit its task's output? Yes to the first that asks
        (until it fails), no to every other attempt of the task."""
        a = self.attempts.get(attempt_id)
        if a is None or a.state != RUNNING or a.task.state == SUCCEEDED:
            return False
        if a.task.committer in ("", a.id):
            a.task.committer = a.id
            return True
        return False

    def map_outputs(self, job_id: str, sid: int) -> dict:
        """Where each finished task of stage SID keeps its output:
        {"tasks": n, "outputs": [{worker, address, attempt} or None, one per task]}."""
        stage = self.jobs[job_id].stage(sid)
        out: list[dict | None] = []
        for t in stage.tasks:
            w = self.workers.get(t.winner.worker) if t.winner else None
            out.append({"worker": t.winner.worker, "attempt": t.winner.id,
                        "address": w.address if w else ""}
                       if t.state == SUCCEEDED and t.winner else None)
        return {"tasks": len(stage.tasks), "outputs": out}

    def results(self, job_id: str, sid: int, forget: bool = False) -> list[bytes | None]:
        """What each task of stage SID returned (its winning attempt's output);
        FORGET drops them once read, so that finished jobs hold no data."""
        out = []
        for t in self.jobs[job_id].stage(sid).tasks:
            out.append(t.winner.output if t.state == SUCCEEDED and t.winner else None)
            if forget and t.winner:
                t.winner.output = b""
        return out

    # -- cached blocks -----------------------------------------------------------

    def block_locations(self, prefix: str) -> dict[str, list[list[str]]]:
        """{block id: [[worker name, address], ...]} for the live workers' blocks
        starting with PREFIX."""
        out: dict[str, list[list[str]]] = {}
        for w in self.workers.values():
            if w.alive:
                for b in w.blocks:
                    if b.startswith(prefix):
                        out.setdefault(b, []).append([w.name, w.address])
        return out

    def app_alive(self, app: str, now: float) -> float:
        """A dataset driver is alive; returns how long its lease lasts. A driver
        that stops renewing (killed, or its machine gone) has its cached
        partitions dropped from every worker, as executors die with Spark's."""
        self.apps[app] = now
        return self.app_lease

    def app_ended(self, app: str) -> None:
        self.apps.pop(app, None)
        self.drop_blocks(app + "/")
        for job_id in self.kept.pop(app, []):
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
                self.app_ended(app)
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
                for task in stage.tasks:
                    if task.state == SUCCEEDED and task.winner and task.winner.worker == w.name:
                        task.state, task.winner, task.pending_since = PENDING, None, now
                        job.counters["rerun_lost_outputs"] = job.counters.get(
                            "rerun_lost_outputs", 0) + 1

    # -- views -----------------------------------------------------------------

    def summary(self, job: Job) -> dict:
        counters = dict(job.counters)
        for stage in job.stages:
            for t in stage.tasks:
                if t.winner:
                    for k, v in t.winner.counters.items():
                        counters[k] = counters.get(k, 0) + v
        return {
            "id": job.id, "name": job.name, "user": job.user, "state": job.state,
            "error": job.error, "submitted": job.submitted, "finished": job.finished,
            "counters": counters,
            "stages": [{"id": s.id, "name": s.name, "tasks": len(s.tasks),
                        "succeeded": sum(t.state == SUCCEEDED for t in s.tasks),
                        "running": sum(t.state == RUNNING for t in s.tasks),
                        "progress": s.progress(), "parents": s.parents,
                        "partitions": s.partitions} for s in job.stages]}

    def detail(self, job: Job) -> list[dict]:
        """Every task with its attempts, for the status page."""
        rows = []
        for s in job.stages:
            for t in s.tasks:
                rows.append({"stage": s.name, "task": t.index, "state": t.state,
                             "attempts": [{"id": a.id, "worker": a.worker, "state": a.state,
                                           "speculative": a.speculative, "local": a.local,
                                           "seconds": round((a.finished or a.started) - a.started, 2),
                                           "error": a.error.strip().splitlines()[-1] if a.error else ""}
                                          for a in t.attempts]})
        return rows

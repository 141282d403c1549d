"""The scheduler's state as plain objects: jobs, their stages, tasks and
attempts, and the workers it has heard from. SchedulerCore (sched_core.py)
changes them on events; these classes only hold them and answer questions
about them."""

from __future__ import annotations

from dataclasses import dataclass, field

PENDING, RUNNING, SUCCEEDED, FAILED, KILLED = "pending", "running", "succeeded", "failed", "killed"


@dataclass(eq=False)
class Attempt:
    id: str
    tasks: list[Task]
    number: int
    worker: str
    started: float
    speculative: bool = False
    local: bool = False
    state: str = RUNNING
    finished: float = 0.0
    error: str = ""
    counters: dict = field(default_factory=dict)
    outputs: list[bytes] = field(default_factory=list)   # per task, returned to the driver
    empty: bytes = b""                 # map output: bitmap of its empty partitions
    size: int = 0                      # map output: bytes
    _by_task: dict | None = field(default=None, repr=False)

    @property
    def task(self) -> Task:
        return self.tasks[0]

    def output_of(self, task: Task) -> bytes:
        if len(self.tasks) == 1:
            return self.outputs[0] if self.outputs and self.tasks[0] is task else b""
        if self._by_task is None:
            self._by_task = {id(t): out for t, out in zip(self.tasks, self.outputs,
                                                          strict=False)}
        return self._by_task.get(id(task), b"")

    def has_data(self, partition: int) -> bool:
        """Does this map output hold anything for PARTITION?"""
        if not self.empty:
            return True
        byte = partition >> 3
        return byte >= len(self.empty) or not self.empty[byte] >> (partition & 7) & 1


@dataclass(eq=False)
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
    solo: bool = False                 # runs alone (a group it was in failed)

    @property
    def running(self) -> list[Attempt]:
        return [a for a in self.attempts if a.state == RUNNING]


@dataclass(eq=False)
class Stage:
    job: Job
    id: int
    name: str
    parents: list[int]
    partitions: int                    # output partitions (0: a result stage)
    tasks: list[Task] = field(default_factory=list)
    pending: dict[int, Task] = field(default_factory=dict)        # in the order they queued
    near: dict[str, dict[int, Task]] = field(default_factory=dict)  # location -> pending tasks
    succeeded: int = 0
    running: dict[str, Attempt] = field(default_factory=dict)
    seconds: float = 0.0               # run time of finished attempts ...
    timed: int = 0                     # ... and how many tasks they ran
    last: tuple[int, float] = (0, 0.0)  # the latest finished attempt: (tasks, seconds)
    solo_took: list[float] = field(default_factory=list)  # single-task attempts' run times

    @property
    def done(self) -> bool:
        return self.succeeded == len(self.tasks)

    def progress(self) -> float:
        return self.succeeded / max(1, len(self.tasks))


@dataclass(eq=False)
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
    task_counters: dict = field(default_factory=dict)  # the winning attempts' counters, summed
    app: str = ""                      # the dataset application it belongs to, if any
    group: str = ""                    # the driver's job group (cancelled together)
    payload_bytes: int = 0             # the size of the job's code and lineage

    @property
    def pool(self) -> str:
        return self.app or self.id

    def stage(self, sid: int) -> Stage:
        return self.stages[sid]

    def ready(self, stage: Stage) -> bool:
        return all(self.stages[p].done for p in stage.parents)


@dataclass(eq=False)
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


def stage_outputs(stage: Stage, workers: dict, partitions: list[int] | None = None) -> dict:
    """Where STAGE's outputs are: {"tasks": n, "missing": [tasks without an
    output now], "outputs": [{"attempt", "worker", "address", "task", "parts"}]},
    one entry per output (a group's covers several tasks; TASK is one of
    them); with PARTITIONS, "parts" lists those of them the output holds
    data for, and outputs holding none of them are left out."""
    missing: list[int] = []
    seen: dict[str, tuple[Attempt, int]] = {}
    for t in stage.tasks:
        if t.state != SUCCEEDED or t.winner is None:
            missing.append(t.index)
        else:
            seen.setdefault(t.winner.id, (t.winner, t.index))
    out = []
    for a, first in seen.values():
        w = workers.get(a.worker)
        entry = {"attempt": a.id, "worker": a.worker, "address": w.address if w else "",
                 "task": first}
        if partitions is not None:
            parts = [p for p in partitions if a.has_data(p)]
            if not parts:
                continue
            entry["parts"] = parts
        out.append(entry)
    return {"tasks": len(stage.tasks), "missing": missing[:100],
            "missing_count": len(missing), "outputs": out}


def stage_results(stage: Stage, forget: bool = False) -> list[bytes | None]:
    """What each task of STAGE returned (its winning attempt's output);
    FORGET drops them once read, so that finished jobs hold no data."""
    tasks = stage.tasks
    out = [t.winner.output_of(t) if t.state == SUCCEEDED and t.winner else None
           for t in tasks]
    if forget:
        for t in tasks:
            if t.winner:
                t.winner.outputs, t.winner._by_task = [], None
    return out


def job_summary(job: Job) -> dict:
    counters = dict(job.counters)
    add_counters(counters, job.task_counters)
    return {
        "id": job.id, "name": job.name, "user": job.user, "state": job.state,
        "error": job.error, "submitted": job.submitted, "finished": job.finished,
        "counters": counters, "app": job.app, "group": job.group,
        "payload_bytes": job.payload_bytes,
        "stages": [{"id": s.id, "name": s.name, "tasks": len(s.tasks),
                    "succeeded": s.succeeded,
                    "running": sum(len(a.tasks) for a in s.running.values()),
                    "progress": s.progress(), "parents": s.parents,
                    "partitions": s.partitions} for s in job.stages]}

def job_detail(job: Job, limit: int = 2000) -> list[dict]:
    """Tasks with their attempts, for the status page (the first LIMIT)."""
    rows = []
    for s in job.stages:
        for t in s.tasks:
            if len(rows) >= limit:
                return rows
            rows.append({"stage": s.name, "task": t.index, "state": t.state,
                         "attempts": [{"id": a.id, "worker": a.worker, "state": a.state,
                                       "speculative": a.speculative, "local": a.local,
                                       "tasks": len(a.tasks),
                                       "seconds": round((a.finished or a.started) - a.started, 2),
                                       "error": a.error.strip().splitlines()[-1] if a.error else ""}
                                      for a in t.attempts]})
    return rows


def add_counters(total: dict, counters: dict, sign: int = 1) -> None:
    for k, v in counters.items():
        if isinstance(v, (int, float)):
            total[k] = total.get(k, 0) + sign * v

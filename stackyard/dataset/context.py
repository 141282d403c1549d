"""The driver: `sy.connect().context()`, PySpark's SparkContext on the
Stackyard engine. It makes datasets (parallelize, range, textFile...),
shared variables, and runs each action as one engine job: the lineage cut
into stages, the program pickled as the job's payload, the tasks' values
brought back.

Driver data too large to ride in a job, broadcast values and nothing else
go to the application's staging directory in the DFS,
/user/USER/.stackyard/APP, removed by stop()."""

from __future__ import annotations

import itertools
import os
import pickle
import posixpath
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable

from stackyard.compute.client import JobFailed
from stackyard.compute.committer import finish_output, setup_output
from stackyard.compute.payload import pack
from stackyard.dataset import lineage, shared, stages
from stackyard.dataset.blockmap import BlockMap
from stackyard.dataset.localfs import LocalFiles, local_path
from stackyard.dataset.program import LINEAGE_LOST, DatasetProgram, dumps, save_partition
from stackyard.dataset.rdd import RDD
from stackyard.errors import StackyardError

INLINE_SLICES = 1 << 20          # parallelize data above this goes through the DFS
LOCAL_BLOCK = 32 << 20           # split size of file:// inputs (Hadoop's local block size)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Context:
    """A connection's dataset API. Usable as a context manager (stop() on exit)."""

    def __init__(self, client, appName: str = "stackyard", defaultParallelism: int | None = None,  # noqa: N803
                 progress: bool | None = None):
        self.client, self.fs, self.engine = client, client.fs, client.engine
        self.appName = appName  # noqa: N815
        self.applicationId = time.strftime("app_%Y%m%d%H%M%S_") + uuid.uuid4().hex[:6]  # noqa: N815
        self.staging = f"/user/{self.fs.user}/.stackyard/{self.applicationId}"
        self._ids = itertools.count()
        self._parallelism = defaultParallelism
        self._default_reduce: int | None = None
        self._accumulators: dict[int, shared.Accumulator] = {}
        self._written: dict[int, tuple[str, int]] = {}   # shuffle id -> (job, stage) that wrote it
        self._broadcasts = itertools.count()
        self._staged = False
        self._stopped = False
        self._progress = sys.stderr.isatty() if progress is None else progress
        self.sort_buffer = 64 << 20       # a task's map-output buffer before it spills
        self.task_memory = 512 << 20      # a task's size past which combining dicts are flushed
        # the application's lease: while this driver lives it renews it; when it
        # dies without stop(), the scheduler drops its cached partitions
        self._local = threading.local()        # the job group, per thread (Spark's is too)
        self._running: dict[str, str] = {}     # job id -> its group, while it runs
        self._persisted = False                # has any dataset of it been persisted?
        self._checkpoint_dir: str | None = None
        self._checkpointing = False
        self._gone: list[int] = []              # shuffles garbage-collected, to release
        self._gone_lock = threading.Lock()
        lease = float(self.engine.call("app_alive", app=self.applicationId))
        self._ended = threading.Event()
        self._renewer = threading.Thread(target=self._renew, args=(lease / 3,), daemon=True,
                                         name=f"lease-{self.applicationId}")
        self._renewer.start()

    def _renew(self, every: float) -> None:
        while not self._ended.wait(every):
            try:
                self.engine.call("app_alive", app=self.applicationId)
            except StackyardError:
                pass             # the scheduler is away: try again at the next turn
        self.engine.pool.drop(self.engine.scheduler)

    # -- the context ----------------------------------------------------------------------

    @property
    def defaultParallelism(self) -> int:  # noqa: N802
        """The task slots of the live workers (PySpark local[N]: N)."""
        if not self._parallelism:
            slots = sum(w["slots"] for w in self.engine.workers() if w["alive"])
            self._parallelism = max(slots, 1)
        return self._parallelism

    @property
    def defaultMinPartitions(self) -> int:  # noqa: N802
        return min(self.defaultParallelism, 2)

    def __reduce__(self):
        raise RuntimeError("the context is used on the driver only: a function that runs in "
                           "tasks (a transformation's or an action's) cannot use it")

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Forget the application's cached partitions and staged files."""
        if self._stopped:
            return
        self._stopped = True
        self._ended.set()
        try:
            self.engine.call("app_ended", app=self.applicationId)
        except StackyardError:
            pass          # a scheduler that is gone holds no blocks to drop
        finally:
            if self._staged:
                try:
                    self.fs.rm(self.staging, recursive=True)
                except FileNotFoundError:
                    pass

    def _check(self) -> None:
        if self._stopped:
            raise RuntimeError("this context was stopped: make a new one")

    def _site(self) -> str:
        """file:line of the user's code that made the dataset (outside stackyard)."""
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
            frame = frame.f_back
        if frame is None:
            return "<unknown>"
        return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"

    def _register(self, node: lineage.Node) -> None:
        node.id = next(self._ids)

    def _register_shuffle(self, dep: lineage.ShuffleDep) -> None:
        dep.id = next(self._ids)
        weakref.finalize(dep, self._shuffle_gone, dep.id)

    def _rdd(self, node: lineage.Node) -> RDD:
        self._check()
        self._register(node)
        return RDD(node, self)

    def _stage_dir(self) -> str:
        if not self._staged:
            self.fs.mkdir(self.staging)
            self._staged = True
        return self.staging

    # -- making datasets ------------------------------------------------------------------

    def parallelize(self, c: Iterable, numSlices: int | None = None) -> RDD:  # noqa: N803
        n = numSlices or self.defaultParallelism
        if n < 1:
            raise ValueError(f"numSlices: must be positive, got {n}")
        site = self._site()
        if isinstance(c, range):
            return self._rdd(lineage.RangeNode(c, n, "parallelize", site))
        data = list(c)
        size = len(data)
        slices = [data[i * size // n:(i + 1) * size // n] for i in range(n)]
        pickled = [dumps(s) for s in slices]
        if sum(map(len, pickled)) <= INLINE_SLICES:
            return self._rdd(lineage.ParallelNode(slices, "parallelize", site))
        path = posixpath.join(self._stage_dir(), f"parallelize_{next(self._ids)}")
        stored, offset = [], 0
        with self.fs.open(path, "wb") as f:
            for p in pickled:
                f.write(p)
                stored.append((offset, len(p)))
                offset += len(p)
        return self._rdd(lineage.ParallelNode([], "parallelize", site, stored, path))

    def range(self, start: int, end: int | None = None, step: int = 1,
              numSlices: int | None = None) -> RDD:  # noqa: N803
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def emptyRDD(self) -> RDD:  # noqa: N802
        node = lineage.ParallelNode([], "emptyRDD", self._site())
        node.kind = "EmptyRDD"
        return self._rdd(node)

    def union(self, rdds: list[RDD]) -> RDD:
        if not rdds:
            raise ValueError("union: needs at least one RDD")
        nodes = [r._node for r in rdds]
        first = nodes[0].partitioner
        if first is not None and all(n.partitioner == first for n in nodes):
            return self._rdd(lineage.AlignedUnionNode(nodes, "union", self._site()))
        return self._rdd(lineage.UnionNode(nodes, "union", self._site()))

    def textFile(self, name: str, minPartitions: int | None = None,  # noqa: N802,N803
                 use_unicode: bool = True) -> RDD:
        """Lines of NAME: a DFS path (file, directory, glob; comma-separated
        for several) or a file:// one on the workers' disks."""
        local = local_path(name) is not None
        splits = self._text_splits(name, minPartitions or self.defaultMinPartitions)
        return self._rdd(lineage.TextNode(splits, local, use_unicode, "textFile", self._site()))

    def wholeTextFiles(self, path: str, minPartitions: int | None = None,  # noqa: N802,N803
                       use_unicode: bool = True) -> RDD:
        """(path, whole content) per file."""
        local = local_path(path) is not None
        files = [f["path"] for f in self._files(path)]
        n = max(1, min(minPartitions or self.defaultMinPartitions, len(files)))
        groups = [files[i * len(files) // n:(i + 1) * len(files) // n] for i in range(n)]
        return self._rdd(lineage.WholeTextNode(groups, local, "wholeTextFiles", self._site()))

    def pickleFile(self, name: str, minPartitions: int | None = None) -> RDD:  # noqa: N802,N803
        """What saveAsPickleFile wrote (one partition per file; comma-separated
        paths for several)."""
        from stackyard.compute.splits import Split
        splits = []
        for f in self._files(name):
            if f["local"]:
                raise ValueError(f"pickleFile: reads the DFS, not {name!r}")
            locs = self.fs.chunk_locations(f["path"], 0, 1) if f["length"] else []
            splits.append(Split(f["path"], 0, f["length"], tuple(locs[0].hosts) if locs else ()))
        return self._rdd(lineage.PickleFileNode(splits, "pickleFile", self._site()))

    def table(self, name: str, columns=None, filter: str | None = None,  # noqa: A002
              start: bytes = b"", stop: bytes = b"", versions: int = 1) -> RDD:
        """The rows of the table-store table NAME as (row key, {b"cf:q": value}),
        a partition per tablet, each run beside its tablet's server."""
        from stackyard.table import filters
        from stackyard.table.jobs import table_splits
        if filter:
            filters.parse(filter)
        splits = table_splits(self.client.tables, name, bytes(start), bytes(stop))
        read = {"columns": columns, "filter": filter, "versions": versions}
        return self._rdd(lineage.TableNode(splits, read, "table", self._site()))

    def _save_table(self, node: lineage.Node, name: str, batch: int) -> None:
        from stackyard.table.jobs import check_table, coords_of, job_timestamp, write_rows
        tables = self.client.tables
        check_table(tables, name)
        coords, ts = coords_of(tables), job_timestamp()
        self._run_job(node, lambda _split, it, rt: write_rows(rt.ctx, coords, name, it, ts,
                                                             batch), None, "saveToTable")

    def _files(self, paths: str) -> list[dict]:
        from stackyard.compute.splits import input_files
        out = []
        for path in paths.split(","):
            local = local_path(path)
            fs = LocalFiles() if local is not None else self.fs
            try:
                found = input_files(fs, local if local is not None else path)
            except FileNotFoundError as exc:
                raise FileNotFoundError(2, "Input path does not exist",
                                        exc.filename or path) from None
            out += [{**f, "path": local if local is not None and f["path"] == local
                     else f["path"], "local": local is not None} for f in found]
        return out

    def _text_splits(self, paths: str, min_partitions: int) -> list:
        """Hadoop's FileInputFormat splits: goal size = total / minPartitions,
        no larger than a block; the last piece of a file may be 10% over."""
        from stackyard.compute.splits import Split
        files = self._files(paths)
        goal = sum(f["length"] for f in files) // max(min_partitions, 1)
        out = []
        for f in files:
            chunks = [] if f["local"] or not f["length"] else self.fs.chunk_locations(f["path"])
            block = max((c.length for c in chunks), default=LOCAL_BLOCK)
            size = max(1, min(goal, block))
            offset, left = 0, f["length"]

            def hosts(at: int, chunks=chunks) -> tuple:
                for c in chunks:
                    if c.offset <= at < c.offset + c.length:
                        return tuple(c.hosts)
                return ()

            while left / size > 1.1:
                out.append(Split(f["path"], offset, size, hosts(offset)))
                offset += size
                left -= size
            if left or not f["length"]:
                out.append(Split(f["path"], offset, left, hosts(offset)))
        return out

    # -- shared variables -------------------------------------------------------------------

    def broadcast(self, value) -> shared.Broadcast:
        bid = next(self._broadcasts)
        path = posixpath.join(self._stage_dir(), f"broadcast_{bid}")
        with self.fs.open(path, "wb") as f:
            f.write(dumps(value))
        return shared.Broadcast(bid, path, value, context=self)

    def _forget_broadcast(self, b: shared.Broadcast) -> None:
        try:
            self.fs.rm(b.path)
        except FileNotFoundError:
            pass

    def accumulator(self, value, accum_param: shared.AccumulatorParam | None = None
                    ) -> shared.Accumulator:
        acc = shared.Accumulator(next(self._ids), value, accum_param or shared.default_param(value))
        self._accumulators[acc.aid] = acc
        return acc

    # -- job groups and cancellation ----------------------------------------------------------

    def setJobGroup(self, groupId: str, description: str = "",  # noqa: N802,N803
                    interruptOnCancel: bool = False) -> None:  # noqa: N803
        """The jobs this thread starts from now on belong to GROUPID, which
        cancelJobGroup cancels together (their task processes are killed
        either way: interruptOnCancel is accepted for PySpark's sake)."""
        self._local.group = str(groupId)
        self._local.description = description

    def setJobDescription(self, value: str) -> None:  # noqa: N802
        self._local.description = value

    def cancelJobGroup(self, groupId: str) -> None:  # noqa: N802,N803
        """Cancel the running jobs of GROUPID (from any thread)."""
        self.engine.call("cancel", app=self.applicationId, group=str(groupId),
                         reason=f"cancelled: part of job group {groupId!r}, which was cancelled")

    def cancelAllJobs(self) -> None:  # noqa: N802
        """Cancel every running job of this application (from any thread)."""
        self.engine.call("cancel", app=self.applicationId,
                         reason="cancelled: the driver cancelled all of its jobs")

    def cancelJob(self, jobId: str, reason: str | None = None) -> None:  # noqa: N802,N803
        """Cancel one running job of this application (ids: runningJobs())."""
        if jobId not in self._running:
            raise ValueError(f"job {jobId!r}: not a running job of this application")
        self.engine.kill(jobId, f"cancelled by its driver{': ' + reason if reason else ''}")

    def runningJobs(self) -> list[str]:  # noqa: N802
        """The ids of this application's jobs running now."""
        return list(self._running)

    # -- running jobs -------------------------------------------------------------------------

    def runJob(self, rdd: RDD, partitionFunc: Callable, partitions: list[int] | None = None,  # noqa: N802,N803
               allowLocal: bool = False) -> list:  # noqa: N803
        """PARTITIONFUNC(iterator) of each partition asked for, concatenated."""
        parts = self._run_job(rdd._node, lambda _s, it, _rt: list(partitionFunc(it)),
                              partitions, "runJob")
        return list(itertools.chain.from_iterable(parts))

    def _unpersist(self, node_id: int) -> None:
        self.engine.drop_blocks(f"{self.applicationId}/rdd_{node_id}_")

    def _save(self, node: lineage.Node, path: str, kind: str) -> None:
        path = setup_output(self.fs, path)
        op = "saveAsTextFile" if kind.startswith("text") else "saveAsPickleFile"
        try:
            self._run_job(node, lambda split, it, rt: save_partition(path, kind, split, it, rt),
                          None, op)
        except BaseException:
            finish_output(self.fs, path, succeeded=False)
            raise
        finish_output(self.fs, path, succeeded=True)

    def _run_job(self, node: lineage.Node, func: Callable, partitions: list[int] | None,
                 op: str) -> list:
        """FUNC(split, iterator, runtime) for each of NODE's PARTITIONS, as one job."""
        self._check()
        partitions = list(range(node.num_partitions)) if partitions is None else list(partitions)
        for p in partitions:
            if not 0 <= p < node.num_partitions:
                raise ValueError(f"partition {p} out of range 0..{node.num_partitions - 1}")
        if not partitions:
            return []
        self._release_shuffles()
        action = f"{op} at {self._site()}"
        for whole in (False, True):
            blocks, cached, asked = self._lineage_blocks(node, whole)
            written = {} if whole else dict(self._written)
            plans, stage_of = stages.build(node, partitions, cached, written)
            first = _first_stages(plans, asked - cached)
            if not whole:
                # the payload carries the lineage up to the shuffles earlier jobs
                # wrote, not beyond (Spark's tasks carry theirs up to the
                # stage's shuffle dependencies): a cached partition that is
                # lost is recomputed in the job from what the payload has
                copies = lineage.pruned_copy([p.node for p in plans] + [p.dep for p in plans],
                                             set(written))
                plans = [stages.StagePlan(copies[id(p.node)],
                                          copies[id(p.dep)] if p.dep is not None else None,
                                          p.partitions, p.parents) for p in plans]
            program = DatasetProgram(self.applicationId, plans, stage_of, BlockMap(blocks),
                                     func, written, self.sort_buffer, self.task_memory, first)
            group = getattr(self._local, "group", "")
            spec = {"name": getattr(self._local, "description", "") or action,
                    "user": self.fs.user, "groups": self.fs.groups,
                    "app": self.applicationId, "job_group": group,
                    "max_attempts": 4, "speculative": True,
                    "stages": [{"name": p.name(action), "tasks": len(p.partitions),
                                "partitions": p.dep.partitioner.numPartitions if p.dep else 0,
                                "parents": p.parents,
                                "preferred": [stages.preferred(p.node, s, self.applicationId,
                                                               blocks) for s in p.partitions]}
                               for p in plans]}
            job = self.engine.submit(spec, pack(program))
            self._running[job] = group
            try:
                self.engine.wait(job, self._show if self._progress else None)
            except JobFailed as exc:
                if not whole and LINEAGE_LOST in str(exc):
                    continue
                raise
            except KeyboardInterrupt:
                # Ctrl-C: what this action started stops too, tasks and all
                try:
                    self.engine.kill(job, "cancelled: the driver was interrupted (Ctrl-C)")
                except StackyardError:
                    pass
                raise
            finally:
                self._running.pop(job, None)
                if self._progress:
                    sys.stderr.write("\r\033[K")
            for sid, plan in enumerate(plans):
                if plan.dep is not None:
                    self._written[plan.dep.id] = (job, sid)
            last = len(plans) - 1
            values = []
            for sid in range(len(plans)) if self._accumulators else [last]:
                for out in self.engine.results(job, sid, forget=True):
                    if not out:
                        continue
                    value, updates = pickle.loads(out)
                    for aid, term in updates.items():
                        if aid in self._accumulators:
                            self._accumulators[aid].add(term)
                    if sid == last:
                        values.append(value)
            self._do_checkpoints(node)
            return values
        raise AssertionError("unreachable")

    def _lineage_blocks(self, node: lineage.Node, whole: bool
                        ) -> tuple[dict[str, list], set[int], set[int]]:
        """(where the cached partitions NODE's job may read are, the ids of the
        persisted nodes with every partition cached, the ids of the persisted
        nodes whose partitions were looked up). The walk stops at those
        nodes and at shuffles earlier jobs wrote, so it costs what is new in
        the lineage, not its whole history (WHOLE: the whole of it)."""
        if not self._persisted:
            return {}, set(), set()
        app = self.applicationId
        written = set() if whole else set(self._written)
        blocks: dict[str, list] = {}
        cached: set[int] = set()
        asked: set[int] = set()
        starts, seen = [node], set()
        while starts:
            reached: list[lineage.Node] = []
            stack = list(starts)
            starts = []
            while stack:
                n = stack.pop()
                if id(n) in seen:
                    continue
                seen.add(id(n))
                if n.storage is not None:
                    reached.append(n)
                    continue          # its parents matter only if it is not all cached
                stack += _parents(n, written)
            if not reached:
                break
            blocks.update(self.engine.blocks([f"{app}/rdd_{n.id}_" for n in reached]))
            asked.update(n.id for n in reached)
            for n in reached:
                if all(stages.block_id(app, n.id, p) in blocks for p in range(n.num_partitions)):
                    cached.add(n.id)
                else:
                    starts += _parents(n, written)
        return blocks, cached, asked

    # -- checkpoints ------------------------------------------------------------------------

    def setCheckpointDir(self, dirName: str) -> None:  # noqa: N802,N803
        """Where checkpoint() writes (a DFS directory; a folder of this
        application's is made in it, as Spark does)."""
        if local_path(dirName) is not None:
            raise ValueError(f"setCheckpointDir: {dirName!r} is on one machine's disk; "
                             "checkpoints go to the DFS, where every worker reads them")
        path = posixpath.join(dirName, self.applicationId)
        self.fs.mkdir(path)
        self._checkpoint_dir = path

    def getCheckpointDir(self) -> str | None:  # noqa: N802
        return self._checkpoint_dir

    def _do_checkpoints(self, node: lineage.Node) -> None:
        """After a job over NODE: write the checkpoints its lineage asked for
        and cut the lineage there (Spark's RDD.doCheckpoint)."""
        if self._checkpointing:
            return
        wanted = [n for n in lineage.walk(node, lambda n: n.checkpoint is None or
                                          n.checkpoint in ("wanted", "local wanted"))
                  if n.checkpoint in ("wanted", "local wanted")]
        if not wanted:
            return
        self._checkpointing = True
        try:
            for n in reversed(wanted):         # the oldest first: later ones read it
                if n.checkpoint == "wanted":
                    self._write_checkpoint(n)
                else:
                    self._local_checkpoint(n)
        finally:
            self._checkpointing = False

    def _write_checkpoint(self, n: lineage.Node) -> None:
        from stackyard.compute.splits import Split
        path = posixpath.join(self._checkpoint_dir, f"rdd-{n.id}")
        self._save(n, path, "pickle")
        splits = []
        for split in range(n.num_partitions):
            part = posixpath.join(path, f"part-{split:05d}")
            length = self.fs.stat(part)["length"]
            locs = self.fs.chunk_locations(part, 0, 1) if length else []
            splits.append(Split(part, 0, length, tuple(locs[0].hosts) if locs else ()))
        lineage.truncate(n, lineage.CheckpointFiles(path, splits))

    def _local_checkpoint(self, n: lineage.Node) -> None:
        prefix = f"{self.applicationId}/rdd_{n.id}_"
        held = self.engine.blocks([prefix])
        missing = [p for p in range(n.num_partitions)
                   if stages.block_id(self.applicationId, n.id, p) not in held]
        if missing:             # the job computed only some: cache the rest now
            self._run_job(n, lambda _s, it, _rt: sum(1 for _ in it), missing,
                          "localCheckpoint")
        lineage.truncate(n, "local")

    # -- shuffle outputs no dataset needs any more (Spark's ContextCleaner) ------------------

    def _shuffle_gone(self, dep_id: int) -> None:
        """A shuffle dependency was garbage-collected (any thread)."""
        with self._gone_lock:
            self._gone.append(dep_id)

    def _release_shuffles(self) -> None:
        """Tell the scheduler which earlier jobs' shuffle outputs no dataset can
        read any more, so that workers delete them."""
        with self._gone_lock:
            gone, self._gone = self._gone, []
        jobs = set()
        for dep_id in gone:
            done = self._written.pop(dep_id, None)
            if done is not None:
                jobs.add(done[0])
        still = {job for job, _ in self._written.values()}
        for job in sorted(jobs - still):
            try:
                self.engine.call("release", app=self.applicationId, job=job)
            except StackyardError:
                pass

    def _show(self, summary: dict) -> None:
        for s in summary["stages"]:
            if s["succeeded"] < s["tasks"]:
                sys.stderr.write(f"\r[Stage {s['id']}: {s['name']} "
                                 f"({s['succeeded']} + {s['running']}) / {s['tasks']}]\033[K")
                sys.stderr.flush()
                return


def _parents(n: lineage.Node, written: set[int]) -> list[lineage.Node]:
    """The nodes N's job may compute next: narrow parents, and the parents of
    shuffles no earlier job wrote."""
    out = []
    for d in n.deps:
        if isinstance(d, lineage.ShuffleDep):
            if d.id not in written:
                out.append(d.parent)
        else:
            out.append(d)
    return out


def _first_stages(plans: list, uncached: set[int]) -> dict[int, int]:
    """{persisted node: the first stage that computes it} for the persisted
    nodes the driver found not (all) cached: that stage's tasks need not ask
    a worker for their partitions; a later stage's may find them cached by it."""
    out: dict[int, int] = {}
    for sid, plan in enumerate(plans):
        for n in lineage.walk(plan.node, across_shuffles=False):
            if n.id in uncached:
                out.setdefault(n.id, sid)
    return out

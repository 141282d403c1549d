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
from collections.abc import Callable, Iterable

from stackyard.compute.client import JobFailed
from stackyard.compute.committer import finish_output, setup_output
from stackyard.compute.payload import pack
from stackyard.dataset import lineage, shared, stages
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
        action = f"{op} at {self._site()}"
        for whole in (False, True):
            blocks = self.engine.blocks(self.applicationId + "/") if _persists(node) else {}
            cached = set() if whole else _fully_cached(node, blocks, self.applicationId)
            written = {} if whole else dict(self._written)
            plans, stage_of = stages.build(node, partitions, cached, written)
            program = DatasetProgram(self.applicationId, plans, stage_of,
                                     {b: [a for _, a in held] for b, held in blocks.items()},
                                     func, written, self.sort_buffer, self.task_memory)
            spec = {"name": action, "user": self.fs.user, "groups": self.fs.groups,
                    "app": self.applicationId,
                    "max_attempts": 4, "speculative": True,
                    "stages": [{"name": p.name(action), "tasks": len(p.partitions),
                                "partitions": p.dep.partitioner.numPartitions if p.dep else 0,
                                "parents": p.parents,
                                "preferred": [stages.preferred(p.node, s, self.applicationId,
                                                               blocks) for s in p.partitions]}
                               for p in plans]}
            job = self.engine.submit(spec, pack(program))
            try:
                self.engine.wait(job, self._show if self._progress else None)
            except JobFailed as exc:
                if not whole and LINEAGE_LOST in str(exc):
                    continue
                raise
            except KeyboardInterrupt:
                self.engine.kill(job)
                raise
            finally:
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
            return values
        raise AssertionError("unreachable")

    def _show(self, summary: dict) -> None:
        for s in summary["stages"]:
            if s["succeeded"] < s["tasks"]:
                sys.stderr.write(f"\r[Stage {s['id']}: {s['name']} "
                                 f"({s['succeeded']} + {s['running']}) / {s['tasks']}]\033[K")
                sys.stderr.flush()
                return


def _persists(node: lineage.Node) -> bool:
    return any(n.storage is not None for n in lineage.walk(node))


def _fully_cached(node: lineage.Node, blocks: dict, app: str) -> set[int]:
    """Ids of the persisted nodes in NODE's lineage with every partition cached."""
    full: set[int] = set()

    def enter(n: lineage.Node) -> bool:
        if n.storage is not None and all(stages.block_id(app, n.id, s) in blocks
                                         for s in range(n.num_partitions)):
            full.add(n.id)
            return False          # what it was made from is not needed
        return True

    for _ in lineage.walk(node, enter):
        pass
    return full



"""What a dataset job's tasks run (in the runner process): the job's stage
plans, and a runtime that computes a partition through its lineage, reading
cached partitions from the workers' block stores and shuffle input from the
engine, caching what its persisted nodes compute.

A shuffle-map task writes its node's records into the engine's map output;
an action's task applies the action's function to its partition and
returns the value (with its accumulator updates) to the driver."""

from __future__ import annotations

import gzip
import http.client
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stackyard.compute.context import CommitDenied, FetchFailed, TaskContext
from stackyard.compute.records import write_batches
from stackyard.compute.shuffle import counted
from stackyard.dataset import shared
from stackyard.dataset.blockmap import BlockMap
from stackyard.dataset.exchange import shuffle_items
from stackyard.dataset.lineage import CheckpointFiles, Node, ShuffleDep
from stackyard.dataset.localfs import LocalFiles
from stackyard.dataset.stages import StagePlan, block_id
from stackyard.errors import StackyardError

LINEAGE_LOST = "[lineage lost]"


class LineageLost(Exception):
    """A cached partition is gone and the shuffle it was made from is not part
    of this job: the driver resubmits the job with the whole lineage."""


class LocalCheckpointLost(Exception):
    """A partition of a locally checkpointed dataset is gone with its worker."""


class TaskError(Exception):
    """A user function failed; the message names the dataset it belongs to."""


def dumps(value) -> bytes:
    try:
        return pickle.dumps(value, protocol=5)
    except (pickle.PicklingError, AttributeError, TypeError):
        from stackyard.compute.payload import dumps as cloud_dumps
        return cloud_dumps(value)


@dataclass
class DatasetProgram:
    app: str
    plans: list[StagePlan]
    stage_of: dict[int, int]              # shuffle id -> the stage writing it
    blocks: BlockMap                      # where cached partitions are (of the
    # persisted nodes the driver looked up; their other partitions were cached nowhere)
    result: Callable                      # (split, iterator, runtime) -> the action's value
    written: dict | None = None           # shuffle id -> (job, stage) of an earlier job
    sort_buffer: int = 64 << 20
    memory: int = 512 << 20               # map-side combining flushes beyond this RSS
    # persisted nodes the driver looked up and found not all cached -> the first
    # stage computing them (whose tasks need not ask for their partitions)
    first: dict | None = None

    def prefetch(self, ctx: TaskContext) -> None:
        """Ask for every shuffle partition the attempt's tasks read at once."""
        if len(ctx.tasks) < 2:
            return               # nothing to gain
        plan = self.plans[ctx.stage]
        wanted: dict[tuple[str, int], set[int]] = {}
        blocks: dict[str, list[str]] = {}
        for index in ctx.tasks:
            for dep, split in shuffle_reads(plan.node, plan.partitions[index], self, blocks):
                sid = self.stage_of.get(dep.id)
                if sid is not None:
                    wanted.setdefault((ctx.job, sid), set()).add(split)
                elif (self.written or {}).get(dep.id) is not None:
                    job, stage = self.written[dep.id]
                    wanted.setdefault((job, stage), set()).add(split)
        try:
            ctx.prefetch_blocks(blocks)
            ctx.prefetch(wanted)
        except (FetchFailed, FileNotFoundError, StackyardError, OSError,
                http.client.HTTPException):
            pass       # each task meets (and reports) the failure when it reads

    def run_task(self, ctx: TaskContext) -> None:
        plan = self.plans[ctx.stage]
        split = plan.partitions[ctx.task]
        rt = Runtime(ctx, self)
        shared.start_task(ctx.fs)
        try:
            records = rt.iterator(plan.node, split)
            if plan.dep is not None:
                buf = ctx.map_output(None, None, self.sort_buffer)
                n = buf.extend_partitioned(shuffle_items(plan.dep, records, split, self.memory))
                ctx.incr("shuffle_records_written", n)
                value = None
            else:
                value = self.result(split, records, rt)
        except LineageLost as exc:
            raise LineageLost(f"{LINEAGE_LOST} {exc}") from None
        except (FetchFailed, CommitDenied):
            raise                # the engine's own: it re-runs what is needed
        except Exception as exc:
            node = rt.failed or plan.node
            raise TaskError(f"{type(exc).__name__} in {node.describe()}: {exc}") from exc
        updates = shared.task_updates()
        if plan.dep is None or any(updates.values()):
            ctx.output = dumps((value, updates))


def shuffle_reads(node: Node, split: int, program: DatasetProgram,
                  blocks: dict[str, list[str]]) -> Iterator[tuple]:
    """(shuffle, partition) for what computing SPLIT of NODE reads from shuffles,
    through narrow dependencies; a partition cached on a worker ends the walk
    (and goes into BLOCKS, with the workers holding it)."""
    stack, seen = [(node, split)], set()
    while stack:
        n, s = stack.pop()
        if (n.id, s) in seen:
            continue
        seen.add((n.id, s))
        if n.checkpoint is not None or n.pruned:
            continue
        if n.storage is not None:
            where = program.blocks.where(n.id, s)
            if where:
                blocks[block_id(program.app, n.id, s)] = where
                continue
        for d in n.deps:
            if isinstance(d, ShuffleDep):
                yield d, s
        stack += n.narrow(s)


def save_partition(output: str, kind: str, split: int, records: Iterator, rt: Runtime) -> None:
    """An action's task for saveAsTextFile ("text", "text.gz") and
    saveAsPickleFile ("pickle"): its partition as part-NNNNN."""
    def write_text(f) -> None:
        n, buf = 0, []
        for x in records:
            buf.append(x if type(x) is str else str(x))
            n += 1
            if len(buf) >= 4096:
                f.write(("\n".join(buf) + "\n").encode("utf-8", "surrogateescape"))
                buf = []
        if buf:
            f.write(("\n".join(buf) + "\n").encode("utf-8", "surrogateescape"))
        rt.counters["output_records"] = rt.counters.get("output_records", 0) + n

    def write(f) -> None:
        if kind == "text.gz":
            with gzip.GzipFile(fileobj=f, mode="wb") as z:
                write_text(z)
        elif kind == "text":
            write_text(f)
        else:
            write_batches(f, counted(records, rt.counters, "output_records"), batch=1024)

    name = f"part-{split:05d}" + (".gz" if kind == "text.gz" else "")
    rt.ctx.publish(output, name, write)


class Runtime:
    def __init__(self, ctx: TaskContext, program: DatasetProgram):
        self.ctx, self.program = ctx, program
        self.counters = ctx.counters
        self.failed: Node | None = None
        self.local_fs = LocalFiles()

    @property
    def fs(self):
        return self.ctx.fs

    def iterator(self, node: Node, split: int) -> Iterator:
        if node.storage is not None:
            return self._watch(node, lambda: self._cached(node, split))
        return self._watch(node, lambda: self._compute(node, split))

    def _compute(self, node: Node, split: int) -> Iterator:
        """SPLIT of NODE from its lineage, or from its checkpoint's files."""
        cp = node.checkpoint
        if isinstance(cp, CheckpointFiles):
            from stackyard.compute.splits import file_records
            return file_records(self.fs, cp.splits[split], self.counters)
        if cp == "local":
            raise LocalCheckpointLost(
                f"Checkpoint block {block_id(self.program.app, node.id, split)} not found! "
                "Either the worker that cached this partition of a locally checkpointed "
                "dataset is no longer alive, or the dataset was unpersisted. If this "
                "keeps happening, use rdd.checkpoint() instead, which is slower than "
                "local checkpointing but survives the loss of a worker.")
        if node.pruned:
            raise LineageLost(f"a cached partition of {node.describe()} was lost")
        return node.compute(split, self)

    def _watch(self, node: Node, make: Callable[[], Iterator]) -> Iterator:
        """The node's records, remembering it as the failed one if it raises
        (the innermost node a user error passes through is its own)."""
        try:
            yield from make()
        except Exception:
            if self.failed is None:
                self.failed = node
            raise

    def _cached(self, node: Node, split: int) -> Iterator:
        bid = block_id(self.program.app, node.id, split)
        where = self.program.blocks.where(node.id, split)
        # a partition the driver found cached nowhere is computed without asking
        if where or (self.program.first or {}).get(node.id) != self.ctx.stage:
            data = self.ctx.get_block(bid, where or [])
        else:
            data = None
            self.ctx.incr("cache_misses")
        if data is not None:
            return iter(pickle.loads(data))
        items = list(self._compute(node, split))
        self.ctx.put_block(bid, dumps(items), node.storage.block_level)
        self.ctx.incr("cached_partitions")
        return iter(items)

    def shuffle_input(self, dep: ShuffleDep, split: int) -> Iterator:
        sid = self.program.stage_of.get(dep.id)
        if sid is not None:
            return self.ctx.shuffle_input(split, [sid])
        earlier = (self.program.written or {}).get(dep.id)
        if earlier is None:
            raise LineageLost(f"a cached partition of {dep.parent.describe()}'s consumer "
                              "was lost")
        job, stage = earlier
        try:
            return self.ctx.shuffle_input(split, [stage], job)
        except (FetchFailed, FileNotFoundError, StackyardError) as exc:
            raise LineageLost(f"the shuffle output of {job} is gone: {exc}") from None

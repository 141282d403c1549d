"""RDD: a lazy, partitioned dataset with lineage, under PySpark's names and
semantics. Transformations only record lineage (a node in lineage.py);
actions (actions.py) run a job on the engine. Key-value transformations are
in pairs.py.

Consecutive narrow transformations are composed into one function, as
PySpark pipelines them, unless the earlier one is persisted."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from operator import itemgetter

from stackyard.dataset import lineage
from stackyard.dataset.actions import Actions
from stackyard.dataset.pairs import PairFunctions
from stackyard.dataset.partitioner import Partitioner
from stackyard.dataset.storage import StorageLevel


class RDD(PairFunctions, Actions):
    def __init__(self, node: lineage.Node, ctx):
        self._node, self.ctx = node, ctx

    @property
    def context(self):
        return self.ctx

    @property
    def partitioner(self) -> Partitioner | None:
        return self._node.partitioner

    def id(self) -> int:
        return self._node.id

    def name(self) -> str | None:
        return self._node.name

    def setName(self, name: str) -> RDD:  # noqa: N802
        self._node.name = name
        return self

    def getNumPartitions(self) -> int:  # noqa: N802
        return self._node.num_partitions

    def __repr__(self) -> str:
        return self._node.describe()

    def __reduce__(self):
        raise RuntimeError("a dataset cannot be used inside another's functions (tasks see "
                           "no datasets): collect() it, or broadcast what you need, first")

    # -- building lineage ---------------------------------------------------------

    def _derive(self, node: lineage.Node) -> RDD:
        self.ctx._register(node)
        return RDD(node, self.ctx)

    def _pipe(self, func: Callable, preserves: bool, op: str) -> RDD:
        """FUNC(split, iterator) over each partition, composed with the
        previous step when that is a pipelined function too (and neither
        persisted nor named: a named one stays visible in lineage and errors)."""
        node = self._node
        site = self.ctx._site()
        if isinstance(node, lineage.PipeNode) and node.storage is None and node.name is None:
            first = node.func

            def composed(split, it, first=first, then=func):
                return then(split, first(split, it))

            new = lineage.PipeNode(node.deps[0], composed, True, op, site)
            new.partitioner = node.partitioner if preserves else None
            return self._derive(new)
        return self._derive(lineage.PipeNode(node, func, preserves, op, site))

    # -- element-wise -----------------------------------------------------------------

    def map(self, f: Callable, preservesPartitioning: bool = False) -> RDD:  # noqa: N803
        return self._pipe(lambda _, it: map(f, it), preservesPartitioning, "map")

    def flatMap(self, f: Callable, preservesPartitioning: bool = False) -> RDD:  # noqa: N802,N803
        return self._pipe(lambda _, it: itertools.chain.from_iterable(map(f, it)),
                          preservesPartitioning, "flatMap")

    def filter(self, f: Callable) -> RDD:
        return self._pipe(lambda _, it: filter(f, it), True, "filter")

    def mapPartitions(self, f: Callable, preservesPartitioning: bool = False) -> RDD:  # noqa: N802,N803
        return self._pipe(lambda _, it: f(it), preservesPartitioning, "mapPartitions")

    def mapPartitionsWithIndex(self, f: Callable,  # noqa: N802
                               preservesPartitioning: bool = False) -> RDD:  # noqa: N803
        return self._pipe(f, preservesPartitioning, "mapPartitionsWithIndex")

    mapPartitionsWithSplit = mapPartitionsWithIndex  # noqa: N815

    def glom(self) -> RDD:
        return self._pipe(lambda _, it: iter([list(it)]), False, "glom")

    def keyBy(self, f: Callable) -> RDD:  # noqa: N802
        return self._pipe(lambda _, it: ((f(x), x) for x in it), False, "keyBy")

    def keys(self) -> RDD:
        return self._pipe(lambda _, it: map(itemgetter(0), it), False, "keys")

    def values(self) -> RDD:
        return self._pipe(lambda _, it: map(itemgetter(1), it), False, "values")

    def mapValues(self, f: Callable) -> RDD:  # noqa: N802
        return self._pipe(lambda _, it: ((k, f(v)) for k, v in it), True, "mapValues")

    def flatMapValues(self, f: Callable) -> RDD:  # noqa: N802
        return self._pipe(lambda _, it: ((k, x) for k, v in it for x in f(v)), True,
                          "flatMapValues")

    def sample(self, withReplacement: bool, fraction: float, seed: int | None = None) -> RDD:  # noqa: N803
        if fraction < 0:
            raise ValueError(f"fraction: must be >= 0, got {fraction}")
        if not withReplacement and fraction > 1:
            raise ValueError(f"fraction: must be <= 1 without replacement, got {fraction}")
        base = random.randrange(1 << 30) if seed is None else seed

        def sampled(split, it):
            rng = random.Random(base * 1000003 + split)
            if not withReplacement:
                return (x for x in it if rng.random() < fraction)
            return (x for x in it for _ in range(_poisson(rng, fraction)))

        return self._pipe(sampled, True, "sample")

    def randomSplit(self, weights: list[float], seed: int | None = None) -> list[RDD]:  # noqa: N802
        """Disjoint random parts with sizes in proportion to WEIGHTS: every part
        draws the same random number per element and keeps it when the number
        falls in its share of [0, 1)."""
        if any(w < 0 for w in weights) or not sum(weights):
            raise ValueError(f"weights: must be >= 0 and not all 0, got {weights}")
        total = float(sum(weights))
        cuts = [0.0, *itertools.accumulate(w / total for w in weights)]
        cuts[-1] = 1.0
        base = random.randrange(1 << 30) if seed is None else seed

        def part(lo: float, hi: float):
            def keep(split, it):
                rng = random.Random(base * 1000003 + split)
                return (x for x in it if lo <= rng.random() < hi)
            return keep

        return [self._pipe(part(lo, hi), True, "randomSplit")
                for lo, hi in itertools.pairwise(cuts)]

    def pipe(self, command: str, env: dict | None = None, checkCode: bool = False) -> RDD:  # noqa: N803
        """Each partition through the shell COMMAND: elements in as lines on its
        stdin, its stdout's lines out (Hadoop Streaming's contract, per partition)."""
        def run(_split, it):
            import subprocess
            import threading
            proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)

            def feed() -> None:
                try:
                    for x in it:
                        proc.stdin.write(f"{x}\n".encode())
                finally:
                    proc.stdin.close()

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            for line in proc.stdout:
                yield line.decode().rstrip("\n")
            feeder.join()
            if proc.wait() and checkCode:
                raise RuntimeError(f"pipe: {command!r} exited with code {proc.returncode}")

        return self._pipe(run, False, "pipe")

    # -- combining datasets --------------------------------------------------------------

    def union(self, other: RDD) -> RDD:
        site = self.ctx._site()
        a, b = self._node, other._node
        if (a.partitioner is not None and a.partitioner == b.partitioner
                and a.num_partitions == b.num_partitions):
            return self._derive(lineage.AlignedUnionNode([a, b], "union", site))
        return self._derive(lineage.UnionNode([a, b], "union", site))

    def __add__(self, other: RDD) -> RDD:
        return self.union(other)

    def cartesian(self, other: RDD) -> RDD:
        return self._derive(lineage.CartesianNode(self._node, other._node, "cartesian",
                                                  self.ctx._site()))

    def zip(self, other: RDD) -> RDD:
        if self.getNumPartitions() != other.getNumPartitions():
            raise ValueError("Can only zip with RDD which has the same number of partitions")
        return self._derive(lineage.ZipNode(self._node, other._node, "zip", self.ctx._site()))

    def zipWithIndex(self) -> RDD:  # noqa: N802
        """Runs a job first, to count each partition (unless there is one)."""
        starts = [0]
        if self.getNumPartitions() > 1:
            counts = self.mapPartitions(lambda it: [sum(1 for _ in it)]).collect()
            for c in counts[:-1]:
                starts.append(starts[-1] + c)
        return self.mapPartitionsWithIndex(
            lambda split, it: ((x, i) for i, x in enumerate(it, starts[split])))

    def zipWithUniqueId(self) -> RDD:  # noqa: N802
        n = self.getNumPartitions()
        return self.mapPartitionsWithIndex(
            lambda split, it: ((x, i * n + split) for i, x in enumerate(it)))

    # -- partitions ------------------------------------------------------------------------

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD:  # noqa: N803
        if numPartitions < 1:
            raise ValueError(f"numPartitions: must be positive, got {numPartitions}")
        if shuffle:
            return self.repartition(numPartitions)
        n = min(numPartitions, self.getNumPartitions()) or 1
        return self._derive(lineage.CoalesceNode(self._node, n, "coalesce", self.ctx._site()))

    def repartition(self, numPartitions: int) -> RDD:  # noqa: N803
        """Exactly numPartitions partitions, through a shuffle that deals each
        map task's records round-robin, starting at a place of its own."""
        if numPartitions < 1:
            raise ValueError(f"numPartitions: must be positive, got {numPartitions}")
        site = self.ctx._site()
        dep = lineage.ShuffleDep(self._node, Partitioner(numPartitions), "order",
                                 place=_round_robin, op="repartition", site=site)
        self.ctx._register_shuffle(dep)
        return self._derive(lineage.ShuffledNode(dep, "repartition", site))

    def partitionBy(self, numPartitions: int, partitionFunc=None) -> RDD:  # noqa: N802,N803
        from stackyard.dataset.partitioner import portable_hash
        if numPartitions is None:
            numPartitions = self._reduce_partitions()  # noqa: N806
        part = Partitioner(numPartitions, partitionFunc or portable_hash)
        if self.partitioner == part:
            return self
        site = self.ctx._site()
        dep = lineage.ShuffleDep(self._node, part, "order", op="partitionBy", site=site)
        self.ctx._register_shuffle(dep)
        return self._derive(lineage.ShuffledNode(dep, "partitionBy", site))

    def _reduce_partitions(self) -> int:
        return self.ctx._default_reduce or self.getNumPartitions()

    # -- grouping and set operations, built on the key-value ones ------------------------

    def distinct(self, numPartitions: int | None = None) -> RDD:  # noqa: N803
        return (self.map(lambda x: (x, None))
                .reduceByKey(lambda x, _: x, numPartitions).map(itemgetter(0)))

    def groupBy(self, f: Callable, numPartitions: int | None = None,  # noqa: N802,N803
                partitionFunc=None) -> RDD:  # noqa: N803
        return self.map(lambda x: (f(x), x)).groupByKey(numPartitions, partitionFunc)

    def intersection(self, other: RDD) -> RDD:
        return (self.map(lambda v: (v, None)).cogroup(other.map(lambda v: (v, None)))
                .filter(lambda k_vs: all(k_vs[1])).keys())

    def subtract(self, other: RDD, numPartitions: int | None = None) -> RDD:  # noqa: N803
        theirs = other.map(lambda x: (x, True))
        return self.map(lambda x: (x, True)).subtractByKey(theirs, numPartitions).keys()

    def sortBy(self, keyfunc: Callable, ascending: bool = True,  # noqa: N802
               numPartitions: int | None = None) -> RDD:  # noqa: N803
        return self.keyBy(keyfunc).sortByKey(ascending, numPartitions).values()

    # -- persistence --------------------------------------------------------------------------

    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD:  # noqa: N803
        if not (storageLevel.useMemory or storageLevel.useDisk):
            raise ValueError(f"storageLevel: {storageLevel!r} keeps nothing")
        old = self._node.storage
        if old is not None and old != storageLevel:
            raise ValueError("Cannot change storage level of an RDD after it was already "
                             f"assigned a level ({old} to {storageLevel})")
        self._node.storage = storageLevel
        self.ctx._persisted = True
        return self

    def checkpoint(self) -> None:
        """Write this dataset to the checkpoint directory after the next job
        that computes it, and forget its lineage then (Spark's checkpoint:
        it survives the loss of any worker, at the cost of a DFS write)."""
        if self.ctx.getCheckpointDir() is None:
            raise ValueError("Checkpoint directory has not been set in the SparkContext "
                             "(sc.setCheckpointDir)")
        if self._node.checkpoint is None:
            self._node.checkpoint = "wanted"

    def localCheckpoint(self) -> None:  # noqa: N802
        """Cut this dataset's lineage after the next job that computes it,
        keeping its partitions only in the workers' caches (fast, but a lost
        worker loses them for good: the job then fails)."""
        if self._node.checkpoint is None:
            if self._node.storage is None:
                self.persist(StorageLevel.MEMORY_AND_DISK)
            elif not self._node.storage.useDisk:
                self._node.storage = StorageLevel.MEMORY_AND_DISK
            self._node.checkpoint = "local wanted"

    def isCheckpointed(self) -> bool:  # noqa: N802
        return self._node.checkpoint is not None and self._node.checkpoint not in (
            "wanted", "local wanted")

    def isLocallyCheckpointed(self) -> bool:  # noqa: N802
        return self._node.checkpoint == "local"

    def getCheckpointFile(self) -> str | None:  # noqa: N802
        return getattr(self._node.checkpoint, "path", None)

    def cache(self) -> RDD:
        return self.persist(StorageLevel.MEMORY_ONLY)

    def unpersist(self, blocking: bool = False) -> RDD:
        if self._node.storage is not None:
            self._node.storage = None
            self.ctx._unpersist(self._node.id)
        return self

    @property
    def is_cached(self) -> bool:
        return self._node.storage is not None

    def getStorageLevel(self) -> StorageLevel:  # noqa: N802
        return self._node.storage or StorageLevel.NONE

    def toDebugString(self) -> bytes:  # noqa: N802
        """The lineage, one node a line; `+-` starts a shuffle's parent stage
        (bytes, as PySpark returns it)."""
        lines: list[str] = []

        def walk(node: lineage.Node, prefix: str, first: str) -> None:
            level = f"[{node.storage}]" if node.storage is not None else "[]"
            count = f"({node.num_partitions}) " if first.endswith("+-") or not lines else ""
            lines.append(f"{first}{count}{node.describe()} {level}")
            for d in node.deps:
                if isinstance(d, lineage.ShuffleDep):
                    walk(d.parent, prefix + "   ", prefix + " +-")
                else:
                    walk(d, prefix, prefix + " |  ")

        walk(self._node, "", "")
        return "\n".join(lines).encode()


def _round_robin(split: int, index: int, record) -> int:
    return split + index


def _poisson(rng: random.Random, mean: float) -> int:
    """How many copies of an element a with-replacement sample takes (Knuth)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1



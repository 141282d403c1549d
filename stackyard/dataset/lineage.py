"""A dataset's lineage: the graph of nodes an RDD stands for, and how each
node computes one of its partitions from its parents' (the Spark paper's
RDD interface: partitions, dependencies, compute, preferred locations,
partitioner).

A dependency is narrow (a parent node: each partition reads a few parent
partitions, computed in the same task) or wide (a ShuffleDep: every
partition reads from all the parent's partitions, through the engine's
shuffle, so it starts a new stage). `compute(split, rt)` returns an
iterator; RT, the task's runtime, supplies parents' iterators (cached or
computed), shuffle input, and the DFS."""

from __future__ import annotations

import bisect
import itertools
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

MISSING = object()


class Node(ABC):
    kind = "RDD"

    def __init__(self, partitions: int, deps: list, op: str, site: str, partitioner=None):
        self.id = -1
        self.num_partitions = partitions
        self.deps = deps              # Node (narrow) or ShuffleDep (wide)
        self.op, self.site = op, site
        self.partitioner = partitioner
        self.storage = None           # a StorageLevel once persisted
        self.name: str | None = None
        # checkpoint(): "wanted", then the files' splits once written (deps cut);
        # localCheckpoint(): "local wanted", then "local" (deps cut: only the
        # cached blocks hold it). PRUNED: a stand-in whose lineage stayed on
        # the driver (it must come from the cache).
        self.checkpoint: object = None
        self.pruned = False

    @abstractmethod
    def compute(self, split: int, rt) -> Iterator:
        """The records of partition SPLIT (lazily, as an iterator)."""

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        """The parent partitions SPLIT reads without a shuffle."""
        return []

    def locations(self, split: int) -> list[str]:
        """Where SPLIT's input lives (chunkservers), if anywhere."""
        return []

    def describe(self) -> str:
        return f"{self.name or self.kind}[{self.id}] at {self.op} at {self.site}"


class CheckpointFiles:
    """Where checkpoint() wrote a dataset: one file (a Split) per partition."""

    def __init__(self, path: str, splits: list):
        self.path, self.splits = path, splits


def no_parents(split: int) -> list:
    """narrow() of a node whose lineage was cut (an instance attribute)."""
    return []


def truncate(node: Node, checkpoint: object) -> None:
    """NODE's lineage ends here: it is read from a checkpoint from now on."""
    node.checkpoint = checkpoint
    node.deps = []
    node.narrow = no_parents


def pruned_copy(roots: list, written: set[int]) -> dict[int, object]:
    """Copies of ROOTS' lineage (nodes and shuffle dependencies, by
    id(original)) that end at the shuffles in WRITTEN, whose earlier output
    the job reads instead of their parents: what a job's payload carries, so
    that it grows with what is new, not with the whole history (Spark's tasks
    carry their lineage up to their stage's shuffle dependencies). A written
    output that is lost is met by resubmitting with the whole lineage."""
    import copy
    memo: dict[int, object] = {}

    def node_copy(n: Node) -> Node:
        got = memo.get(id(n))
        if got is None:
            got = memo[id(n)] = copy.copy(n)
            got.deps = [dep_copy(d) if isinstance(d, ShuffleDep) else node_copy(d)
                        for d in n.deps]
        return got

    def dep_copy(d: ShuffleDep) -> ShuffleDep:
        got = memo.get(id(d))
        if got is None:
            got = memo[id(d)] = copy.copy(d)
            if d.id in written:
                got.parent = stub = copy.copy(d.parent)
                stub.deps, stub.pruned, stub.narrow = [], True, no_parents
            else:
                got.parent = node_copy(d.parent)
        return got

    for r in roots:
        if isinstance(r, ShuffleDep):
            dep_copy(r)
        elif r is not None:
            node_copy(r)
    return memo


class Aggregator:
    """combineByKey's three functions."""

    def __init__(self, create: Callable, merge_value: Callable, merge_combiners: Callable):
        self.create, self.merge_value, self.merge_combiners = create, merge_value, merge_combiners


class ShuffleDep:
    """A wide dependency: PARENT's records, re-partitioned by PARTITIONER.
    mode "aggregate": (key, value) pairs combined per key by AGGREGATOR, on
      the map side and again on the reduce side;
    mode "order": records as they are, in the order the map tasks wrote them;
    mode "sort": (key, value) pairs sorted by key (PARTITIONER is a range one)."""

    def __init__(self, parent: Node, partitioner, mode: str, aggregator: Aggregator | None = None,
                 place: Callable | None = None, op: str = "", site: str = ""):
        self.id = -1
        self.op, self.site = op, site
        self.parent, self.partitioner, self.mode = parent, partitioner, mode
        self.aggregator = aggregator
        self.place = place            # "order" mode: (split, index, record) -> partition


def walk(node: Node, enter: Callable[[Node], bool] = lambda n: True,
         across_shuffles: bool = True) -> Iterator[Node]:
    """NODE and its ancestors, each once; ENTER(n) False skips n's ancestors,
    and so does a shuffle unless ACROSS_SHUFFLES."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        if enter(n):
            for d in n.deps:
                if not isinstance(d, ShuffleDep):
                    stack.append(d)
                elif across_shuffles:
                    stack.append(d.parent)


# -- sources -------------------------------------------------------------------------


class ParallelNode(Node):
    """Driver data, sliced: small slices travel in the job, large ones in a DFS file."""
    kind = "ParallelCollectionRDD"

    def __init__(self, slices: list, op: str, site: str, stored: list | None = None,
                 path: str = ""):
        super().__init__(len(slices) if stored is None else len(stored), [], op, site)
        self.slices, self.stored, self.path = slices, stored, path

    def compute(self, split: int, rt) -> Iterator:
        if self.stored is None:
            return iter(self.slices[split])
        offset, length = self.stored[split]
        with rt.fs.open(self.path, "rb") as f:
            f.seek(offset)
            return iter(pickle.loads(f.read(length)))


class RangeNode(Node):
    kind = "ParallelCollectionRDD"

    def __init__(self, r: range, slices: int, op: str, site: str):
        super().__init__(slices, [], op, site)
        self.range = r

    def compute(self, split: int, rt) -> Iterator:
        n, size = self.num_partitions, len(self.range)
        return iter(self.range[size * split // n: size * (split + 1) // n])


class TextNode(Node):
    """Lines of text files (DFS, or the workers' local disks for file:// paths),
    one partition per split; a line belongs to the split it starts in."""
    kind = "MapPartitionsRDD"

    def __init__(self, splits: list, local: bool, use_unicode: bool, op: str, site: str):
        super().__init__(len(splits), [], op, site)
        self.splits, self.local, self.use_unicode = splits, local, use_unicode

    def compute(self, split: int, rt) -> Iterator:
        from stackyard.compute.splits import text_lines
        fs = rt.local_fs if self.local else rt.fs
        lines = text_lines(fs, self.splits[split], rt.counters)
        if self.use_unicode:
            return (line for _, line in lines)
        return (line.encode() for _, line in lines)

    def locations(self, split: int) -> list[str]:
        return list(self.splits[split].hosts)


class WholeTextNode(Node):
    """(path, content) for each file; partitions are groups of whole files."""
    kind = "WholeTextFileRDD"

    def __init__(self, groups: list[list[str]], local: bool, op: str, site: str):
        super().__init__(len(groups), [], op, site)
        self.groups, self.local = groups, local

    def compute(self, split: int, rt) -> Iterator:
        fs = rt.local_fs if self.local else rt.fs
        for path in self.groups[split]:
            with fs.open(path, "rb") as f:
                data = f.read()
            rt.counters["bytes_read"] = rt.counters.get("bytes_read", 0) + len(data)
            yield ("file:" + path if self.local else path), data.decode("utf-8", "replace")


class PickleFileNode(Node):
    """The records of files saveAsPickleFile wrote (one partition per file)."""
    kind = "PickleFileRDD"

    def __init__(self, splits: list, op: str, site: str):
        super().__init__(len(splits), [], op, site)
        self.splits = splits

    def compute(self, split: int, rt) -> Iterator:
        from stackyard.compute.splits import file_records
        return file_records(rt.fs, self.splits[split], rt.counters)

    def locations(self, split: int) -> list[str]:
        return list(self.splits[split].hosts)


class TableNode(Node):
    """The rows of a table-store table: a partition per tablet, (row key,
    {b"family:qualifier": value}) in row order."""
    kind = "TableRDD"

    def __init__(self, splits: list, read: dict, op: str, site: str):
        super().__init__(len(splits), [], op, site)
        self.splits, self.read = splits, read

    def compute(self, split: int, rt) -> Iterator:
        from stackyard.table.jobs import read_split
        return read_split(rt.ctx, self.splits[split], **self.read)

    def locations(self, split: int) -> list[str]:
        return list(self.splits[split].hosts)


# -- narrow transformations -----------------------------------------------------------


class PipeNode(Node):
    """FUNC(split, iterator) over the parent's partition: map, filter, flatMap,
    mapPartitions... A chain of them runs as one function (pipelined)."""
    kind = "PythonRDD"

    def __init__(self, parent: Node, func: Callable, preserves: bool, op: str, site: str):
        super().__init__(parent.num_partitions, [parent], op, site,
                         parent.partitioner if preserves else None)
        self.func = func

    def compute(self, split: int, rt) -> Iterator:
        return self.func(split, rt.iterator(self.deps[0], split))

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [(self.deps[0], split)]


class UnionNode(Node):
    """Every parent's partitions, one after another."""
    kind = "UnionRDD"

    def __init__(self, parents: list[Node], op: str, site: str):
        super().__init__(sum(p.num_partitions for p in parents), list(parents), op, site)
        # where each parent's partitions start (not a pair per partition: the
        # job's payload carries this node)
        self.starts = list(itertools.accumulate((p.num_partitions for p in parents), initial=0))

    def owner(self, split: int) -> tuple[Node, int]:
        i = bisect.bisect_right(self.starts, split) - 1
        return self.deps[i], split - self.starts[i]

    def compute(self, split: int, rt) -> Iterator:
        parent, i = self.owner(split)
        return rt.iterator(parent, i)

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [self.owner(split)]


class AlignedUnionNode(Node):
    """The union of parents partitioned alike: partition i is every parent's
    partition i, so the partitioner holds and no shuffle is needed."""
    kind = "PartitionerAwareUnionRDD"

    def __init__(self, parents: list[Node], op: str, site: str):
        super().__init__(parents[0].num_partitions, list(parents), op, site,
                         parents[0].partitioner)

    def compute(self, split: int, rt) -> Iterator:
        return itertools.chain.from_iterable(rt.iterator(p, split) for p in self.deps)

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [(p, split) for p in self.deps]


class CoalesceNode(Node):
    """Fewer partitions without a shuffle: each reads a run of the parent's."""
    kind = "CoalescedRDD"

    def __init__(self, parent: Node, partitions: int, op: str, site: str):
        super().__init__(partitions, [parent], op, site)
        n = parent.num_partitions
        self.groups = [list(range(i * n // partitions, (i + 1) * n // partitions))
                       for i in range(partitions)]

    def compute(self, split: int, rt) -> Iterator:
        parent = self.deps[0]
        return itertools.chain.from_iterable(rt.iterator(parent, i) for i in self.groups[split])

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [(self.deps[0], i) for i in self.groups[split]]


class ZipNode(Node):
    """Pairs of the two parents' elements, partition by partition."""
    kind = "ZippedPartitionsRDD2"

    def __init__(self, a: Node, b: Node, op: str, site: str):
        super().__init__(a.num_partitions, [a, b], op, site)

    def compute(self, split: int, rt) -> Iterator:
        a, b = (rt.iterator(p, split) for p in self.deps)
        for pair in itertools.zip_longest(a, b, fillvalue=MISSING):
            if MISSING in pair:
                raise ValueError("Can only zip RDDs with same number of elements in each "
                                 f"partition (partition {split} differs)")
            yield pair

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [(p, split) for p in self.deps]


class CartesianNode(Node):
    """Every pair (a, b): partition (i, j) pairs a's partition i with b's j."""
    kind = "CartesianRDD"

    def __init__(self, a: Node, b: Node, op: str, site: str):
        super().__init__(a.num_partitions * b.num_partitions, [a, b], op, site)

    def compute(self, split: int, rt) -> Iterator:
        a, b = self.deps
        i, j = divmod(split, b.num_partitions)
        right = list(rt.iterator(b, j))
        for x in rt.iterator(a, i):
            for y in right:
                yield x, y

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        a, b = self.deps
        i, j = divmod(split, b.num_partitions)
        return [(a, i), (b, j)]


class CombineNode(Node):
    """combineByKey over a dataset already partitioned by the partitioner it
    asks for: each partition is combined where it is, with no shuffle."""
    kind = "PythonRDD"

    def __init__(self, parent: Node, aggregator: Aggregator, op: str, site: str):
        super().__init__(parent.num_partitions, [parent], op, site, parent.partitioner)
        self.aggregator = aggregator

    def compute(self, split: int, rt) -> Iterator:
        from stackyard.dataset.exchange import combine_in_place
        return combine_in_place(rt.iterator(self.deps[0], split), self.aggregator, rt)

    def narrow(self, split: int) -> list[tuple[Node, int]]:
        return [(self.deps[0], split)]


# -- wide ------------------------------------------------------------------------------


class ShuffledNode(Node):
    kind = "ShuffledRDD"

    def __init__(self, dep: ShuffleDep, op: str, site: str):
        super().__init__(dep.partitioner.numPartitions, [dep], op, site,
                         None if dep.place else dep.partitioner)

    def compute(self, split: int, rt) -> Iterator:
        from stackyard.dataset.exchange import read_shuffle
        return read_shuffle(self.deps[0], rt.shuffle_input(self.deps[0], split))

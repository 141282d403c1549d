"""Key-value transformations of RDDs of (key, value) pairs, as PySpark's:
every per-key aggregation is combineByKey, joins are cogroup, and a dataset
already partitioned by the partitioner asked for is combined in place,
without a shuffle (so joining co-partitioned datasets moves no data)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import reduce

from stackyard.dataset import lineage
from stackyard.dataset.partitioner import Partitioner, RangePartitioner, portable_hash


class PairFunctions:
    def combineByKey(self, createCombiner: Callable, mergeValue: Callable,  # noqa: N802,N803
                     mergeCombiners: Callable, numPartitions: int | None = None,  # noqa: N803
                     partitionFunc=portable_hash):  # noqa: N803
        n = numPartitions or self._reduce_partitions()
        part = Partitioner(n, partitionFunc)
        agg = lineage.Aggregator(createCombiner, mergeValue, mergeCombiners)
        if self.partitioner == part:        # already partitioned so: combine in place
            return self._derive(lineage.CombineNode(self._node, agg, "combineByKey",
                                                    self.ctx._site()))
        site = self.ctx._site()
        dep = lineage.ShuffleDep(self._node, part, "aggregate", agg, op="combineByKey",
                                 site=site)
        self.ctx._register_shuffle(dep)
        return self._derive(lineage.ShuffledNode(dep, "combineByKey", site))

    def reduceByKey(self, func: Callable, numPartitions: int | None = None,  # noqa: N802,N803
                    partitionFunc=portable_hash):  # noqa: N803
        return self.combineByKey(_identity, func, func, numPartitions, partitionFunc)

    def foldByKey(self, zeroValue, func: Callable, numPartitions: int | None = None,  # noqa: N802,N803
                  partitionFunc=portable_hash):  # noqa: N803
        return self.combineByKey(lambda v: func(copy.deepcopy(zeroValue), v), func, func,
                                 numPartitions, partitionFunc)

    def aggregateByKey(self, zeroValue, seqFunc: Callable, combFunc: Callable,  # noqa: N802,N803
                       numPartitions: int | None = None, partitionFunc=portable_hash):  # noqa: N803
        return self.combineByKey(lambda v: seqFunc(copy.deepcopy(zeroValue), v), seqFunc,
                                 combFunc, numPartitions, partitionFunc)

    def groupByKey(self, numPartitions: int | None = None, partitionFunc=None):  # noqa: N802,N803
        return self.combineByKey(_single, _append, _extend, numPartitions,
                                 partitionFunc or portable_hash)

    def sortByKey(self, ascending: bool = True, numPartitions: int | None = None,  # noqa: N802,N803
                  keyfunc: Callable = lambda x: x):
        """Sorted by key over all partitions: partition i's keys all come
        before partition i+1's. Samples the keys first (a job) to choose the
        range of each partition, as PySpark does."""
        n = numPartitions or self._reduce_partitions()

        def sort_partition(it):
            return iter(sorted(it, key=lambda kv: keyfunc(kv[0]), reverse=not ascending))

        if n == 1:
            one = self.coalesce(1) if self.getNumPartitions() > 1 else self
            return one.mapPartitions(sort_partition, True)
        size = self.count()
        if not size:
            return self
        fraction = min(n * 20.0 / size, 1.0)
        samples = sorted(self.sample(False, fraction, 1).map(lambda kv: keyfunc(kv[0])).collect())
        bounds = [samples[int(len(samples) * (i + 1) / n)] for i in range(n - 1)] if samples else []
        part = RangePartitioner(bounds, ascending, keyfunc)
        site = self.ctx._site()
        dep = lineage.ShuffleDep(self._node, part, "sort", op="sortByKey", site=site)
        self.ctx._register_shuffle(dep)
        return self._derive(lineage.ShuffledNode(dep, "sortByKey", site))

    # -- joins ----------------------------------------------------------------------------

    def cogroup(self, other, numPartitions: int | None = None):  # noqa: N803
        """(key, (values in self, values in other)) for every key of either."""
        return _cogroup([self, other], numPartitions)

    def groupWith(self, other, *others):  # noqa: N802
        return _cogroup([self, other, *others], None)

    def join(self, other, numPartitions: int | None = None):  # noqa: N803
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in vw[0] for w in vw[1]])

    def leftOuterJoin(self, other, numPartitions: int | None = None):  # noqa: N802,N803
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in vw[0] for w in (vw[1] or [None])])

    def rightOuterJoin(self, other, numPartitions: int | None = None):  # noqa: N802,N803
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for w in vw[1] for v in (vw[0] or [None])])

    def fullOuterJoin(self, other, numPartitions: int | None = None):  # noqa: N802,N803
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in (vw[0] or [None]) for w in (vw[1] or [None])])

    def subtractByKey(self, other, numPartitions: int | None = None):  # noqa: N802,N803
        return (self.cogroup(other, numPartitions)
                .filter(lambda kv: kv[1][0] and not kv[1][1])
                .flatMapValues(lambda vw: vw[0]))


def _cogroup(rdds: list, numPartitions: int | None):  # noqa: N803
    """Tag each dataset's values with its place, union them (aligned, when they
    share a partitioner) and combine per key into one list per dataset."""
    width = len(rdds)
    tagged = [r.mapValues(lambda v, i=i: (i, v)) for i, r in enumerate(rdds)]
    union = reduce(lambda a, b: a.union(b), tagged)

    def create(iv):
        bufs = [[] for _ in range(width)]
        bufs[iv[0]].append(iv[1])
        return bufs

    def merge_value(bufs, iv):
        bufs[iv[0]].append(iv[1])
        return bufs

    def merge_combiners(a, b):
        for x, y in zip(a, b, strict=True):
            x.extend(y)
        return a

    grouped = union.combineByKey(create, merge_value, merge_combiners, numPartitions)
    return grouped.mapValues(tuple)


def _identity(x):
    return x


def _single(v) -> list:
    return [v]


def _append(c: list, v) -> list:
    c.append(v)
    return c


def _extend(a: list, b: list) -> list:
    a.extend(b)
    return a

"""RDD actions: each runs a job on the engine and brings a value back to
the driver (or writes files to the DFS), as PySpark's do. A function runs on
each partition in the tasks; the driver combines what they return."""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
import math
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable

from stackyard.dataset.stats import StatCounter


class Actions:
    def _run(self, func: Callable, partitions: list[int] | None = None, op: str = "") -> list:
        """FUNC(iterator) of each partition (all, or PARTITIONS), in order."""
        return self.ctx._run_job(self._node, lambda _split, it, _rt: func(it), partitions,
                                 op or "action")

    def collect(self) -> list:
        return list(itertools.chain.from_iterable(self._run(list, op="collect")))

    def count(self) -> int:
        return sum(self._run(lambda it: sum(1 for _ in it), op="count"))

    def first(self):
        got = self.take(1)
        if not got:
            raise ValueError("RDD is empty")
        return got[0]

    def take(self, num: int) -> list:
        """The first NUM elements: one partition first, then more partitions
        at a time (up to four times as many as already scanned), as PySpark."""
        items: list = []
        total = self.getNumPartitions()
        scanned = 0
        while len(items) < num and scanned < total:
            tries = 1
            if scanned:
                if not items:
                    tries = scanned * 4
                else:
                    tries = max(int(1.5 * num * scanned / len(items)) - scanned, 1)
                    tries = min(tries, scanned * 4)
            left = num - len(items)
            parts = list(range(scanned, min(scanned + tries, total)))
            for got in self._run(lambda it, left=left: list(itertools.islice(it, left)), parts, "take"):
                items.extend(got)
            scanned += len(parts)
        return items[:num]

    def takeOrdered(self, num: int, key: Callable | None = None) -> list:  # noqa: N802
        parts = self._run(lambda it: heapq.nsmallest(num, it, key=key), op="takeOrdered")
        return heapq.nsmallest(num, itertools.chain.from_iterable(parts), key=key)

    def top(self, num: int, key: Callable | None = None) -> list:
        parts = self._run(lambda it: heapq.nlargest(num, it, key=key), op="top")
        return heapq.nlargest(num, itertools.chain.from_iterable(parts), key=key)

    def reduce(self, f: Callable):
        def part(it):
            first = next(it, _EMPTY)
            return [] if first is _EMPTY else [_fold(it, first, f)]
        vals = list(itertools.chain.from_iterable(self._run(part, op="reduce")))
        if not vals:
            raise ValueError("Can not reduce() empty RDD")
        return _fold(iter(vals[1:]), vals[0], f)

    def fold(self, zeroValue, op: Callable):  # noqa: N803
        vals = self._run(lambda it: _fold(it, copy.deepcopy(zeroValue), op), op="fold")
        return _fold(iter(vals), zeroValue, op)

    def aggregate(self, zeroValue, seqOp: Callable, combOp: Callable):  # noqa: N803
        vals = self._run(lambda it: _fold(it, copy.deepcopy(zeroValue), seqOp), op="aggregate")
        return _fold(iter(vals), zeroValue, combOp)

    def foreach(self, f: Callable) -> None:
        def each(it):
            for x in it:
                f(x)
            return None
        self._run(each, op="foreach")

    def foreachPartition(self, f: Callable) -> None:  # noqa: N802
        self._run(lambda it: f(it) and None, op="foreachPartition")

    def countByValue(self) -> dict:  # noqa: N802
        counts: defaultdict = defaultdict(int)
        for part in self._run(lambda it: Counter(it), op="countByValue"):
            for k, v in part.items():
                counts[k] += v
        return counts

    def countByKey(self) -> dict:  # noqa: N802
        return self.map(lambda kv: kv[0]).countByValue()

    def collectAsMap(self) -> dict:  # noqa: N802
        return dict(self.collect())

    def lookup(self, key) -> list:
        """The values for KEY: only its partition is read when the dataset
        has a partitioner."""
        values = self.filter(lambda kv: kv[0] == key).values()
        if self.partitioner is not None:
            return values._run(list, [self.partitioner(key)], "lookup")[0]
        return values.collect()

    def sum(self):
        return sum(self._run(lambda it: sum(it), op="sum"))

    def max(self, key: Callable | None = None):
        return self.reduce(lambda a, b: max(a, b, key=key) if key else max(a, b))

    def min(self, key: Callable | None = None):
        return self.reduce(lambda a, b: min(a, b, key=key) if key else min(a, b))

    def stats(self) -> StatCounter:
        parts = self._run(lambda it: StatCounter(it), op="stats")
        return _fold(iter(parts), StatCounter(), StatCounter.mergeStats)

    def mean(self) -> float:
        return self.stats().mean()

    def variance(self) -> float:
        return self.stats().variance()

    def stdev(self) -> float:
        return self.stats().stdev()

    def sampleStdev(self) -> float:  # noqa: N802
        return self.stats().sampleStdev()

    def sampleVariance(self) -> float:  # noqa: N802
        return self.stats().sampleVariance()

    def treeReduce(self, f: Callable, depth: int = 2):  # noqa: N802
        """reduce(f): the partitions' values are few enough here to combine on
        the driver, so no intermediate level is needed."""
        if depth < 1:
            raise ValueError(f"depth: must be >= 1, got {depth}")
        return self.reduce(f)

    def treeAggregate(self, zeroValue, seqOp: Callable, combOp: Callable,  # noqa: N802,N803
                      depth: int = 2):
        if depth < 1:
            raise ValueError(f"depth: must be >= 1, got {depth}")
        return self.aggregate(zeroValue, seqOp, combOp)

    def reduceByKeyLocally(self, func: Callable) -> dict:  # noqa: N802
        """reduceByKey, merged on the driver into a dict (no shuffle)."""
        def part(it):
            d: dict = {}
            for k, v in it:
                d[k] = func(d[k], v) if k in d else v
            return d
        out: dict = {}
        for d in self._run(part, op="reduceByKeyLocally"):
            for k, v in d.items():
                out[k] = func(out[k], v) if k in out else v
        return out

    def takeSample(self, withReplacement: bool, num: int, seed: int | None = None) -> list:  # noqa: N802,N803
        """NUM elements drawn at random: a count, then samples with a fraction
        big enough that one pass almost always gives NUM (another otherwise)."""
        if num < 0:
            raise ValueError("Sample size cannot be negative.")
        if num > MAX_SAMPLE:
            raise ValueError(f"Sample size cannot be greater than {MAX_SAMPLE}.")
        total = self.count() if num and self.getNumPartitions() else 0
        if not total:
            return []
        rng = random.Random(seed)
        if not withReplacement and num >= total:
            everything = self.collect()
            rng.shuffle(everything)
            return everything
        fraction = _sample_fraction(num, total, withReplacement)
        picked = self.sample(withReplacement, fraction, rng.randrange(1 << 30)).collect()
        while len(picked) < num:
            picked = self.sample(withReplacement, fraction, rng.randrange(1 << 30)).collect()
        rng.shuffle(picked)
        return picked[:num]

    def histogram(self, buckets) -> tuple:
        """(bucket edges, counts): BUCKETS edges, or that many even buckets
        between the minimum and the maximum. Buckets are [a, b) but the last
        is [a, b]; None, NaN and values outside are left out."""
        values = self.filter(_comparable)
        if isinstance(buckets, bool) or not isinstance(buckets, int | list | tuple):
            raise TypeError("buckets should be a list or tuple or number(int or long)")
        if isinstance(buckets, int):
            if buckets < 1:
                raise ValueError("number of buckets must be >= 1")
            try:
                lo, hi = values.map(lambda x: (x, x)).reduce(
                    lambda a, b: (min(a[0], b[0]), max(a[1], b[1])))
            except ValueError:
                raise ValueError("can not generate buckets from empty RDD") from None
            if lo == hi or buckets == 1:
                return [lo, hi], [values.count()]
            span = hi - lo
            step = span // buckets if isinstance(span, int) and not span % buckets \
                else span / buckets
            if math.isinf(step):
                raise ValueError("Can not generate buckets with infinite value")
            edges = [lo + i * step for i in range(buckets)] + [hi]
        else:
            edges = buckets
            if len(edges) < 2:
                raise ValueError("buckets should have more than one value")
            if any(not _comparable(e) for e in edges):
                raise ValueError("can not have None or NaN in buckets")
            if list(edges) != sorted(edges) or len(set(edges)) != len(edges):
                raise ValueError("buckets should be sorted and without duplicates")
        bounds = list(edges)
        last = len(bounds) - 2

        def count(it):
            counts = [0] * (last + 1)
            for x in it:
                if bounds[0] <= x <= bounds[-1]:
                    counts[min(bisect.bisect_right(bounds, x) - 1, last)] += 1
            return counts

        totals = [0] * (last + 1)
        for part in values._run(count, op="histogram"):
            totals = [a + b for a, b in zip(totals, part, strict=True)]
        return edges, totals

    def isEmpty(self) -> bool:  # noqa: N802
        return self.getNumPartitions() == 0 or not self.take(1)

    def saveAsTextFile(self, path: str, compressionCodecClass: str | None = None) -> None:  # noqa: N802,N803
        """One `part-NNNNN` per partition (str of each element, a line each)
        and `_SUCCESS`, committed as Hadoop's output committer does. With
        "org.apache.hadoop.io.compress.GzipCodec" (or "gzip"), part-NNNNN.gz."""
        codec = compressionCodecClass
        if codec is not None and codec not in GZIP:
            raise ValueError(f"compressionCodecClass: only gzip is supported, got {codec!r}")
        self.ctx._save(self._node, path, "text.gz" if codec else "text")

    def saveAsPickleFile(self, path: str, batchSize: int = 10) -> None:  # noqa: N802,N803
        """Partitions as framed pickled batches, which sc.pickleFile reads."""
        self.ctx._save(self._node, path, "pickle")

    def saveToTable(self, name: str, batch: int = 1000) -> None:  # noqa: N802
        """Put (row key, {b"family:qualifier": value}) elements into the table
        store's table NAME (it must exist), a tablet's batch at a time. Every
        put of the job has one timestamp, so a task run again writes the same
        cells; values that are not bytes are stored as UTF-8 text."""
        self.ctx._save_table(self._node, name, batch)


_EMPTY = object()
MAX_SAMPLE = sys.maxsize - int(10 * math.sqrt(sys.maxsize))


def _comparable(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _sample_fraction(num: int, total: int, with_replacement: bool) -> float:
    """A sampling fraction that yields at least NUM of TOTAL elements with high
    probability: the expected share plus a margin of a few standard deviations
    of the Poisson (with replacement) or binomial (without) count."""
    share = num / total
    if with_replacement:
        return share + (9 if num < 12 else 5) * math.sqrt(share / total)
    gamma = -math.log(5e-5) / total
    return min(1.0, share + gamma + math.sqrt(gamma * gamma + 2 * gamma * share))
GZIP = ("org.apache.hadoop.io.compress.GzipCodec", "gzip")


def _fold(it, acc, f: Callable):
    for x in it:
        acc = f(acc, x)
    return acc




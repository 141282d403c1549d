"""Which partition a key goes to. `portable_hash` is the same in every
process (Python's str hash is not), and equals the key for ints >= 0, as
PySpark's does, so small examples partition as PySpark documents."""

from __future__ import annotations

from bisect import bisect_left
from zlib import crc32

from stackyard.compute.partition import stable_hash

MASK = 0x7FFFFFFFFFFFFFFF


def portable_hash(key) -> int:
    t = type(key)
    if t is str:
        return crc32(key.encode("utf-8", "surrogatepass"))
    if t is int:
        return key & MASK
    return stable_hash(key) & MASK


class Partitioner:
    """numPartitions and partitionFunc, as PySpark's: two are equal when both
    are, and then a dataset partitioned by one needs no shuffle for the other."""

    def __init__(self, numPartitions: int, partitionFunc=portable_hash):  # noqa: N803
        self.numPartitions, self.partitionFunc = numPartitions, partitionFunc

    def __eq__(self, other) -> bool:
        return (isinstance(other, Partitioner) and type(other) is type(self)
                and self.numPartitions == other.numPartitions
                and self.partitionFunc == other.partitionFunc)

    def __hash__(self) -> int:
        return hash((self.numPartitions, id(self.partitionFunc)))

    def __call__(self, key) -> int:
        return self.partitionFunc(key) % self.numPartitions


class RangePartitioner(Partitioner):
    """sortByKey's: partition i holds the keys between bounds i-1 and i
    (sampled from the data), in the order asked for."""

    def __init__(self, bounds: list, ascending: bool, keyfunc):
        super().__init__(len(bounds) + 1, None)
        self.bounds, self.ascending, self.keyfunc = bounds, ascending, keyfunc

    def __eq__(self, other) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __call__(self, key) -> int:
        return self.by_sort_key(self.keyfunc(key))

    def by_sort_key(self, sort_key) -> int:
        p = bisect_left(self.bounds, sort_key)
        return p if self.ascending else self.numPartitions - 1 - p

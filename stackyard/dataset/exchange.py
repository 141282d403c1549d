"""Datasets over the engine's sort-based shuffle.

The shuffle sorts each map output by a record key and merges sorted runs on
the reduce side; datasets choose that key by mode:

- "aggregate" (reduceByKey, groupByKey, combineByKey...): the key's portable
  hash. The map side first combines values per key in a dict (flushed when
  it grows past a bound, so memory stays bounded); the reduce side reads the
  merged stream one hash at a time and merges combiners of equal keys, so it
  holds one group at a time and keys need only be hashable, as in Spark.
- "order" (partitionBy, repartition): the map task's number and the
  record's position, so a partition reads map 0's records, then map 1's...
- "sort" (sortByKey): the sort key itself, so the merge yields sorted data.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator

from stackyard.compute.shuffle import MapOutputBuffer, merge_segments
from stackyard.dataset.lineage import MISSING, Aggregator, ShuffleDep
from stackyard.dataset.partitioner import portable_hash

COMBINE_KEYS = 200_000           # keys a map-side dict holds before it is flushed
CHECK_EVERY = 8192               # records between two memory checks
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def combined(records: Iterable[tuple], agg: Aggregator, memory: int
             ) -> Iterator[tuple[dict, bool]]:
    """RECORDS' (key, value) pairs combined per key, a dict at a time: a dict is
    handed out (with False) when it holds too many keys or the task's memory
    passes MEMORY, and the last one with True. A key may be in several dicts."""
    create, merge = agg.create, agg.merge_value
    d: dict = {}
    get = d.get
    n = 0
    for k, v in records:
        c = get(k, MISSING)
        d[k] = create(v) if c is MISSING else merge(c, v)
        n += 1
        if not n & (CHECK_EVERY - 1) and (len(d) > COMBINE_KEYS or resident_bytes() > memory):
            yield d, False
            d = {}
            get = d.get
    yield d, True


def combine_in_place(records: Iterable[tuple], agg: Aggregator, rt) -> Iterator[tuple]:
    """Every key's combiner, for a partition that holds all of its keys' records.
    While one dict holds them, that is the answer; when it has to be flushed,
    the pieces go through a one-partition map-output buffer (sorted runs on
    the task's disk, by key hash) and are merged back a hash at a time, so
    memory stays bounded as in a shuffle."""
    pieces = combined(records, agg, rt.program.memory)
    first, last = next(pieces)
    if last:
        return iter(first.items())
    rt.counters["combine_spills"] = rt.counters.get("combine_spills", 0) + 1
    buf = MapOutputBuffer(rt.ctx.dir / f"combine-{id(agg)}", 1, None, rt.program.sort_buffer,
                          None, rt.counters)
    buf.extend_partitioned((0, portable_hash(k), (k, c))
                           for d, _ in itertools.chain([(first, last)], pieces)
                           for k, c in d.items())
    data, _index = buf.close()
    return _merge_by_key(merge_segments([data]), agg.merge_combiners)


def shuffle_items(dep: ShuffleDep, records: Iterable, split: int, memory: int) -> Iterator[tuple]:
    """(partition, shuffle key, value) for what map task SPLIT writes."""
    part = dep.partitioner
    n = part.numPartitions
    if dep.mode == "aggregate":
        func = part.partitionFunc
        default = func is portable_hash
        for d, _ in combined(records, dep.aggregator, memory):
            for k, c in d.items():
                h = portable_hash(k)
                yield (h % n if default else func(k) % n), h, (k, c)
    elif dep.mode == "order":
        base = split << 40
        place = dep.place
        if place is None:
            for i, (k, v) in enumerate(records):
                yield part(k), base + i, (k, v)
        else:
            for i, r in enumerate(records):
                yield place(split, i, r) % n, base + i, r
    elif dep.mode == "sort":
        keyfunc = part.keyfunc
        for k, v in records:
            sk = keyfunc(k)
            yield part.by_sort_key(sk), sk, (k, v)
    else:
        raise ValueError(f"unknown shuffle mode {dep.mode!r}")


def read_shuffle(dep: ShuffleDep, stream: Iterable[tuple]) -> Iterator:
    """A reduce partition's records from the merged, sorted shuffle STREAM."""
    if dep.mode == "aggregate":
        return _merge_by_key(stream, dep.aggregator.merge_combiners)
    if dep.mode == "order":
        return (r for _, r in stream)
    records = (r for _, r in stream)
    if dep.partitioner.ascending:
        return records
    out = list(records)
    out.reverse()
    return iter(out)


def _merge_by_key(stream: Iterable[tuple], merge) -> Iterator[tuple]:
    current = MISSING
    d: dict = {}
    for h, (k, c) in stream:
        if h != current:
            if d:
                yield from d.items()
                d = {}
            current = h
        old = d.get(k, MISSING)
        d[k] = c if old is MISSING else merge(old, c)
    yield from d.items()

"""The sort-based shuffle (Hadoop's): the map side and the reduce side.

Map side: each (key, value) goes to its partition's bucket in memory. When
the estimated size of what is held passes the sort buffer's limit, every
bucket is sorted by key, run through the combiner, and spilled to one run
file (per-partition segments plus an index). At the end the runs are merged
per partition into one output file, `out.data`, and `out.index`: the R + 1
offsets where each partition's segment starts and the last ends (8-byte
little-endian integers, Spark's index file), so that a reader finds a
segment with one small read. The worker serves segments to reducers, and a
reducer on the same worker reads them from disk itself (fetch.py).

Reduce side: the segment of its partition is fetched from every map output,
the sorted runs are merged lazily (heapq.merge holds one frame per run), and
records are grouped by key for the reducer. Memory stays bounded whatever
the input size: a frame per run, a buffer per map task.
"""

from __future__ import annotations

import heapq
import io
import itertools
import os
import pickle
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from zlib import crc32

from stackyard.compute.partition import stable_hash
from stackyard.compute.records import read_records, write_batches

KEY = itemgetter(0)
SAMPLE_EVERY = 64      # records between two size samples (a power of two)
SMALL_SLICE = 256 << 10  # a file slice up to this is read whole, not streamed
OVERHEAD = 120         # bytes of Python objects around a pickled (key, value)

# A combiner takes one partition's records sorted by key and returns fewer of
# them (also sorted): per-key functions are grouped into one by the caller, and
# a streaming combiner is one process per spill, not one per key.
Combiner = Callable[[Iterator[tuple]], Iterable[tuple]]


def group_sorted(records: Iterable[tuple]) -> Iterator[tuple[object, Iterator]]:
    for key, group in itertools.groupby(records, key=KEY):
        yield key, (v for _, v in group)


def combine(records: Iterable[tuple], combiner: Combiner | None, counters: dict) -> Iterator[tuple]:
    if combiner is None:
        return iter(records)
    return counted(combiner(counted(records, counters, "combine_input_records")), counters,
                   "combine_output_records")


def counted(records: Iterable, counters: dict, name: str) -> Iterator:
    """RECORDS as they are, adding how many went by to COUNTERS[NAME] (also
    when the consumer stops early)."""
    n = 0
    try:
        for r in records:
            n += 1
            yield r
    finally:
        counters[name] = counters.get(name, 0) + n


class MapOutputBuffer:
    def __init__(self, directory: Path, partitions: int, partitioner: Callable[[object, int], int],
                 limit: int, combiner: Combiner | None, counters: dict):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.partitions, self.partitioner = partitions, partitioner
        self.limit, self.combiner, self.counters = limit, combiner, counters
        self.buckets: list[list] = [[] for _ in range(partitions)]
        self.held = 0
        self.avg = 64.0
        self.runs: list[tuple[Path, list[tuple[int, int]]]] = []

    def add(self, key, value) -> None:
        self.extend(((key, value),))

    def extend(self, pairs: Iterable[tuple]) -> int:
        """add() for a whole stream, with the loop's lookups hoisted; a None
        partitioner is the default hash (inlined for str keys). Returns the
        number of records."""
        n, held, parts = 0, self.held, self.partitions
        part, buckets = self.partitioner, self.buckets
        for key, value in pairs:
            if parts == 1:
                p = 0
            elif part is None:
                p = (crc32(key.encode("utf-8", "surrogatepass")) if type(key) is str
                     else stable_hash(key)) % parts
            else:
                p = part(key, parts)
                if not 0 <= p < parts:
                    raise ValueError(f"partitioner returned {p} for key {key!r}: must be in "
                                     f"0..{parts - 1}")
            buckets[p].append((key, value))
            n += 1
            held += 1
            if not held & (SAMPLE_EVERY - 1) and self._full(key, value, held):
                held, buckets = 0, self.buckets
        self.held = held
        return n

    def extend_partitioned(self, items: Iterable[tuple]) -> int:
        """extend() for (partition, key, value) triples whose partition the
        caller chose. Returns the number of records. A loop of its own rather
        than extend() behind a generator: this is the map side's hot path, and
        the generator cost 20% of the buffer's time."""
        n, held, parts, buckets = 0, self.held, self.partitions, self.buckets
        for p, key, value in items:
            if not 0 <= p < parts:
                raise ValueError(f"partition {p} for key {key!r}: must be in 0..{parts - 1}")
            buckets[p].append((key, value))
            n += 1
            held += 1
            if not held & (SAMPLE_EVERY - 1) and self._full(key, value, held):
                held, buckets = 0, self.buckets
        self.held = held
        return n

    def _full(self, key, value, held: int) -> bool:
        """Every SAMPLE_EVERY records: fold this record's size into the average
        and spill if the HELD records pass the limit (True: it spilled)."""
        self.avg = 0.9 * self.avg + 0.1 * (len(pickle.dumps((key, value), 5)) + OVERHEAD)
        if held * self.avg <= self.limit:
            return False
        self.held = held
        self.spill()
        return True

    def spill(self) -> None:
        if not self.held:
            return
        path = self.dir / f"spill{len(self.runs)}.data"
        self.runs.append((path, self._write(path, (sorted(b, key=KEY) if b else b
                                                   for b in self.buckets), self.combiner)))
        self.buckets = [[] for _ in range(self.partitions)]
        self.held = 0

    def _write(self, path: Path, per_partition: Iterable[Iterable[tuple]],
               combiner: Combiner | None) -> list[tuple[int, int]]:
        index = []
        at = 0
        with open(path, "wb", buffering=1 << 20) as out:
            for records in per_partition:
                if type(records) is list and not records:
                    index.append((at, 0))     # most partitions of a wide shuffle: cheaply
                    continue
                n = write_batches(out, counted(combine(records, combiner, self.counters),
                                               self.counters, "spilled_records"))
                index.append((at, n))
                at += n
        return index

    def close(self) -> tuple[Path, list[tuple[int, int]]]:
        """Merge everything into `out.data`; write `out.index`; return both."""
        final = self.dir / "out.data"
        if not self.runs:
            index = self._write(final, (sorted(b, key=KEY) if b else b for b in self.buckets),
                                self.combiner)
        else:
            self.spill()
            files = [open(p, "rb") for p, _ in self.runs]
            try:
                def merged(p: int) -> Iterator[tuple]:
                    streams = []
                    for f, (_, idx) in zip(files, self.runs, strict=True):
                        f.seek(idx[p][0])
                        streams.append(read_records(f, idx[p][1]))
                    return heapq.merge(*streams, key=KEY)
                # each run's reader must be drained before the next partition seeks it,
                # which the sequential partition loop guarantees
                index = self._write(final, (merged(p) for p in range(self.partitions)),
                                    self.combiner if len(self.runs) >= 3 else None)
            finally:
                for f in files:
                    f.close()
            for p, _ in self.runs:
                os.unlink(p)
        self.buckets = []
        write_index(self.dir / "out.index", index)
        return final, index


def write_index(path: Path, index: list[tuple[int, int]]) -> None:
    offsets = array("Q", [0])
    for start, length in index:
        offsets.append(start + length)
    if offsets.itemsize != 8:
        raise RuntimeError("this platform has no 8-byte unsigned array items")
    if sys.byteorder != "little":
        offsets.byteswap()
    path.write_bytes(offsets.tobytes())


def read_offsets(f, first: int, count: int) -> list[int]:
    """Offsets FIRST .. FIRST+COUNT of an open index file (COUNT + 1 of them
    bound COUNT segments)."""
    raw = os.pread(f.fileno(), 8 * (count + 1), 8 * first)
    if len(raw) != 8 * (count + 1):
        raise ValueError(f"partitions {first}..{first + count - 1}: beyond the map output's "
                         f"{os.fstat(f.fileno()).st_size // 8 - 1} partitions")
    offsets = array("Q")
    offsets.frombytes(raw)
    if sys.byteorder != "little":
        offsets.byteswap()
    return offsets.tolist()


def empty_bitmap(index: list[tuple[int, int]]) -> bytes:
    """Bit p set: partition p of this map output is empty (never fetched)."""
    bits = bytearray((len(index) + 7) // 8)
    for p, (_, length) in enumerate(index):
        if not length:
            bits[p >> 3] |= 1 << (p & 7)
    return bytes(bits)


def merge_segments(sources: list) -> Iterator[tuple]:
    """The records of sorted segments, merged lazily into one sorted stream. A
    source is bytes, or (path, offset, length) of a file's slice."""
    files, streams = [], []
    try:
        for s in sources:
            if isinstance(s, (bytes, bytearray, memoryview)):
                streams.append(read_records(io.BytesIO(s)))
                continue
            path, offset, length = (s, 0, os.path.getsize(s)) if isinstance(
                s, (str, os.PathLike)) else s
            if length <= SMALL_SLICE:
                with open(path, "rb", buffering=0) as f:
                    streams.append(read_records(io.BytesIO(os.pread(f.fileno(), length, offset))))
                continue
            f = open(path, "rb", buffering=SMALL_SLICE)
            files.append(f)
            f.seek(offset)
            streams.append(read_records(f, length))
        if len(streams) == 1:
            yield from streams[0]
        else:
            yield from heapq.merge(*streams, key=KEY)
    finally:
        for f in files:
            f.close()

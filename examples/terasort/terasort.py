"""TeraSort: sort 100-byte records (10-byte key, 90-byte value) so that the
reducers' outputs, concatenated in order, are one sorted file.

    python examples/terasort/teragen.py 1000000 /tera/in
    yard mr run examples/terasort/terasort.py --input /tera/in --output /tera/out --reducers 2
    python examples/terasort/teragen.py --validate /tera/out

A range partitioner makes the order global: before the job, the driver
samples keys from the input and picks R-1 cut points, so reducer i gets
the keys between cut i-1 and cut i. The map and the reduce work on whole
blocks of records with numpy, not one Python call per record: the map
routes a block's rows to their partitions in one searchsorted, the reduce
sorts its partition's rows in one argsort. (`yard mr run` samples via
`prepare`, which it calls before submitting when the job defines it.)
"""

from __future__ import annotations

import numpy as np

from stackyard.mapreduce import FixedRecordInput, Job, RawOutput

RECORD, KEY = 100, 10


def rows(block: bytes) -> np.ndarray:
    return np.frombuffer(block, dtype=np.uint8).reshape(-1, RECORD)


def keys_of(r: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(r[:, :KEY]).view(f"S{KEY}").ravel()


def records(block) -> np.ndarray:
    """One element per record ("S100"): taking elements moves whole records
    several times faster than fancy-indexing rows of a 2-D byte array."""
    return np.frombuffer(block, dtype=f"S{RECORD}")


def record_keys(recs: np.ndarray) -> np.ndarray:
    return keys_of(recs.view(np.uint8).reshape(-1, RECORD))


class TeraSort(Job):
    reducers = 2
    input_format = FixedRecordInput(RECORD)
    output_format = RawOutput()
    output_replication = 1          # as TeraSort's output
    cuts: np.ndarray | None = None  # R-1 sampled split points
    sample_size = 20_000

    def prepare(self, fs, inputs) -> None:
        """Sample keys from every split (the driver's side) and choose cuts."""
        splits = self.input_format.splits(fs, inputs)
        per = max(1, self.sample_size // max(1, len(splits)))
        sample = []
        for split in splits:
            for _offset, block in self.input_format.read(fs, split, {}):
                k = keys_of(rows(block))
                sample.append(k[:: max(1, len(k) // per)][:per])
                break
        keys = np.sort(np.concatenate(sample)) if sample else np.array([], dtype=f"S{KEY}")
        self.cuts = (keys[[len(keys) * i // self.reducers for i in range(1, self.reducers)]]
                     if len(keys) else np.array([], dtype=f"S{KEY}"))

    def partitioner(self, key, partitions):
        return key                  # the mapper emits the partition number as the key

    def map_records(self, blocks):
        for _offset, block in blocks:
            recs = records(block)
            part = np.searchsorted(self.cuts, record_keys(recs), side="right")
            order = np.argsort(part, kind="stable")
            routed = recs[order]
            bounds = np.searchsorted(part[order], np.arange(self.reducers + 1))
            for p in range(self.reducers):
                if bounds[p] < bounds[p + 1]:
                    yield int(p), routed[bounds[p]:bounds[p + 1]]

    def reduce_sorted(self, pairs, counters):
        blocks = [block for _p, block in pairs]
        counters["reduce_input_groups"] = counters.get("reduce_input_groups", 0) + 1
        if not blocks:
            return
        recs = np.concatenate(blocks)
        recs = recs[np.argsort(record_keys(recs), kind="stable")]
        counters["sorted_records"] = counters.get("sorted_records", 0) + len(recs)
        yield None, memoryview(recs).cast("B")

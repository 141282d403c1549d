"""The MapReduce API: subclass Job, run it.

    class WordCount(Job):
        def mapper(self, offset, line):
            for word in line.split():
                yield word, 1

        def combiner(self, word, counts):
            yield word, sum(counts)

        def reducer(self, word, counts):
            yield word, sum(counts)

    result = WordCount(reducers=2).run("/data/books", "/out/wordcount")
    print(result.counters["reduce_output_records"], result.output)

A job is two stages on the engine: maps over the input splits, reduces over
the R partitions of their sorted output. Everything a class attribute sets
can be passed to the constructor instead. `map_records`, `combine_sorted`
and `reduce_sorted` are the whole-stream forms of the three functions; a
job overrides them to work on many records per Python call (or, as the
streaming job does, to pipe them through a process).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from stackyard.compute.partition import hash_partition
from stackyard.compute.shuffle import group_sorted
from stackyard.mapreduce.formats import InputFormat, OutputFormat, TextInput, TextOutput


@dataclass
class JobResult:
    id: str
    output: str
    counters: dict
    seconds: float
    summary: dict


class Job:
    name: str | None = None
    reducers: int = 1
    input_format: InputFormat = TextInput()
    output_format: OutputFormat = TextOutput()
    max_attempts: int = 4            # per task, as Hadoop's mapreduce.map.maxattempts
    sort_buffer: int = 64 << 20      # map-side sort buffer: spills past this (io.sort.mb)
    speculative: bool = True
    output_replication: int | None = None   # None: the DFS default
    combiner: Callable | None = None        # (key, values) -> pairs; None: no combiner

    def __init__(self, **options):
        for key, value in options.items():
            if key.startswith("_") or not hasattr(type(self), key):
                raise TypeError(f"{type(self).__name__}: unknown option {key!r}")
            setattr(self, key, value)
        if not isinstance(self.reducers, int) or self.reducers < 0:
            raise ValueError(f"reducers: must be 0 or more, got {self.reducers!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be at least 1, got {self.max_attempts}")
        self.ctx = None

    # -- the user's functions ---------------------------------------------------

    def prepare(self, fs, inputs) -> None:
        """Called on the driver before the job is submitted (e.g. to sample the
        input for a range partitioner); what it sets on self ships with the job."""

    def setup(self, ctx) -> None:
        """Called once in each task before any record; `self.ctx` is the task."""
        self.ctx = ctx

    def mapper(self, key, value) -> Iterable[tuple]:
        yield key, value

    def reducer(self, key, values: Iterator) -> Iterable[tuple]:
        for value in values:
            yield key, value

    def partitioner(self, key, partitions: int) -> int:
        return hash_partition(key, partitions)

    def increment(self, counter: str, n: int = 1) -> None:
        """A user counter, summed over the job's successful attempts."""
        if self.ctx is not None:
            self.ctx.incr(counter, n)

    # -- whole-stream forms -------------------------------------------------------

    def map_records(self, records: Iterator[tuple]) -> Iterator[tuple]:
        mapper = self.mapper
        for key, value in records:
            out = mapper(key, value)
            if out is not None:
                yield from out

    def has_combiner(self) -> bool:
        return self.combiner is not None

    def combine_sorted(self, records: Iterator[tuple]) -> Iterator[tuple]:
        combiner = self.combiner
        for key, values in group_sorted(records):
            yield from combiner(key, values)

    def reduce_sorted(self, records: Iterator[tuple], counters: dict) -> Iterator[tuple]:
        reducer, groups = self.reducer, 0
        try:
            for key, values in group_sorted(records):
                groups += 1
                out = reducer(key, values)
                if out is not None:
                    yield from out
        finally:
            counters["reduce_input_groups"] = counters.get("reduce_input_groups", 0) + groups

    # -- the driver ------------------------------------------------------------------

    def run(self, input: str | list[str], output: str, client=None,
            progress: Callable[[dict], None] | None = None) -> JobResult:
        """Run the job on the cluster (sy.connect()'s, or CLIENT's), wait for it,
        and return its counters. Raises JobFailed with the failing task's
        traceback, FileNotFoundError for a missing input, FileExistsError for
        an existing output directory."""
        from stackyard.compute.client import JobFailed
        from stackyard.compute.committer import check_output, finish_output
        from stackyard.compute.payload import pack
        from stackyard.connect import connect
        from stackyard.mapreduce.program import MapReduceProgram

        own = client is None
        client = client or connect()
        try:
            fs = client.fs
            files_out = self.output_format.to_files
            if files_out:
                output = check_output(fs, output)
            else:
                self.output_format.prepare(client, output)
            try:
                splits = self.input_format.plan(client, input)
            except FileNotFoundError as exc:
                raise FileNotFoundError(2, "Input path does not exist",
                                        exc.filename or str(input)) from None
            if not splits:
                raise FileNotFoundError(2, "Input path has no files", str(input))
            self.prepare(fs, input)
            module = sys.modules.get(type(self).__module__)
            payload = pack(MapReduceProgram(self, splits, output, self.reducers),
                           [module] if module is not None
                           and not module.__name__.startswith("stackyard.") else [])
            stages = [{"name": "map", "tasks": len(splits), "partitions": self.reducers,
                       "preferred": [list(s.hosts) for s in splits]}]
            if self.reducers:
                stages.append({"name": "reduce", "tasks": self.reducers, "parents": [0]})
            spec = {"name": self.name or type(self).__name__, "user": fs.user,
                    "groups": fs.groups, "max_attempts": self.max_attempts,
                    "speculative": self.speculative, "stages": stages}
            if files_out:
                fs.mkdir(output)
            started = time.monotonic()
            engine = client.engine
            job_id = engine.submit(spec, payload)
            try:
                summary = engine.wait(job_id, progress)
            except JobFailed:
                if files_out:
                    finish_output(fs, output, succeeded=False)
                raise
            except KeyboardInterrupt:
                engine.kill(job_id)
                raise
            if files_out:
                finish_output(fs, output, succeeded=True)
            return JobResult(job_id, output, summary["counters"], time.monotonic() - started,
                             summary)
        finally:
            if own:
                client.close()


"""Jobs the engine tests run. They live in their own module, as a user's
would; the driver ships it to the workers by value."""

from __future__ import annotations

import time

from stackyard.mapreduce import Job


class WordCount(Job):
    def mapper(self, offset, line):
        for word in line.split():
            yield word, 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


class LineLengths(Job):
    """Map-only: every line's offset and length (checks split boundaries)."""
    reducers = 0

    def mapper(self, offset, line):
        yield offset, len(line)


class Raises(WordCount):
    def mapper(self, offset, line):
        if offset > 1000:
            raise ValueError(f"bad record at offset {offset}")
        yield from super().mapper(offset, line)


class FailsOnce(WordCount):
    """Task 0's first attempt fails; its retry succeeds."""

    def mapper(self, offset, line):
        if self.ctx.task == 0 and self.ctx.number == 0:
            raise RuntimeError("transient failure")
        yield from super().mapper(offset, line)


class SlowWordCount(WordCount):
    """Every map sleeps a little per line, every reduce per key: a job that
    lasts long enough to kill a worker in the middle of a stage."""
    map_delay = 0.0
    reduce_delay = 0.0

    def mapper(self, offset, line):
        time.sleep(self.map_delay)
        yield from super().mapper(offset, line)

    def reducer(self, word, counts):
        time.sleep(self.reduce_delay)
        yield word, sum(counts)


class Straggler(WordCount):
    """The first attempt of map task 1 is very slow (the test-only hook)."""

    def mapper(self, offset, line):
        if self.ctx.task == 1 and self.ctx.number == 0:
            time.sleep(0.5)
        yield from super().mapper(offset, line)

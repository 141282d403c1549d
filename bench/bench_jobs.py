"""Jobs the benchmarks run, written as a user who wants speed would."""

from __future__ import annotations

from collections import Counter

from stackyard.mapreduce import Job, TextBlockInput


class WordCount(Job):
    """In-mapper combining (one Counter per split, fed whole blocks of lines
    with bytes.split), so the map runs at Counter's speed; the reducers sum
    the per-split counts."""
    reducers = 2
    input_format = TextBlockInput()

    def map_records(self, records):
        counts: Counter = Counter()
        for _offset, block in records:
            counts.update(block.split())
        for word, n in counts.items():
            yield word.decode("utf-8", "replace"), n

    def reducer(self, word, counts):
        yield word, sum(counts)

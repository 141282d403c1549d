"""Two jobs chained from one driver script: count the words, then order them
by count. The first job's output (pickled records) is the second's input.

    python examples/chain/top_words.py /data/books /out/top-words

The second job has one reducer and its keys are negated counts, so its one
part file lists the words from the most frequent down.
"""

from __future__ import annotations

import sys

import stackyard as sy
from stackyard.mapreduce import Job, PickleInput, PickleOutput


class CountWords(Job):
    reducers = 2
    output_format = PickleOutput()

    def mapper(self, offset, line):
        for word in line.split():
            yield word.lower(), 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


class ByCount(Job):
    reducers = 1
    input_format = PickleInput()

    def mapper(self, word, count):
        yield -count, word

    def reducer(self, negative, words):
        for word in sorted(words):
            yield word, -negative


def main(source: str, target: str) -> int:
    with sy.connect() as client:
        counted = CountWords().run(source, target + "-counts", client=client)
        ranked = ByCount().run(counted.output, target, client=client)
        print(f"{counted.counters['reduce_output_records']} distinct words; top 10:")
        with client.fs.open(f"{ranked.output}/part-r-00000", "r") as f:
            for _, line in zip(range(10), f, strict=False):
                print(" ", line.rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

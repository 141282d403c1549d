"""Word count with the Python API.

    yard mr run examples/wordcount/wordcount.py --input /data/books --output /out/wc
"""

from stackyard.mapreduce import Job


class WordCount(Job):
    reducers = 2

    def mapper(self, offset, line):
        for word in line.split():
            yield word, 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)

"""An inverted index: for each word, the documents it occurs in, with the
positions (line offsets) where it does.

    yard mr run examples/inverted_index/inverted_index.py --input /docs --output /out/index

Output lines: `word<TAB>doc1:off,off doc2:off`.
"""

import posixpath
import re

from stackyard.mapreduce import Job

WORD = re.compile(r"[a-z0-9']+")


class InvertedIndex(Job):
    reducers = 2

    def mapper(self, offset, line):
        doc = posixpath.basename(self.ctx.split.path)
        for word in set(WORD.findall(line.lower())):
            yield word, (doc, offset)

    def reducer(self, word, postings):
        by_doc = {}
        for doc, offset in postings:
            by_doc.setdefault(doc, []).append(offset)
        yield word, " ".join(f"{doc}:{','.join(map(str, sorted(offs)))}"
                             for doc, offs in sorted(by_doc.items()))

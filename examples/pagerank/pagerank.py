"""PageRank over an edge list, with the damping formula
rank = (1 - d) + d * sum(rank(q) / outdegree(q) for q linking to p), d = 0.85,
as Spark's own example computes it.

The links are partitioned once and persisted; the ranks are derived from them
with mapValues and re-made by reduceByKey with the same partitioner, so each
iteration's join needs no shuffle: only the contributions move. It uses only
PySpark's RDD API (bench/pagerank.py runs it on PySpark too).

    python examples/pagerank/pagerank.py /data/edges.txt --iterations 10

Input: one edge per line, "source destination".
"""

from __future__ import annotations

import argparse
import sys
from operator import add

DAMPING = 0.85


def parse_edge(line: str) -> tuple[str, str]:
    source, destination = line.split()[:2]
    return source, destination


def contributions(neighbors_rank: tuple):
    neighbors, rank = neighbors_rank
    share = rank / len(neighbors)
    for n in neighbors:
        yield n, share


def pagerank(sc, path: str, iterations: int = 10, partitions: int | None = None
             ) -> list[tuple[str, float]]:
    """(page, rank) after ITERATIONS rounds, for every page some page links to
    (as in Spark's example, only pages with links pass their rank on)."""
    n = partitions or sc.defaultParallelism
    links = (sc.textFile(path).map(parse_edge).distinct(n)
             .groupByKey(n).mapValues(list).cache())
    ranks = links.mapValues(lambda _: 1.0)
    for _ in range(iterations):
        contribs = links.join(ranks).values().flatMap(contributions)
        ranks = contribs.reduceByKey(add, n).mapValues(lambda s: (1 - DAMPING) + DAMPING * s)
    result = ranks.collect()
    links.unpersist()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="edge list (DFS path, or file://)")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--top", type=int, default=10, help="print the TOP highest ranks")
    args = ap.parse_args(argv)
    from stackyard.dataset import script

    def body(sc) -> None:
        ranks = pagerank(sc, args.path, args.iterations)
        for page, rank in sorted(ranks, key=lambda pr: -pr[1])[:args.top]:
            print(f"{page}\t{rank:.6f}")

    return script.run("pagerank", body)


if __name__ == "__main__":
    sys.exit(main())

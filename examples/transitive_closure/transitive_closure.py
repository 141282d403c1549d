"""The transitive closure of a random directed graph, computed the way
Spark's transitive-closure example computes it: each round joins the paths
found so far with the graph's edges (stored reversed, so that the join key
is the middle vertex), adds the longer paths, and keeps distinct pairs,
until a round finds nothing new.

Every round's union and distinct() leave twice the partitions they were
given (the default partition count of a shuffle is that of its input, as
in PySpark without spark.default.parallelism), so the later rounds are
shuffles of thousands of tiny partitions: a test of the engine's fan-in,
not of its arithmetic. It uses only PySpark's RDD API (bench/shuffle_scale.py
runs Spark's own example beside it).

    python examples/transitive_closure/transitive_closure.py [partitions]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from random import Random

EDGES, VERTICES, SEED = 200, 100, 42


def random_graph(edges: int = EDGES, vertices: int = VERTICES, seed: int = SEED
                 ) -> set[tuple[int, int]]:
    """EDGES distinct (source, destination) pairs without loops; the same
    draws as Spark's example makes with the same seed."""
    rng = Random(seed)
    out: set[tuple[int, int]] = set()
    while len(out) < edges:
        source, destination = rng.randrange(0, vertices), rng.randrange(0, vertices)
        if source != destination:
            out.add((source, destination))
    return out


def closure(sc, graph: set[tuple[int, int]], partitions: int = 2,
            on_round: Callable[[int, int, int], None] | None = None) -> tuple[int, int]:
    """(edges in the closure, rounds taken); ON_ROUND(round, partitions, edges)
    after each round."""
    paths = sc.parallelize(sorted(graph), partitions).cache()
    reversed_edges = paths.map(lambda edge: (edge[1], edge[0]))
    count, rounds = paths.count(), 0
    while True:
        rounds += 1
        longer = paths.join(reversed_edges).map(lambda kv: (kv[1][1], kv[1][0]))
        paths = paths.union(longer).distinct().cache()
        before, count = count, paths.count()
        if on_round is not None:
            on_round(rounds, paths.getNumPartitions(), count)
        if count == before:
            return count, rounds


def closure_here(graph: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The same closure in one process, to check the distributed one against."""
    out = set(graph)
    by_source: dict[int, set[int]] = {}
    for s, d in graph:
        by_source.setdefault(s, set()).add(d)
    while True:
        more = {(s, d2) for s, d in out for d2 in by_source.get(d, ())} - out
        if not more:
            return out
        out |= more


def main(argv: list[str]) -> int:
    from stackyard.dataset.script import run
    partitions = int(argv[0]) if argv else 2

    def body(sc) -> None:
        count, rounds = closure(sc, random_graph(), partitions,
                                lambda r, p, n: print(f"round {r}: {n} paths in {p} partitions",
                                                      file=sys.stderr))
        print(f"TC has {count} edges (after {rounds} rounds)")

    return run("transitive_closure", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

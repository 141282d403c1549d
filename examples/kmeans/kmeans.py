"""k-means as the Spark seed describes it: load the points and persist them,
take initial centers, broadcast them, find each point's closest center and
average per center, repeat until the centers stop moving.

It uses only PySpark's RDD API, so the same `kmeans()` runs on PySpark
(bench/kmeans.py runs it on both).

    python examples/kmeans/kmeans.py /data/points.txt 10 --iterations 20

Input: a text file of points, one per line, coordinates separated by spaces.
"""

from __future__ import annotations

import argparse
import sys


def parse_point(line: str) -> tuple:
    return tuple(float(x) for x in line.split())


def closest(point: tuple, centers: list) -> int:
    best, index = float("inf"), 0
    for i, center in enumerate(centers):
        d = 0.0
        for a, b in zip(point, center, strict=True):
            d += (a - b) * (a - b)
        if d < best:
            best, index = d, i
    return index


def add_sums(a: tuple, b: tuple) -> tuple:
    """(coordinate sums, count) + (coordinate sums, count)."""
    return tuple(x + y for x, y in zip(a[0], b[0], strict=True)), a[1] + b[1]


def kmeans(sc, path: str, k: int, iterations: int = 100, converge: float = 1e-6,
           partitions: int | None = None, on_iteration=None) -> list[tuple]:
    """The centers, after ITERATIONS rounds or when no center moves more than
    CONVERGE (squared distance). ON_ITERATION(i, centers) is called after each."""
    points = sc.textFile(path, partitions).map(parse_point).cache()     # 1. load and persist
    centers = points.take(k)                                           # 2. initial centers
    if len(centers) < k:
        raise ValueError(f"k: only {len(centers)} points for {k} centers")
    for i in range(iterations):
        shared = sc.broadcast(centers)                                 # 3. broadcast them
        sums = (points.map(lambda p, b=shared: (closest(p, b.value), (p, 1)))  # 4. centroids
                .reduceByKey(add_sums).collectAsMap())
        moved = centers
        centers = [tuple(s / sums[i][1] for s in sums[i][0]) if i in sums else centers[i]
                   for i in range(k)]
        shared.destroy()
        shift = sum(sum((a - b) ** 2 for a, b in zip(c0, c1, strict=True))
                    for c0, c1 in zip(moved, centers, strict=True))
        if on_iteration is not None:
            on_iteration(i, centers)
        if shift <= converge:                                          # 5. converged?
            break
    points.unpersist()
    return centers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="points file (DFS path, or file://)")
    ap.add_argument("k", type=int)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--converge", type=float, default=1e-6)
    args = ap.parse_args(argv)
    from stackyard.dataset import script

    def show(i, centers):
        print(f"iteration {i + 1}", file=sys.stderr)

    def body(sc) -> None:
        for center in kmeans(sc, args.path, args.k, args.iterations, args.converge,
                             on_iteration=show):
            print(" ".join(f"{x:.6f}" for x in center))

    return script.run("kmeans", body)


if __name__ == "__main__":
    sys.exit(main())

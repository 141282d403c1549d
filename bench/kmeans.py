"""k-means, the same program on yard, PySpark and Dask, in one run.

    python bench/kmeans.py [--points 1000000] [--k 10] [--iterations 10] [--skip spark,dask]

Generates POINTS 2-D points around K centers, writes them as text to local
disk (for PySpark and Dask) and to a fresh local cluster's DFS (yard, 2
workers), and times examples/kmeans/kmeans.py's `kmeans()` (persist the
points, broadcast the centers, ITERATIONS rounds) on yard and on PySpark
local[2] (RDD API), and the same algorithm on Dask (a bag, 2 processes).
The centers each returns must agree. Issue 5's target: ahead of PySpark's
RDD API.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rdd_peers import dask_client, example, report, spark_context, yard_context  # noqa: E402
from scratch import timed  # noqa: E402

km = example("kmeans")


def generate(path: Path, n: int, k: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-100, 100, size=(k, 2))
    points = centers[rng.integers(0, k, n)] + rng.normal(0, 5, size=(n, 2))
    np.savetxt(path, points, fmt="%.6f")


def dask_kmeans(path: Path, k: int, iterations: int) -> list[tuple]:
    import dask.bag as db
    with dask_client():
        points = db.read_text(str(path), blocksize=None).map(km.parse_point) \
            .repartition(2).persist()
        centers = points.take(k, npartitions=-1)
        for _ in range(iterations):
            sums = dict(points.foldby(
                lambda p, c=centers: km.closest(p, c),
                lambda acc, p: km.add_sums(acc, (p, 1)), ((0.0, 0.0), 0),
                km.add_sums, ((0.0, 0.0), 0)).compute())
            centers = [tuple(s / sums[i][1] for s in sums[i][0]) if i in sums else centers[i]
                       for i in range(k)]
        return centers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma-separated: spark,dask")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    rows, answers = [], {}

    def run(sc, path):
        return km.kmeans(sc, path, args.k, args.iterations, converge=-1)

    with yard_context() as (sc, root):
        local = root / "points.txt"
        print(f"generating {args.points} points ...", flush=True)
        generate(local, args.points, args.k)
        sc.fs.put(str(local), "/bench/points.txt")
        secs, answers["yard"] = timed(lambda: run(sc, "/bench/points.txt"))
        rows.append(("yard, 2 workers", secs))
        print(f"  yard: {secs:.1f} s", flush=True)
        if "spark" not in skip:
            with spark_context() as spark:
                secs, answers["spark"] = timed(lambda: run(spark, str(local)))
            rows.append(("PySpark local[2], RDD", secs))
            print(f"  PySpark: {secs:.1f} s", flush=True)
        if "dask" not in skip:
            secs, answers["dask"] = timed(lambda: dask_kmeans(local, args.k, args.iterations))
            rows.append(("Dask, 2 processes (bag)", secs))
    for name, centers in answers.items():
        if not np.allclose(centers, answers["yard"], rtol=1e-6, atol=1e-6):
            raise AssertionError(f"{name}'s centers differ from yard's")
    report(f"k-means, {args.points} points, k = {args.k}, {args.iterations} iterations", rows,
           "Target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

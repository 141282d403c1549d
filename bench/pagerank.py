"""PageRank, the same program on yard, PySpark and Dask, in one run.

    python bench/pagerank.py [--nodes 100000] [--edges 1000000] [--iterations 10] [--skip spark,dask]

Generates a graph of NODES pages and EDGES links (sources uniform, targets
power-law), writes it as an edge list to local disk (PySpark, Dask) and to a
fresh local cluster's DFS (yard, 2 workers), and times
examples/pagerank/pagerank.py's `pagerank()` (links partitioned and
persisted, ITERATIONS joins and reduceByKeys) on yard and on PySpark
local[2] (RDD API), and the same iterations on Dask (a bag of links, the
ranks a dict on the driver). Every page's rank must agree. Issue 5's
target: ahead of PySpark's RDD API.
"""

from __future__ import annotations

import argparse
import sys
from operator import add
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rdd_peers import dask_client, example, report, spark_context, yard_context  # noqa: E402
from scratch import timed  # noqa: E402

pr = example("pagerank")


def generate(path: Path, nodes: int, edges: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, nodes, edges)
    dst = (rng.pareto(1.1, edges) * 50).astype(np.int64) % nodes
    with open(path, "w") as f:
        for a, b in zip(src.tolist(), dst.tolist(), strict=True):
            f.write(f"n{a} n{b}\n")


def dask_pagerank(path: Path, iterations: int) -> list[tuple[str, float]]:
    import dask
    import dask.bag as db
    with dask_client():
        links = (db.read_text(str(path), blocksize=None).map(pr.parse_edge).distinct()
                 .groupby(lambda e: e[0]).map(lambda kv: (kv[0], [d for _, d in kv[1]]))
                 .repartition(2).persist())
        ranks = dict(links.map(lambda kv: (kv[0], 1.0)).compute())
        for _ in range(iterations):
            current = dask.delayed(ranks)

            def contribs(kv, ranks):
                source, outs = kv
                if source in ranks:
                    share = ranks[source] / len(outs)
                    return [(d, share) for d in outs]
                return []

            sums = links.map(contribs, current).flatten() \
                .foldby(lambda c: c[0], lambda acc, c: acc + c[1], 0.0, add, 0.0).compute()
            ranks = {p: (1 - pr.DAMPING) + pr.DAMPING * s for p, s in sums}
        return list(ranks.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma-separated: spark,dask")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    rows, answers = [], {}
    with yard_context() as (sc, root):
        local = root / "edges.txt"
        print(f"generating {args.edges} edges over {args.nodes} pages ...", flush=True)
        generate(local, args.nodes, args.edges)
        sc.fs.put(str(local), "/bench/edges.txt")
        secs, answers["yard"] = timed(lambda: pr.pagerank(sc, "/bench/edges.txt", args.iterations))
        rows.append(("yard, 2 workers", secs))
        print(f"  yard: {secs:.1f} s", flush=True)
        if "spark" not in skip:
            with spark_context() as spark:
                secs, answers["spark"] = timed(lambda: pr.pagerank(spark, str(local),
                                                                   args.iterations))
            rows.append(("PySpark local[2], RDD", secs))
            print(f"  PySpark: {secs:.1f} s", flush=True)
        if "dask" not in skip:
            secs, answers["dask"] = timed(lambda: dask_pagerank(local, args.iterations))
            rows.append(("Dask, 2 processes (bag)", secs))
    want = dict(answers["yard"])
    for name, ranks in answers.items():
        got = dict(ranks)
        if got.keys() != want.keys() or not np.allclose([got[p] for p in want],
                                                        list(want.values()), rtol=1e-9):
            raise AssertionError(f"{name}'s ranks differ from yard's")
    report(f"PageRank, {args.nodes} pages, {args.edges} links, {args.iterations} iterations",
           rows, "Target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The dataset examples against single-process computations of the same
algorithms."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "kmeans"))
sys.path.insert(0, str(ROOT / "examples" / "pagerank"))
sys.path.insert(0, str(ROOT / "examples" / "logistic_regression"))

import kmeans as km  # noqa: E402
import logistic_regression as lr  # noqa: E402
import pagerank as pr  # noqa: E402

from tests.dataset.conftest import write  # noqa: E402


def blobs(n: int, k: int, seed: int = 5) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    centers = [(rng.uniform(-50, 50), rng.uniform(-50, 50)) for _ in range(k)]
    return [(cx + rng.gauss(0, 2), cy + rng.gauss(0, 2))
            for cx, cy in (centers[i % k] for i in range(n))]


def kmeans_here(points: list[tuple], k: int, iterations: int) -> list[tuple]:
    centers = points[:k]
    for _ in range(iterations):
        sums: dict[int, tuple] = {}
        for p in points:
            i = km.closest(p, centers)
            sums[i] = km.add_sums(sums[i], (p, 1)) if i in sums else (p, 1)
        centers = [tuple(s / sums[i][1] for s in sums[i][0]) if i in sums else centers[i]
                   for i in range(k)]
    return centers


def test_kmeans_equals_a_single_process_run(sc, cluster):
    points = blobs(20_000, 5)
    write(cluster.fs, "/ex/points.txt", "".join(f"{x!r} {y!r}\n" for x, y in points))
    seen = []
    got = km.kmeans(sc, "/ex/points.txt", 5, iterations=6, converge=-1,
                    on_iteration=lambda i, c: seen.append(i))
    assert seen == list(range(6))
    want = kmeans_here(points, 5, 6)
    assert np.allclose(got, want)


def pagerank_here(edges: list[tuple[str, str]], iterations: int) -> dict[str, float]:
    links: dict[str, set] = {}
    for s, d in edges:
        links.setdefault(s, set()).add(d)
    ranks = {s: 1.0 for s in links}
    for _ in range(iterations):
        contrib: dict[str, float] = {}
        for s, outs in links.items():
            if s in ranks:
                for d in outs:
                    contrib[d] = contrib.get(d, 0.0) + ranks[s] / len(outs)
        ranks = {p: 0.15 + 0.85 * c for p, c in contrib.items()}
    return ranks


def test_pagerank_equals_a_single_process_run(sc, cluster):
    rng = random.Random(9)
    edges = [(f"p{rng.randrange(300)}", f"p{int(rng.paretovariate(1.2)) % 300}")
             for _ in range(3000)]
    write(cluster.fs, "/ex/edges.txt", "".join(f"{s} {d}\n" for s, d in edges))
    got = dict(pr.pagerank(sc, "/ex/edges.txt", iterations=8, partitions=3))
    want = pagerank_here(edges, 8)
    assert got.keys() == want.keys()
    for page, rank in want.items():
        assert got[page] == pytest.approx(rank)


def test_logistic_regression_learns_and_matches_full_batch_descent(sc, cluster):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4000, 3))
    y = (x @ np.array([2.0, -1.0, 0.5]) + rng.normal(scale=0.3, size=4000) > 0).astype(float)
    write(cluster.fs, "/ex/lr.txt", "".join(
        f"{int(label)} " + " ".join(repr(float(v)) for v in row) + "\n"
        for label, row in zip(y, x, strict=True)))
    w = lr.train(sc, "/ex/lr.txt", steps=30, rate=1.0, partitions=3)
    here = np.zeros(3)
    for _ in range(30):
        g, n = lr.gradient((x, y), here)
        here = here - g / n
    assert w == pytest.approx(here)
    assert lr.accuracy(sc, "/ex/lr.txt", w) > 0.9


def test_the_examples_run_as_commands(cluster):
    import os
    import subprocess
    env = {**os.environ, "STACKYARD_HOME": str(cluster.home.root)}
    write(cluster.fs, "/ex/cmd-edges.txt", "a b\nb c\nc a\na c\n")
    done = subprocess.run([sys.executable, str(ROOT / "examples/pagerank/pagerank.py"),
                           "/ex/cmd-edges.txt", "--top", "2"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == ["c", "a"]
    missing = subprocess.run([sys.executable, str(ROOT / "examples/kmeans/kmeans.py"),
                              "/ex/none.txt", "3"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: [Errno 2] Input path does not exist: '/ex/none.txt'"

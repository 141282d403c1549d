"""Logistic regression by data-parallel gradient descent, as the
distributed machine-learning seed describes it: the examples are split into
partitions held by the workers; in each step every partition computes the
gradient of the loss over its own examples, the driver adds them up and
updates the weights, and broadcasts the new weights for the next step.

Each partition is turned into numpy arrays once and persisted, so a step is
a few vectorized operations per partition. PySpark's RDD API only.

    python examples/logistic_regression/logistic_regression.py /data/points.txt

Input: one example per line, "label x1 x2 ... xd", label 0 or 1.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def to_arrays(lines):
    rows = [list(map(float, line.split())) for line in lines if line.strip()]
    if rows:
        data = np.array(rows)
        yield data[:, 1:], data[:, 0]


def gradient(arrays, w):
    """The gradient of the log loss over one partition's examples, and their number."""
    x, y = arrays
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    return x.T @ (p - y), len(y)


def train(sc, path: str, steps: int = 100, rate: float = 1.0, partitions: int | None = None
          ) -> np.ndarray:
    parts = sc.textFile(path, partitions).mapPartitions(to_arrays).cache()
    dims = parts.first()[0].shape[1]
    w = np.zeros(dims)
    for _ in range(steps):
        shared = sc.broadcast(w)
        total, n = parts.map(lambda a, b=shared: gradient(a, b.value)) \
            .reduce(lambda a, b: (a[0] + b[0], a[1] + b[1]))
        w = w - rate * total / n                       # the driver averages and steps
        shared.destroy()
    parts.unpersist()
    return w


def accuracy(sc, path: str, w: np.ndarray) -> float:
    def right(arrays):
        x, y = arrays
        return int(((x @ w > 0) == (y > 0.5)).sum()), len(y)
    hits, n = sc.textFile(path).mapPartitions(to_arrays).map(right) \
        .reduce(lambda a, b: (a[0] + b[0], a[1] + b[1]))
    return hits / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="examples (DFS path, or file://)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rate", type=float, default=1.0)
    args = ap.parse_args(argv)
    from stackyard.dataset import script

    def body(sc) -> None:
        w = train(sc, args.path, args.steps, args.rate)
        print("weights:", " ".join(f"{x:.4f}" for x in w))
        print(f"training accuracy: {accuracy(sc, args.path, w):.3f}")

    return script.run("logistic-regression", body)


if __name__ == "__main__":
    sys.exit(main())

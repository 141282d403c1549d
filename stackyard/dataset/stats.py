"""StatCounter: count, mean, variance, min and max in one pass, mergeable
across partitions (PySpark's, with Welford's update)."""

from __future__ import annotations

import math
from collections.abc import Iterable


class StatCounter:
    def __init__(self, values: Iterable = ()):
        self.n, self.mu, self.m2 = 0, 0.0, 0.0
        self.maxValue, self.minValue = float("-inf"), float("inf")  # noqa: N815
        for v in values:
            self.merge(v)

    def merge(self, value) -> StatCounter:
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.maxValue = max(self.maxValue, value)
        self.minValue = min(self.minValue, value)
        return self

    def mergeStats(self, other: StatCounter) -> StatCounter:  # noqa: N802
        if other is self:
            return self.mergeStats(other.copy())
        if not other.n:
            return self
        if not self.n:
            self.n, self.mu, self.m2 = other.n, other.mu, other.m2
            self.maxValue, self.minValue = other.maxValue, other.minValue
            return self
        delta = other.mu - self.mu
        n = self.n + other.n
        self.mu = (self.mu * self.n + other.mu * other.n) / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n
        self.maxValue = max(self.maxValue, other.maxValue)
        self.minValue = min(self.minValue, other.minValue)
        return self

    def copy(self) -> StatCounter:
        c = StatCounter()
        c.n, c.mu, c.m2, c.maxValue, c.minValue = self.n, self.mu, self.m2, self.maxValue, self.minValue
        return c

    def count(self) -> int:
        return self.n

    def mean(self) -> float:
        return self.mu

    def sum(self) -> float:
        return self.n * self.mu

    def min(self):
        return self.minValue

    def max(self):
        return self.maxValue

    def variance(self) -> float:
        return self.m2 / self.n if self.n else float("nan")

    def sampleVariance(self) -> float:  # noqa: N802
        return self.m2 / (self.n - 1) if self.n > 1 else float("nan")

    def stdev(self) -> float:
        return math.sqrt(self.variance())

    def sampleStdev(self) -> float:  # noqa: N802
        return math.sqrt(self.sampleVariance())

    def asDict(self, sample: bool = False) -> dict:  # noqa: N802
        return {"count": self.count(), "mean": self.mean(), "sum": self.sum(),
                "min": self.min(), "max": self.max(),
                "stdev": self.sampleStdev() if sample else self.stdev(),
                "variance": self.sampleVariance() if sample else self.variance()}

    def __repr__(self) -> str:
        return (f"(count: {self.count()}, mean: {self.mean()}, stdev: {self.stdev()}, "
                f"max: {self.max()}, min: {self.min()})")

"""What a query yields in one segment: the matching documents, ascending,
and a score for each, as two numpy arrays. Boolean logic is set algebra on
the doc ids, with the scores carried along."""

from __future__ import annotations

import numpy as np

EMPTY_DOCS = np.zeros(0, np.int64)
EMPTY_SCORES = np.zeros(0, np.float32)


class Matches:
    __slots__ = ("docs", "scores")

    def __init__(self, docs: np.ndarray, scores: np.ndarray | None = None):
        self.docs = docs.astype(np.int64, copy=False)
        self.scores = (np.ones(len(docs), np.float32) if scores is None
                       else scores.astype(np.float32, copy=False))

    def __len__(self) -> int:
        return len(self.docs)

    @classmethod
    def empty(cls) -> Matches:
        return cls(EMPTY_DOCS, EMPTY_SCORES)

    @classmethod
    def mask(cls, mask: np.ndarray, score: float = 1.0) -> Matches:
        docs = np.flatnonzero(mask)
        return cls(docs, np.full(len(docs), score, np.float32))

    def constant(self, score: float) -> Matches:
        return Matches(self.docs, np.full(len(self.docs), score, np.float32))

    def scaled(self, boost: float) -> Matches:
        return self if boost == 1.0 else Matches(self.docs, self.scores * np.float32(boost))

    def keep(self, mask: np.ndarray) -> Matches:
        return Matches(self.docs[mask], self.scores[mask])


def union(parts: list[Matches], minimum: int = 1, mode: str = "sum",
          tie: float = 0.0) -> Matches:
    """Documents matched by at least MINIMUM of PARTS; scores summed (or, for
    dis_max, the best plus TIE times the rest)."""
    parts = [p for p in parts if len(p)]
    if not parts or minimum > len(parts):
        return Matches.empty()
    if len(parts) == 1:
        return parts[0]
    docs = np.concatenate([p.docs for p in parts])
    scores = np.concatenate([p.scores for p in parts]).astype(np.float64)
    uniq, inv = np.unique(docs, return_inverse=True)
    if mode == "max":
        best = np.full(len(uniq), -np.inf)
        np.maximum.at(best, inv, scores)
        total = np.bincount(inv, weights=scores, minlength=len(uniq))
        out = best + tie * (total - best)
    else:
        out = np.bincount(inv, weights=scores, minlength=len(uniq))
    if minimum > 1:
        counts = np.bincount(inv, minlength=len(uniq))
        keep = counts >= minimum
        return Matches(uniq[keep], out[keep])
    return Matches(uniq, out)


def intersect(a: Matches, b: Matches, score_b: bool = True) -> Matches:
    docs, ia, ib = np.intersect1d(a.docs, b.docs, assume_unique=True, return_indices=True)
    scores = a.scores[ia] + b.scores[ib] if score_b else a.scores[ia]
    return Matches(docs, scores)


def exclude(a: Matches, b: Matches) -> Matches:
    if not len(b) or not len(a):
        return a
    return a.keep(~np.isin(a.docs, b.docs, assume_unique=True))

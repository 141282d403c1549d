"""Which SSTables of a store to merge: HBase's exploring, ratio-based policy
as a plain function. Among runs of adjacent files (oldest first) of 3 to 10
files, a run qualifies when no file in it is larger than RATIO times the
others together (so big old files are not rewritten for a small new one);
the run with the most files wins, the smaller total on ties. With too many
files (BLOCKING) the smallest run of MIN files is taken regardless."""

from __future__ import annotations

MIN_FILES, MAX_FILES, RATIO, BLOCKING = 3, 10, 1.2, 16


def choose(sizes: list[int], min_files: int = MIN_FILES, max_files: int = MAX_FILES,
           ratio: float = RATIO, blocking: int = BLOCKING) -> tuple[int, int] | None:
    """SIZES oldest first; the chosen run as (first index, end index), or None."""
    best, best_key = None, None
    n = len(sizes)
    for i in range(n):
        for j in range(i + min_files, min(n, i + max_files) + 1):
            run = sizes[i:j]
            total = sum(run)
            if all(s <= ratio * (total - s) for s in run):
                key = (-(j - i), total)
                if best_key is None or key < best_key:
                    best, best_key = (i, j), key
    if best is None and n >= blocking:
        totals = [(sum(sizes[i:i + min_files]), i) for i in range(n - min_files + 1)]
        _, i = min(totals)
        best = (i, i + min_files)
    return best

"""How a store's sources become what a reader sees: pure functions over
sorted cell streams (model.sort_key order), no I/O.

Sources are given newest first (the memtable, then SSTables from the newest
flush back); where two hold the same key, the newer source wins. Within a
row, delete markers come before what they hide, because they sort first at
equal timestamps and a family marker sits at the empty qualifier.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stackyard.table.model import LATEST, Cell, Kind, sort_key


@dataclass(frozen=True)
class ReadSpec:
    """What a get or scan asks of one family."""
    qualifiers: frozenset[bytes] | None = None   # None: every qualifier
    min_ts: int = 0                              # time range [min_ts, max_ts)
    max_ts: int = LATEST
    versions: int = 1                            # at most this many per column
    family_versions: int = 1                     # the family's VERSIONS
    ttl_ms: int = 0                              # 0: cells never expire
    now: int = 0


def merge_sources(sources: list[Iterable[Cell]]) -> Iterator[Cell]:
    """One sorted stream of SOURCES (newest first); the newest copy of a key."""
    keyed = [((sort_key(c), rank, c) for c in src) for rank, src in enumerate(sources)]
    last = None
    for key, _rank, cell in heapq.merge(*keyed):
        if key != last:
            last = key
            yield cell


def rows(cells: Iterable[Cell]) -> Iterator[tuple[bytes, list[Cell]]]:
    """Group a sorted stream by row."""
    row, group = None, []
    for c in cells:
        if c[0] != row:
            if group:
                yield row, group
            row, group = c[0], []
        group.append(c)
    if group:
        yield row, group


def visible(cells: list[Cell], spec: ReadSpec) -> list[Cell]:
    """The puts of one row (one family, sorted, de-duplicated) that a reader
    sees: not deleted, not expired, within the family's and the reader's
    version counts and the time range."""
    family_deleted = -1          # the newest family marker's timestamp
    column_deleted: dict[bytes, int] = {}
    version_deleted: set[tuple[bytes, int]] = set()
    kept: dict[bytes, int] = {}
    taken: dict[bytes, int] = {}
    out = []
    oldest = spec.now - spec.ttl_ms if spec.ttl_ms else -1
    limit = min(spec.versions, spec.family_versions)
    for row, qual, ts, kind, value in cells:
        if kind == Kind.DELETE_FAMILY:
            family_deleted = max(family_deleted, ts)
            continue
        if kind == Kind.DELETE_COLUMN:
            column_deleted[qual] = max(column_deleted.get(qual, -1), ts)
            continue
        if kind == Kind.DELETE:
            version_deleted.add((qual, ts))
            continue
        if ts <= family_deleted or ts <= column_deleted.get(qual, -1):
            continue
        if (qual, ts) in version_deleted or ts < oldest:
            continue
        # the family's VERSIONS bound counts versions whatever the reader's range
        seen = kept.get(qual, 0)
        if seen >= spec.family_versions:
            continue
        kept[qual] = seen + 1
        if spec.qualifiers is not None and qual not in spec.qualifiers:
            continue
        if not spec.min_ts <= ts < spec.max_ts:
            continue
        if taken.get(qual, 0) >= limit:
            continue
        taken[qual] = taken.get(qual, 0) + 1
        out.append((row, qual, ts, kind, value))
    return out


def compact(cells: Iterable[Cell], major: bool, family_versions: int, ttl_ms: int,
            now: int) -> Iterator[Cell]:
    """What a compaction writes. A minor one only merges (markers must stay:
    older files it did not read may hold what they hide). A major one reads
    every file, so it keeps only what a reader could still see."""
    if not major:
        yield from cells
        return
    spec = ReadSpec(versions=family_versions, family_versions=family_versions,
                    ttl_ms=ttl_ms, now=now)
    for _row, group in rows(cells):
        yield from visible(group, spec)

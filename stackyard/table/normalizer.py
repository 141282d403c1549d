"""Which adjacent tablets to merge (HBase's region normalizer): the first
pair of neighbours in a table, each older than a minimum age (so a table
just pre-split keeps its tablets while it fills) and together smaller than
`merge_bytes`. Pure: sizes and ages in, a pair out."""

from __future__ import annotations

from dataclasses import dataclass

from stackyard.table.meta import META_TABLE
from stackyard.table.model import TabletInfo


@dataclass(frozen=True)
class Served:
    info: TabletInfo
    server: str
    size: int           # bytes in files and memtable
    age: float          # seconds the master has seen it


def pick_merge(tablets: list[Served], merge_bytes: int, min_age: float) -> tuple | None:
    """(left, right) of one table's TABLETS (any order), or None."""
    ordered = sorted(tablets, key=lambda t: t.info.start)
    for left, right in zip(ordered, ordered[1:], strict=False):
        if left.info.end != right.info.start or not left.info.end:
            continue        # a gap: a tablet between them is not served now
        if min(left.age, right.age) < min_age:
            continue
        if left.size + right.size < merge_bytes:
            return left, right
    return None


def by_table(infos: list[TabletInfo], server_status: dict[str, dict], serving: dict[str, str],
             first_seen: dict[str, float], now: float) -> dict[str, list[Served]]:
    """The served user tablets by table, with their sizes as their servers
    last reported them and their ages (FIRST_SEEN is updated)."""
    sizes = {t["tablet"]["tablet_id"]: t["size"] + t["memtable"]
             for st in server_status.values() for t in st["tablets"]}
    for tid in sizes:
        first_seen.setdefault(tid, now)
    out: dict[str, list[Served]] = {}
    for info in infos:
        tid = info.tablet_id
        if info.table == META_TABLE or tid not in sizes or tid not in serving:
            continue
        out.setdefault(info.table, []).append(
            Served(info, serving[tid], sizes[tid], now - first_seen[tid]))
    return out

"""Where replicas go. Plain functions over the live servers, as GFS's master
chooses: spread over racks first, then over servers, preferring the emptier,
with a random tie-break so that one server does not take every new chunk."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    server_id: str
    rack: str
    used: int          # bytes of chunks on the server
    free: int          # bytes free on its disk


def choose_targets(n: int, candidates: Iterable[Candidate], existing_racks: Iterable[str],
                   need_bytes: int, rng: random.Random) -> list[str]:
    """Up to N servers for new replicas, none of which already holds the chunk
    (the caller leaves those out of CANDIDATES)."""
    pool = [c for c in candidates if c.free >= need_bytes]
    racks = Counter(existing_racks)
    chosen: list[str] = []
    while pool and len(chosen) < n:
        # fewest replicas on the rack first, then least used; shuffle breaks ties
        rng.shuffle(pool)
        pool.sort(key=lambda c: (racks[c.rack], c.used // (1 << 20)))
        pick = pool.pop(0)
        chosen.append(pick.server_id)
        racks[pick.rack] += 1
    return chosen


def choose_excess(n: int, holders: list[Candidate]) -> list[str]:
    """N replicas to remove: from the most crowded rack, then the fullest server."""
    holders = list(holders)
    racks = Counter(c.rack for c in holders)
    out: list[str] = []
    while holders and len(out) < n:
        holders.sort(key=lambda c: (-racks[c.rack], -c.used, c.server_id))
        pick = holders.pop(0)
        racks[pick.rack] -= 1
        out.append(pick.server_id)
    return out

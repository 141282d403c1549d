"""A worker's cached partitions (Spark's block manager, one per executor).

Blocks are the pickled records of one partition of a persisted dataset,
named APP/rdd_R_P. They live in the worker daemon, so they outlive the task
that made them and die with the worker (then they are recomputed from
lineage). Each is kept at the level its dataset asked for:

- "memory": in memory; when the memory budget is full the least recently
  used memory blocks are dropped (a later task recomputes them);
- "memory_and_disk": in memory, spilled to local disk instead of dropped;
- "disk": on local disk only.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

LEVELS = ("memory", "memory_and_disk", "disk")


class BlockStore:
    def __init__(self, directory: Path, memory_limit: int):
        self.dir = Path(directory)
        shutil.rmtree(self.dir, ignore_errors=True)     # a restarted worker holds nothing
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limit = memory_limit
        self.memory: OrderedDict[str, tuple[str, bytes]] = OrderedDict()   # LRU first
        self.on_disk: dict[str, int] = {}
        self.memory_used = 0
        self.disk_used = 0
        self.dropped = 0
        self.lock = threading.Lock()
        # what was stored and forgotten since the scheduler was last told
        self.added: set[str] = set()
        self.removed: set[str] = set()

    def _stored(self, bid: str) -> None:
        self.removed.discard(bid)
        self.added.add(bid)

    def _gone(self, bid: str) -> None:
        if bid in self.added:
            self.added.discard(bid)
        else:
            self.removed.add(bid)

    def changes(self) -> tuple[list[str], list[str]]:
        """(stored, forgotten) since the last call."""
        with self.lock:
            out = sorted(self.added), sorted(self.removed)
            self.added, self.removed = set(), set()
            return out

    def _path(self, bid: str) -> Path:
        return self.dir / bid.replace("/", "__")

    def put(self, bid: str, data: bytes, level: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"level: must be one of {', '.join(LEVELS)}, got {level!r}")
        with self.lock:
            self._forget(bid)
            if level == "disk" or (level == "memory_and_disk" and len(data) > self.limit):
                self._to_disk(bid, data)
                self._stored(bid)
                return
            if len(data) > self.limit:
                self.dropped += 1          # too big to cache: recomputed when needed
                return
            self._make_room(len(data))
            self.memory[bid] = (level, data)
            self.memory_used += len(data)
            self._stored(bid)

    def _make_room(self, size: int) -> None:
        while self.memory and self.memory_used + size > self.limit:
            old, (level, data) = self.memory.popitem(last=False)
            self.memory_used -= len(data)
            if level == "memory_and_disk":
                self._to_disk(old, data)
            else:
                self.dropped += 1
                self._gone(old)

    def _to_disk(self, bid: str, data: bytes) -> None:
        tmp = self._path(bid).with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self._path(bid))
        self.on_disk[bid] = len(data)
        self.disk_used += len(data)

    def get_memory(self, bid: str) -> bytes | None:
        """BID if it is held in memory (no disk read: the event loop may ask)."""
        with self.lock:
            held = self.memory.get(bid)
            if held is None:
                return None
            self.memory.move_to_end(bid)
            return held[1]

    def get(self, bid: str) -> bytes | None:
        with self.lock:
            held = self.memory.get(bid)
            if held is not None:
                self.memory.move_to_end(bid)
                return held[1]
            if bid not in self.on_disk:
                return None
        try:
            return self._path(bid).read_bytes()
        except FileNotFoundError:
            return None

    def _forget(self, bid: str) -> None:
        held = self.memory.pop(bid, None)
        if held is not None:
            self.memory_used -= len(held[1])
        size = self.on_disk.pop(bid, None)
        if size is not None:
            self.disk_used -= size
            self._path(bid).unlink(missing_ok=True)
        if held is not None or size is not None:
            self._gone(bid)

    def drop(self, prefix: str) -> None:
        """Forget every block whose id starts with PREFIX (unpersist, an ended app)."""
        with self.lock:
            for bid in [b for b in (*self.memory, *self.on_disk) if b.startswith(prefix)]:
                self._forget(bid)

    def ids(self) -> list[str]:
        """Every block held (and the changes so far count as told)."""
        with self.lock:
            self.added, self.removed = set(), set()
            return [*self.memory, *self.on_disk]

    def describe(self) -> str:
        s = self.stats()
        return (f"{s['memory_blocks']} in memory ({s['memory_bytes'] / 2**20:.1f} of "
                f"{s['memory_limit'] / 2**20:.0f} MiB), {s['disk_blocks']} on disk "
                f"({s['disk_bytes'] / 2**20:.1f} MiB), {s['dropped']} dropped for room")

    def stats(self) -> dict:
        return {"memory_blocks": len(self.memory), "memory_bytes": self.memory_used,
                "disk_blocks": len(self.on_disk), "disk_bytes": self.disk_used,
                "memory_limit": self.limit, "dropped": self.dropped}

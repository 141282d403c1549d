"""A tablet's core: memtables, the SSTables of each family, and the decisions
of when to flush, compact and split. No I/O: SSTable readers are handed in
as objects with `scan`, `scan_reverse`, `row` and `size`, and the server
around the core writes files and reports back (ARCHITECTURE.md: cores take
events and return actions).

Writes enter `apply` only after the write-ahead log holds them. A flush
freezes the memtables (reads still see them) and starts new ones, so writes
go on while the frozen ones are written out.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field

from sortedcontainers import SortedDict

from stackyard.table import compaction, merge
from stackyard.table.model import Cell, Schema, TabletInfo, now_ms, sort_key


@dataclass(frozen=True)
class FileRef:
    """An SSTable a tablet reads, clipped to [start, stop) (a tablet split off
    a parent reads the parent's files over its own half until it compacts)."""
    path: str
    size: int
    start: bytes = b""
    stop: bytes = b""

    def to_list(self) -> list:
        return [self.path, self.size, self.start, self.stop]

    @classmethod
    def from_list(cls, v: list) -> FileRef:
        return cls(v[0], v[1], bytes(v[2]), bytes(v[3]))


class Clipped:
    """A reader seen through a FileRef's range."""

    def __init__(self, ref: FileRef, reader):
        self.ref, self.reader = ref, reader

    def _bounds(self, start: bytes, stop: bytes) -> tuple[bytes, bytes]:
        lo = max(start, self.ref.start)
        hi = min(x for x in (stop, self.ref.stop) if x) if (stop or self.ref.stop) else b""
        return lo, hi

    def scan(self, start: bytes = b"", stop: bytes = b""):
        lo, hi = self._bounds(start, stop)
        if hi and lo >= hi:
            return iter(())
        return self.reader.scan(lo, hi)

    def scan_reverse(self, start: bytes, stop: bytes = b""):
        # rows in (stop, start]; the clip is [ref.start, ref.stop)
        for c in self.reader.scan_reverse(start, stop):
            if c[0] >= self.ref.start and (not self.ref.stop or c[0] < self.ref.stop):
                yield c

    def row(self, row: bytes) -> list[Cell]:
        if row < self.ref.start or (self.ref.stop and row >= self.ref.stop):
            return []
        return self.reader.row(row)


@dataclass(frozen=True)
class Flush:
    reason: str


@dataclass(frozen=True)
class Compact:
    family: str
    files: tuple[FileRef, ...]      # oldest first
    major: bool


@dataclass(frozen=True)
class Split:
    at: bytes


@dataclass
class FlushJob:
    seq: int                                        # every edit up to here is in it
    frozen: dict[str, SortedDict]


@dataclass
class Store:
    """One family of one tablet."""
    memtable: SortedDict = field(default_factory=SortedDict)
    frozen: list[SortedDict] = field(default_factory=list)     # newest first
    files: list[Clipped] = field(default_factory=list)          # newest first
    compacting: bool = False


def _memtable_scan(m: SortedDict, start: bytes, stop: bytes, reverse: bool = False):
    if reverse:
        lo = (stop + b"\x00",) if stop else None
        hi = (start, b"\xff" * 64) if start else None
        keys = list(m.irange(lo, hi, reverse=True))
    else:
        keys = list(m.irange((start,), (stop,) if stop else None, inclusive=(True, False)))
    return [m[k] for k in keys]


def _memtable_range(m: SortedDict, start: bytes, stop: bytes, reverse: bool, lock,
                    chunk: int = 256):
    """_memtable_scan's cells, lazily: a chunk at a time under LOCK (writers
    change the memtable meanwhile), so a short scan of a big memtable reads a
    short stretch of it, not all of it from START on."""
    if reverse:
        lo, hi = ((stop + b"\x00",) if stop else None), ((start, b"\xff" * 64) if start else None)
        incl = (True, True)
    else:
        lo, hi, incl = (start,), ((stop,) if stop else None), (True, False)
    while True:
        with lock:
            keys = list(itertools.islice(m.irange(lo, hi, inclusive=incl, reverse=reverse),
                                         chunk))
            cells = [m[k] for k in keys]
        yield from cells
        if len(keys) < chunk:
            return
        if reverse:
            hi, incl = keys[-1], (incl[0], False)
        else:
            lo, incl = keys[-1], (False, incl[1])


class TabletCore:
    def __init__(self, info: TabletInfo, schema: Schema, flush_bytes: int = 64 << 20,
                 split_bytes: int = 256 << 20):
        self.info, self.schema = info, schema
        self.flush_bytes, self.split_bytes = flush_bytes, split_bytes
        self.stores = {name: Store() for name in schema.families}
        self.mem_bytes = 0
        self.first_unflushed: int | None = None    # the oldest WAL seq only in memory
        self.last_seq = 0
        self.flushing: FlushJob | None = None
        self.split_asked = False
        self.writes = self.reads = 0

    # -- writes -------------------------------------------------------------------

    def apply(self, cells: dict[str, list[Cell]], seq: int) -> list:
        for family, items in cells.items():
            store = self.store(family)
            for c in items:
                store.memtable[sort_key(c)] = c
                self.mem_bytes += len(c[0]) + len(c[1]) + len(c[4]) + 48
        if self.first_unflushed is None:
            self.first_unflushed = seq
        self.last_seq = max(self.last_seq, seq)
        self.writes += 1
        if self.mem_bytes >= self.flush_bytes and self.flushing is None:
            return [Flush("memtable full")]
        return []

    def store(self, family: str) -> Store:
        store = self.stores.get(family)
        if store is None:
            self.schema.family(family)           # raises, naming the families there are
            store = self.stores[family] = Store()
        return store

    # -- flushes ------------------------------------------------------------------

    def begin_flush(self) -> FlushJob | None:
        if self.flushing is not None or self.mem_bytes == 0:
            return None
        frozen = {}
        for name, store in self.stores.items():
            if store.memtable:
                store.frozen.insert(0, store.memtable)
                frozen[name] = store.memtable
                store.memtable = SortedDict()
        self.flushing = FlushJob(self.last_seq, frozen)
        self.mem_bytes, self.first_unflushed = 0, None
        return self.flushing

    def end_flush(self, job: FlushJob, written: dict[str, Clipped]) -> list:
        for name, reader in written.items():
            store = self.stores[name]
            store.frozen = [m for m in store.frozen if m is not job.frozen[name]]
            store.files.insert(0, reader)
        self.flushing = None
        actions = [c for name in self.stores if (c := self.pick_compaction(name))]
        if self.size() >= self.split_bytes and not self.split_asked and (mid := self.midkey()):
            self.split_asked = True      # the split's own flushes must not ask again
            actions.append(Split(mid))
        return actions

    def abort_flush(self, job: FlushJob) -> None:
        """The files could not be written: the frozen memtables stay readable
        and go out with the next flush (their edits are still in the log)."""
        for name, m in job.frozen.items():
            store = self.stores[name]
            store.frozen = [f for f in store.frozen if f is not m]
            for k, c in m.items():
                store.memtable.setdefault(k, c)
                self.mem_bytes += len(c[0]) + len(c[1]) + len(c[4]) + 48
        if self.first_unflushed is None or (job.seq and job.seq < self.first_unflushed):
            self.first_unflushed = 1
        self.flushing = None

    # -- compactions --------------------------------------------------------------

    def pick_compaction(self, family: str, major: bool = False) -> Compact | None:
        store = self.stores[family]
        if store.compacting or not store.files:
            return None
        oldest_first = list(reversed(store.files))
        if major:
            return Compact(family, tuple(r.ref for r in oldest_first), True)
        run = compaction.choose([r.ref.size for r in oldest_first])
        if run is None:
            return None
        i, j = run
        # a run reaching the oldest file sees every file: it may drop what is dead
        return Compact(family, tuple(r.ref for r in oldest_first[i:j]), i == 0)

    def end_compaction(self, job: Compact, output: Clipped | None) -> None:
        store = self.stores[job.family]
        gone = set(job.files)
        keep = [r for r in store.files if r.ref not in gone]
        # the output takes the place of the newest file it replaces
        at = next((i for i, r in enumerate(store.files) if r.ref in gone), len(keep))
        at = min(at, len(keep))
        if output is not None:
            keep.insert(at, output)
        store.files = keep
        store.compacting = False

    # -- reads ----------------------------------------------------------------------

    def sources(self, family: str, start: bytes, stop: bytes, reverse: bool = False,
                lock=None) -> list:
        """Cell streams of FAMILY over [START, STOP): memtables (read a stretch
        at a time under LOCK, the lock writers hold) and files."""
        store = self.store(family)
        lock = lock if lock is not None else contextlib.nullcontext()
        out = [_memtable_range(m, start, stop, reverse, lock)
               for m in [store.memtable, *store.frozen]]
        if reverse:
            out += [r.scan_reverse(start, stop) for r in store.files]
        else:
            out += [r.scan(start, stop) for r in store.files]
        return out

    def row_sources(self, family: str, row: bytes) -> list:
        store = self.store(family)
        out = [_memtable_scan(store.memtable, row, row + b"\x00")]
        out += [_memtable_scan(m, row, row + b"\x00") for m in store.frozen]
        out += [r.row(row) for r in store.files]
        return out

    def read_spec(self, family: str, qualifiers=None, min_ts: int = 0,
                  max_ts: int = merge.LATEST, versions: int = 1) -> merge.ReadSpec:
        fam = self.schema.family(family)
        return merge.ReadSpec(qualifiers=qualifiers, min_ts=min_ts, max_ts=max_ts,
                              versions=versions, family_versions=fam.max_versions,
                              ttl_ms=fam.ttl * 1000, now=now_ms())

    # -- size and splits --------------------------------------------------------------

    def size(self) -> int:
        return self.mem_bytes + sum(r.ref.size for s in self.stores.values() for r in s.files)

    def midkey(self) -> bytes | None:
        """A row near the middle of the biggest family's biggest file, inside
        this tablet and not its first row."""
        best = None
        for s in self.stores.values():
            for r in s.files:
                if best is None or r.ref.size > best.ref.size:
                    best = r
        if best is None:
            return None
        lo, hi = self.info.start, self.info.end
        # the blocks' first rows are a sample of the file's rows in key order
        rows = sorted({k[0] for k in best.reader.first_keys
                       if k[0] > lo and (not hi or k[0] < hi)})
        if len(rows) < 2:
            rows = []
            for cell in best.scan(lo, hi):
                if not rows or rows[-1] != cell[0]:
                    rows.append(cell[0])
        if len(rows) < 2:
            return None
        mid = rows[len(rows) // 2]
        return mid if mid > lo else None

    def all_files(self) -> dict[str, list[FileRef]]:
        return {name: [r.ref for r in s.files] for name, s in self.stores.items()}

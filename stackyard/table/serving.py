"""What a tablet server does with its tablets, without the network: open
(manifest, SSTables, replay of recovered edits), writes through the
write-ahead log, reads, flushes, compactions, splits and closing.

Locks: `Hosted.lock` guards a tablet's core (memtables, file lists) and is
held only for memory work; row locks serialize the writes of one row (a
read-modify-write such as increment or check-and-mutate holds its row's
lock across the log sync), and writes of other rows share one sync.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from stackyard.errors import NotServingError, TableDisabledError
from stackyard.table import files, merge, sstable, wal
from stackyard.table.filters import Filter, StopScan
from stackyard.table.model import LATEST, Kind, Schema, TabletInfo, now_ms
from stackyard.table.tablet import Compact, Flush, FlushJob, Split, TabletCore

log = logging.getLogger("stackyard.table.serving")
ROW_LOCKS = 256


class Hosted:
    """One open tablet."""

    def __init__(self, core: TabletCore, gen: int, flushed: dict[str, int]):
        self.core, self.gen, self.flushed = core, gen, dict(flushed)
        self.lock = threading.RLock()
        self.inflight: set[int] = set()
        self.closing = False
        self.flush_lock = threading.Lock()     # one flush or manifest write at a time


class Serving:
    def __init__(self, fs, name: str, flush_bytes: int, split_bytes: int,
                 cache_bytes: int, roll_bytes: int, replication: int | None = None):
        self.fs, self.name = fs, name
        self.flush_bytes, self.split_bytes = flush_bytes, split_bytes
        self.replication = replication
        self.cache = sstable.BlockCache(cache_bytes)
        self.tablets: dict[str, Hosted] = {}
        self.lock = threading.Lock()
        self.row_locks = [threading.Lock() for _ in range(ROW_LOCKS)]
        self.background = ThreadPoolExecutor(2, thread_name_prefix="tablet-bg")
        self.on_split = None           # callback(parent info, [child infos]) set by the daemon
        self.on_merge = None           # callback([left, right] infos, merged info, schema)
        self.on_fatal = None           # the daemon's abort: a log that cannot sync
        self.requests = self.compactions = self.flushes = 0
        fs.mkdir(files.wal_dir(name))
        self.log = wal.GroupLog(self._open_log, roll_bytes=roll_bytes)

    def _open_log(self, number: int):
        return self.fs.open(f"{files.wal_dir(self.name)}/log.{number:08d}", "wb",
                            replication=self.replication)

    # -- opening and closing ------------------------------------------------------

    def open(self, info: TabletInfo, schema: Schema) -> None:
        with self.lock:
            if info.tablet_id in self.tablets:
                return
        m = files.read_manifest(self.fs, info.table, info.tablet_id)
        core = TabletCore(info, schema, self.flush_bytes, self.split_bytes)
        for family, refs in m["files"].items():
            store = core.store(family) if family in schema.families else None
            if store is None:
                continue           # a family dropped by alter
            store.files = [files.open_sstable(self.fs, r, self.cache) for r in refs]
        hosted = Hosted(core, m["gen"], m["flushed"])
        recovered = self._replay(hosted)
        if recovered:
            self._flush(hosted, reason="recovered edits")
            for path in recovered:
                self.fs.rm(path)
        with self.lock:
            self.tablets[info.tablet_id] = hosted
        log.info("opened tablet %s of %s [%r, %r)", info.tablet_id, info.table, info.start,
                 info.end)

    def _replay(self, hosted: Hosted) -> list[str]:
        """Apply the edits the master split out of dead servers' logs that are
        newer than what this tablet's files hold; the files replayed."""
        info = hosted.core.info
        base = f"{files.tablet_dir(info.table, info.tablet_id)}/recovered"
        try:
            entries = sorted(e["path"] for e in self.fs.ls(base))
        except FileNotFoundError:
            return []
        n = 0
        for path in entries:
            server = path.rsplit("/", 1)[-1].rsplit(".", 2)[0]
            done = hosted.flushed.get(server, 0)
            for seq, _tablet, cells in wal.records(self.fs.cat(path)):
                if seq > done:
                    hosted.core.apply(cells, 0)
                    n += 1
        log.info("tablet %s: replayed %d edits from %d recovered file(s)", info.tablet_id, n,
                 len(entries))
        return entries

    def close(self, tablet_id: str) -> None:
        """Flush and stop serving (before the tablet opens elsewhere)."""
        hosted = self.get_hosted(tablet_id)
        self._quiesce(hosted)
        self._flush(hosted, reason="close")
        with self.lock:
            self.tablets.pop(tablet_id, None)

    def _quiesce(self, h: Hosted) -> None:
        """Refuse new writes, and wait for those already past the check to
        reach the memtable, so the flush that follows holds every one of them."""
        with h.lock:
            h.closing = True
        deadline = time.monotonic() + 60
        while h.inflight and time.monotonic() < deadline:
            time.sleep(0.002)
        # and for compactions under way: one ending after the tablet's files
        # were handed on (to children, a merged tablet, another server) would
        # remove inputs that those still read
        deadline = time.monotonic() + 600
        while self._compacting(h) and time.monotonic() < deadline:
            time.sleep(0.01)

    @staticmethod
    def _compacting(h: Hosted) -> bool:
        with h.lock:
            return any(store.compacting for store in h.core.stores.values())

    def get_hosted(self, tablet_id: str) -> Hosted:
        h = self.tablets.get(tablet_id)
        if h is None or h.closing:
            raise NotServingError(f"tablet {tablet_id} is not served by {self.name}")
        return h

    def serving(self, tablet_id: str, row: bytes | None = None) -> Hosted:
        h = self.get_hosted(tablet_id)
        if row is not None and not h.core.info.contains(row):
            raise NotServingError(f"row {row!r} is not in tablet {tablet_id} (it split?)")
        if not h.core.schema.enabled:
            raise TableDisabledError(f"table {h.core.info.table} is disabled")
        return h

    def set_schema(self, schema: Schema) -> None:
        for h in list(self.tablets.values()):
            if h.core.info.table == schema.name:
                with h.lock:
                    h.core.schema = schema
                    for name in schema.families:
                        h.core.store(name)

    # -- writes ---------------------------------------------------------------------

    def _row_lock(self, tablet_id: str, row: bytes) -> threading.Lock:
        return self.row_locks[zlib.crc32(row, zlib.crc32(tablet_id.encode())) % ROW_LOCKS]

    def _write(self, h: Hosted, cells: dict[str, list]) -> None:
        with h.lock:
            if h.closing:
                raise NotServingError(f"tablet {h.core.info.tablet_id} is closing here")
            seq = self.log.next_seq()
            h.inflight.add(seq)
        try:
            try:
                self.log.append(wal.encode(seq, h.core.info.tablet_id, cells, h.core.info.table), seq)
            except wal.SyncFailed:
                if self.on_fatal:
                    self.on_fatal("the write-ahead log cannot sync")
                raise
            with h.lock:
                actions = h.core.apply(cells, seq)
        finally:
            with h.lock:
                h.inflight.discard(seq)
        self._act(h, actions)

    def mutate(self, tablet_id: str, row: bytes, edits: list, check: list | None = None) -> bool:
        """Apply EDITS ([family, qualifier, ts or None, kind, value]) to ROW at
        once; with CHECK [family, qualifier, value or None] only if the cell's
        newest value is VALUE (None: absent). False if the check failed."""
        h = self.serving(tablet_id, row)
        ts_now = now_ms()
        cells: dict[str, list] = {}
        for family, qual, ts, kind, value in edits:
            if family == "*" and kind == Kind.DELETE_FAMILY:
                for name in h.core.schema.families:
                    cells.setdefault(name, []).append(
                        (row, b"", ts_now if ts is None else int(ts), int(kind), b""))
                continue
            fam = h.core.schema.family(family)
            Kind(kind)
            cells.setdefault(fam.name, []).append(
                (row, bytes(qual), ts_now if ts is None else int(ts), int(kind), bytes(value)))
        self.requests += 1
        with self._row_lock(tablet_id, row):
            if check is not None:
                family, qual, want = check
                have = self._latest(h, row, family, bytes(qual))
                if have != (None if want is None else bytes(want)):
                    return False
            if cells:
                self._write(h, cells)
        return True

    def _latest(self, h: Hosted, row: bytes, family: str, qual: bytes) -> bytes | None:
        return self._newest(h, row, family, qual)[0]

    def _newest(self, h: Hosted, row: bytes, family: str, qual: bytes) -> tuple:
        """(value, ts) of the cell's newest version, (None, 0) if none."""
        got = self.get(h.core.info.tablet_id, row, {family: [qual]})
        for f, q, ts, v in got:
            if f == family and q == qual:
                return v, ts
        return None, 0

    def increment(self, tablet_id: str, row: bytes, amounts: list) -> list[int]:
        """Add each [family, qualifier, amount] to its 8-byte big-endian counter."""
        h = self.serving(tablet_id, row)
        self.requests += 1
        with self._row_lock(tablet_id, row):
            out, cells = [], {}
            for family, qual, amount in amounts:
                h.core.schema.family(family)
                have, then = self._newest(h, row, family, bytes(qual))
                # newer than the version it adds to, even if a client's clock ran ahead
                ts = max(now_ms(), then + 1)
                if have is not None and len(have) != 8:
                    raise ValueError(f"column {family}:{bytes(qual)!r} holds {len(have)} bytes, "
                                     "not an 8-byte counter")
                value = (int.from_bytes(have, "big", signed=True) if have else 0) + int(amount)
                out.append(value)
                cells.setdefault(family, []).append(
                    (row, bytes(qual), ts, int(Kind.PUT), value.to_bytes(8, "big", signed=True)))
            self._write(h, cells)
        return out

    def append(self, tablet_id: str, row: bytes, parts: list) -> list[bytes]:
        h = self.serving(tablet_id, row)
        self.requests += 1
        with self._row_lock(tablet_id, row):
            out, cells = [], {}
            for family, qual, value in parts:
                h.core.schema.family(family)
                have, then = self._newest(h, row, family, bytes(qual))
                ts = max(now_ms(), then + 1)
                new = (have or b"") + bytes(value)
                out.append(new)
                cells.setdefault(family, []).append((row, bytes(qual), ts, int(Kind.PUT), new))
            self._write(h, cells)
        return out

    # -- reads ----------------------------------------------------------------------

    def _specs(self, h: Hosted, columns: dict | None, min_ts: int, max_ts: int,
               versions: int) -> dict[str, merge.ReadSpec]:
        fams = list(h.core.schema.families) if not columns else list(columns)
        out = {}
        for f in fams:
            quals = None if not columns or not columns[f] else frozenset(bytes(q) for q in columns[f])
            out[f] = h.core.read_spec(f, quals, min_ts, max_ts, versions)
        return out

    def get(self, tablet_id: str, row: bytes, columns: dict | None = None, min_ts: int = 0,
            max_ts: int = LATEST, versions: int = 1, filt: Filter | None = None) -> list:
        """ROW's cells [family, qualifier, ts, value], families in schema order."""
        h = self.serving(tablet_id, row)
        self.requests += 1
        out = []
        for family, spec in self._specs(h, columns, min_ts, max_ts, versions).items():
            with h.lock:
                sources = h.core.row_sources(family, row)
            cells = merge.visible(list(merge.merge_sources(sources)), spec)
            out += [(family, c[1], c[2], c[4]) for c in cells]
        if filt is not None and out:
            try:
                out = filt.apply(row, out)
            except StopScan:
                out = []
        return out

    def scan(self, tablet_id: str, start: bytes = b"", stop: bytes = b"",
             columns: dict | None = None, min_ts: int = 0, max_ts: int = LATEST,
             versions: int = 1, filt: Filter | None = None, limit: int = 100,
             max_bytes: int = 4 << 20, reverse: bool = False,
             after: bool = False) -> tuple[list, bool, bool]:
        """Up to LIMIT rows of the tablet in [start, stop) (reversed: from START
        down to above STOP); AFTER skips START itself. (rows, more in this
        tablet, the filter ended the scan)."""
        h = self.serving(tablet_id)
        self.requests += 1
        # the sources hold only this tablet's rows (memtables by construction,
        # files through their clipped ranges), so the caller's bounds suffice
        streams = self._family_rows(h, columns, min_ts, max_ts, versions, start, stop, reverse)
        rows_out, size = [], 0
        for row, cells in streams:
            if after and row == start:
                continue
            if filt is not None:
                try:
                    cells = filt.apply(row, cells)
                except StopScan:
                    return rows_out, False, True
            if not cells:
                continue
            rows_out.append((row, cells))
            size += sum(len(c[1]) + len(c[3]) + 24 for c in cells) + len(row)
            if len(rows_out) >= limit or size >= max_bytes:
                return rows_out, True, False
            if filt is not None and filt.done():
                return rows_out, False, True
        return rows_out, False, False

    def _family_rows(self, h: Hosted, columns, min_ts, max_ts, versions, start: bytes,
                     stop: bytes, reverse: bool) -> Iterator[tuple[bytes, list]]:
        specs = self._specs(h, columns, min_ts, max_ts, versions)
        per_family = []
        for order, (family, spec) in enumerate(specs.items()):
            with h.lock:
                sources = h.core.sources(family, start, stop, reverse, h.lock)
            merged = (merge_reverse(sources) if reverse else merge.merge_sources(sources))
            per_family.append(_visible_rows(merged, spec, family, order, reverse))
        current, group = None, []
        for row, _order, cells in heapq.merge(*per_family, reverse=reverse,
                                              key=lambda x: (x[0], -x[1] if reverse else x[1])):
            if row != current:
                if group:
                    yield current, group
                current, group = row, []
            group += cells
        if group:
            yield current, group

    # -- flushes, compactions, splits -------------------------------------------------

    def _act(self, h: Hosted, actions: list) -> None:
        try:
            self._submit(h, actions)
        except RuntimeError:          # shutting down: the work is redone at the next open
            pass

    def _submit(self, h: Hosted, actions: list) -> None:
        for a in actions:
            if isinstance(a, Flush):
                self.background.submit(self._guard, self._flush, h, a.reason)
            elif isinstance(a, Compact):
                self.background.submit(self._guard, self._compact, h, a)
            elif isinstance(a, Split) and self.on_split is not None:
                self.background.submit(self._guard, self.split, h.core.info.tablet_id, a.at)

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - background work must not die silently
            log.exception("background %s failed", getattr(fn, "__name__", fn))

    def flush(self, tablet_id: str) -> None:
        self._flush(self.get_hosted(tablet_id), reason="asked")

    def _flush(self, h: Hosted, reason: str) -> None:
        with h.flush_lock:
            with h.lock:
                job = h.core.begin_flush()
                if job is None:
                    return
                done = (min(h.inflight) - 1) if h.inflight else job.seq
            try:
                written = self._write_job(h, job)
            except Exception:
                with h.lock:
                    h.core.abort_flush(job)
                raise
            with h.lock:
                actions = h.core.end_flush(job, written)
                if done:
                    h.flushed[self.name] = max(h.flushed.get(self.name, 0), done)
                files_now = h.core.all_files()
            self._save_manifest(h, files_now)
            self.flushes += 1
            log.info("flushed tablet %s (%s)", h.core.info.tablet_id, reason)
        self._act(h, actions)

    def _write_job(self, h: Hosted, job: FlushJob) -> dict:
        info, schema = h.core.info, h.core.schema
        written = {}
        for family, memtable in job.frozen.items():
            fam = schema.families.get(family)
            if fam is None:
                continue
            ref = files.write_sstable(self.fs, info.table, info.tablet_id, family,
                                      memtable.values(), fam.compression, fam.bloom,
                                      self.replication)
            if ref is not None:
                written[family] = files.open_sstable(self.fs, ref, self.cache)
        return written

    def _save_manifest(self, h: Hosted, files_now: dict) -> None:
        info = h.core.info
        h.gen = files.write_manifest(self.fs, info.table, info.tablet_id, h.gen, files_now,
                                     h.flushed)

    def compact(self, tablet_id: str, major: bool = False) -> None:
        h = self.get_hosted(tablet_id)
        self._flush(h, reason="before compaction")
        for family in list(h.core.stores):
            with h.lock:
                job = h.core.pick_compaction(family, major=major)
                if job is None:
                    continue
                h.core.stores[family].compacting = True
            self._compact(h, job)

    def _compact(self, h: Hosted, job: Compact) -> None:
        info = h.core.info
        fam = h.core.schema.families.get(job.family)
        with h.lock:
            if h.closing:        # its files are being handed on: leave them as they are
                h.core.stores[job.family].compacting = False
                return
            readers = [r for r in h.core.stores[job.family].files if r.ref in set(job.files)]
            h.core.stores[job.family].compacting = True
        try:
            sources = [r.scan(info.start, info.end) for r in readers]     # newest first
            cells = merge.compact(merge.merge_sources(sources), job.major,
                                  fam.max_versions if fam else 1,
                                  (fam.ttl * 1000) if fam else 0, now_ms())
            ref = files.write_sstable(self.fs, info.table, info.tablet_id, job.family, cells,
                                      fam.compression if fam else "none",
                                      fam.bloom if fam else True, self.replication)
            out = files.open_sstable(self.fs, ref, self.cache) if ref else None
        except Exception:
            with h.lock:
                h.core.stores[job.family].compacting = False
            raise
        with h.flush_lock:
            with h.lock:
                h.core.end_compaction(job, out)
                files_now = h.core.all_files()
            self._save_manifest(h, files_now)
        self.compactions += 1
        mine = files.tablet_dir(info.table, info.tablet_id) + "/"
        # inputs of ours go once readers in flight are done; a parent's files
        # stay until the master sees no tablet needs them
        threading.Timer(30.0, self._remove, [[r.path for r in job.files
                                             if r.path.startswith(mine)]]).start()
        log.info("%s compaction of %s/%s: %d file(s) into 1", "major" if job.major else "minor",
                 info.tablet_id, job.family, len(job.files))

    def _remove(self, paths: list[str]) -> None:
        for p in paths:
            try:
                self.fs.rm(p)
            except (FileNotFoundError, OSError):
                pass

    def split(self, tablet_id: str, at: bytes | None = None) -> list[TabletInfo]:
        """Split at AT (default: the middle key): the parent is flushed and
        closed, and two children that read its files over their halves are
        written; the daemon records them and opens them."""
        h = self.get_hosted(tablet_id)
        info = h.core.info
        self._flush(h, reason="split")
        at = at or h.core.midkey()
        if not at or not info.contains(at) or at == info.start:
            h.core.split_asked = False
            raise ValueError(f"tablet {tablet_id}: cannot split at {at!r} "
                             f"(not inside [{info.start!r}, {info.end!r}) or too small)")
        self._quiesce(h)
        self._flush(h, reason="split")
        with h.lock:
            refs = h.core.all_files()
        children = [TabletInfo(info.table, _child_id(), info.start, at),
                    TabletInfo(info.table, _child_id(), at, info.end)]
        for child in children:
            # each child reads about half of each file: counting the whole would
            # make a child as big as its parent, and it would split again at once
            clipped = {f: [r.__class__(r.path, max(1, r.size // 2), max(r.start, child.start),
                                       _min_stop(r.stop, child.end)) for r in rs]
                       for f, rs in refs.items()}
            files.write_manifest(self.fs, child.table, child.tablet_id, 0, clipped,
                                 dict(h.flushed))
        if self.on_split is not None:
            self.on_split(info, children, h.core.schema)
        with self.lock:
            self.tablets.pop(tablet_id, None)
        return children

    def merge(self, left_id: str, right_id: str) -> TabletInfo:
        """Merge two adjacent tablets served here into one that reads both
        one's files over their ranges (the inverse of split): both are
        quiesced and flushed, the merged manifest written, and the daemon
        records the result in METADATA and opens it."""
        a, b = self.get_hosted(left_id), self.get_hosted(right_id)
        ia, ib = a.core.info, b.core.info
        if ia.table != ib.table or not ia.end or ia.end != ib.start:
            raise ValueError(f"tablets {left_id} and {right_id} are not adjacent tablets "
                             "of one table")
        try:
            for h in (a, b):
                self._quiesce(h)
                self._flush(h, reason="merge")
            refs: dict[str, list] = {}
            for h in (a, b):
                with h.lock:
                    for family, rs in h.core.all_files().items():
                        refs.setdefault(family, []).extend(rs)
            flushed = {k: max(a.flushed.get(k, 0), b.flushed.get(k, 0))
                       for k in set(a.flushed) | set(b.flushed)}
            merged = TabletInfo(ia.table, _child_id(), ia.start, ib.end)
            files.write_manifest(self.fs, merged.table, merged.tablet_id, 0, refs, flushed)
            if self.on_merge is not None:
                self.on_merge([ia, ib], merged, a.core.schema)
        except BaseException:
            for h in (a, b):           # nothing changed: serve them again
                with h.lock:
                    h.closing = False
            raise
        with self.lock:
            self.tablets.pop(left_id, None)
            self.tablets.pop(right_id, None)
        return merged

    def status(self) -> list[dict]:
        out = []
        for h in list(self.tablets.values()):
            core = h.core
            out.append({"tablet": core.info.to_dict(), "size": core.size(),
                        "memtable": core.mem_bytes, "writes": core.writes,
                        "files": sum(len(s.files) for s in core.stores.values()),
                        "first_unflushed": core.first_unflushed})
        return out

    def stop(self) -> None:
        self.background.shutdown(wait=False, cancel_futures=True)
        self.log.close()


def _child_id() -> str:
    return f"{int(time.time() * 1000):013d}{threading.get_ident() % 1000:03d}" + \
        __import__("uuid").uuid4().hex[:8]


def _min_stop(a: bytes, b: bytes) -> bytes:
    if not a:
        return b
    if not b:
        return a
    return min(a, b)


def merge_reverse(sources: list) -> Iterator:
    from stackyard.table.model import sort_key
    keyed = [((sort_key(c), -rank, c) for c in src) for rank, src in enumerate(sources)]
    last = None
    for key, _r, cell in heapq.merge(*keyed, reverse=True):
        if key != last:
            last = key
            yield cell


def _visible_rows(merged, spec: merge.ReadSpec, family: str, order: int, reverse: bool):
    for row, group in merge.rows(merged):
        if reverse:
            group.sort(key=lambda c: (c[1], -c[2], -c[3]))
        cells = merge.visible(group, spec)
        if cells:
            yield row, order, [(family, c[1], c[2], c[4]) for c in cells]

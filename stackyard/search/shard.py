"""One copy of a shard: segments, a near-real-time buffer, a translog.

The shard's directory in the DFS is a Lucene directory: segment files,
`segments_N` commit points naming the segments (and their deletes
generation) with the highest sequence number they hold, and the primary's
translog. Only the primary writes there. A replica applies the operations
the primary forwards (and writes them to its own translog), so its
in-memory state equals the primary's; promoted, it writes every segment it
holds under new names in a new commit and carries on.

Operations carry sequence numbers; an operation older than what a copy
already has for that id is skipped, so forwarded and recovered operations
may arrive twice or out of order (Elasticsearch's per-document seq_no
ordering)."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np

from stackyard.search import codec, merge, translog
from stackyard.search.segment import PARTS, Segment, SegmentBuilder

log = logging.getLogger("stackyard.search.shard")
KEEP_COMMITS = 2


class VersionConflict(ValueError):
    kind = "version_conflict_engine_exception"


class Entry:
    __slots__ = ("seq", "version", "term", "deleted")

    def __init__(self, seq, version, term, deleted=False):
        self.seq, self.version, self.term, self.deleted = seq, version, term, deleted


class Shard:
    def __init__(self, fs, path: str, schema, shard: int, primary: bool, term: int,
                 replication: int | None = None, translog_dir: str | None = None):
        self.fs, self.path, self.schema, self.shard = fs, path, schema, shard
        self.primary, self.term, self.replication = primary, term, replication
        self.tl_dir = translog_dir or f"{path}/translog"
        self.lock = threading.RLock()
        self.segments: list[Segment] = []
        self.persisted: set[str] = set()
        self.dirty: set[str] = set()           # persisted segments with new deletes
        self.counter = 0
        self.builder = self._builder()
        self.buffer: dict[str, int] = {}       # id -> its doc in the builder
        self.buffer_dead: set[int] = set()
        self.segment_dead: list[tuple] = []     # (segment, doc) superseded, until a refresh
        self.tombstones: dict[str, Entry] = {}
        self.max_seq = -1
        self.commit_gen = 0
        self.since_commit: list[list] = []
        self.tlog: translog.Translog | None = None
        self.stats = {"refreshes": 0, "flushes": 0, "merges": 0, "indexed": 0, "deletes": 0,
                      "last_refresh": 0.0, "last_merge": 0.0}

    def _builder(self) -> SegmentBuilder:
        self.counter += 1
        return SegmentBuilder(f"_{self.term}_{self.counter}",
                              lambda f, t: self.schema.index_analyzer(f)(t))

    # -- opening ------------------------------------------------------------------------

    def open(self, commit_gen: int | None = None) -> None:
        """Load the newest commit (or COMMIT_GEN) and, on a primary, replay
        its translog past it. A segment that fails its checksum fails here."""
        gen, meta = self._latest_commit(commit_gen)
        if meta is not None:
            self.commit_gen = gen
            self.max_seq = meta["max_seq"]
            for name, del_gen in meta["segments"]:
                seg = Segment.load(name, lambda p, n=name: self.fs.cat(self._file(n, p)),
                                   del_gen)
                self.segments.append(seg)
                self.persisted.add(name)
            self.counter = max(self.counter, meta.get("counter", 0))
            self.builder = self._builder()      # a name no committed segment has
        if self.primary:
            from_gen = meta["translog_gen"] if meta else 0
            for op in translog.read(self.fs, self.tl_dir, from_gen):
                self._apply(op)
            gens = translog.generations(self.fs, self.tl_dir)
            self.tlog = translog.Translog(self.fs, self.tl_dir, (gens[-1] + 1) if gens else 1,
                                          self.replication)
            self.refresh()

    def open_replica(self, commit_gen: int, ops: list[list], tlog_dir: str) -> None:
        self.open(commit_gen)
        self.tl_dir = tlog_dir
        gens = translog.generations(self.fs, tlog_dir)
        self.tlog = translog.Translog(self.fs, tlog_dir, (gens[-1] + 1) if gens else 1,
                                      self.replication)
        self.replica_apply(ops)

    def _file(self, seg: str, part: str) -> str:
        if part.endswith(".liv"):
            return f"{self.path}/{seg}_{part}"
        return f"{self.path}/{seg}.{part}"

    def _latest_commit(self, want: int | None = None) -> tuple[int, dict | None]:
        gens = []
        try:
            for e in self.fs.ls(self.path):
                name = e["path"].rsplit("/", 1)[-1]
                if name.startswith("segments_"):
                    gens.append(int(name[9:]))
        except (FileNotFoundError, OSError):
            return 0, None
        for gen in sorted(gens, reverse=True):
            if want is not None and gen != want:
                continue
            try:
                meta, _ = codec.unpack(self.fs.cat(f"{self.path}/segments_{gen}"),
                                       f"segments_{gen}")
                return gen, meta
            except (codec.CorruptIndexError, OSError) as exc:
                log.warning("shard %s: commit %d unreadable (%s); trying an older one",
                            self.path, gen, exc)
        if want is not None:
            raise FileNotFoundError(f"{self.path}: commit {want} is gone")
        return 0, None

    # -- writes -------------------------------------------------------------------------

    def lookup(self, doc_id: str) -> tuple[Entry | None, tuple | None]:
        """The newest state of DOC_ID, and where its live document is."""
        if doc_id in self.buffer:
            d = self.buffer[doc_id]
            b = self.builder
            return Entry(b.seq[d], b.version[d], b.term[d]), ("buffer", d)
        tomb = self.tombstones.get(doc_id)
        for seg in reversed(self.segments):
            d = seg.doc_of(doc_id)
            if d >= 0:
                e = Entry(int(seg.seq[d]), int(seg.version[d]), int(seg.term[d]))
                if tomb is not None and tomb.seq > e.seq:
                    break
                return e, (seg, d)
        return tomb, None

    def prepare(self, kind: str, doc_id: str, source: dict | None = None,
                op_type: str = "index", if_seq_no=None, if_primary_term=None,
                external_version=None) -> tuple[list, dict]:
        """On the primary: check versions, assign a sequence number, apply.
        The caller makes the returned operation durable and replicated."""
        with self.lock:
            cur, _ = self.lookup(doc_id)
            exists = cur is not None and not cur.deleted
            if op_type == "create" and exists:
                raise VersionConflict(f"[{doc_id}]: version conflict, document already exists "
                                      f"(current version [{cur.version}])")
            if if_seq_no is not None:
                if not exists or cur.seq != int(if_seq_no) or cur.term != int(if_primary_term):
                    now = (f"current document has seqNo [{cur.seq}] and primary term "
                           f"[{cur.term}]") if exists else "document does not exist"
                    raise VersionConflict(f"[{doc_id}]: version conflict, required seqNo "
                                          f"[{if_seq_no}], primary term [{if_primary_term}]. "
                                          f"{now}")
            if kind == "delete" and not exists:
                seq = self.max_seq + 1
                version = (cur.version + 1) if cur else 1
                op = [seq, self.term, "delete", doc_id, None, version]
                self._apply(op)
                return op, {"result": "not_found", "_version": version, "_seq_no": seq}
            version = (cur.version + 1) if cur else 1
            if external_version is not None:
                if exists and int(external_version) <= cur.version:
                    raise VersionConflict(f"[{doc_id}]: version conflict, current version "
                                          f"[{cur.version}] is higher or equal to the one "
                                          f"provided [{external_version}]")
                version = int(external_version)
            seq = self.max_seq + 1
            raw = json.dumps(source, separators=(",", ":")).encode() if source is not None \
                else None
            op = [seq, self.term, kind, doc_id, raw, version]
            self._apply(op)
            result = "deleted" if kind == "delete" else ("updated" if exists else "created")
            return op, {"result": result, "_version": version, "_seq_no": seq}

    def _apply(self, op: list) -> bool:
        seq, term, kind, doc_id, raw, version = op
        cur, where = self.lookup(doc_id)
        if cur is not None and cur.seq >= seq:
            self.max_seq = max(self.max_seq, seq)
            return False
        if where is not None:
            if where[0] == "buffer":
                self.buffer_dead.add(where[1])
            else:
                # searchers see the old copy go when they see its successor:
                # at the next refresh (as Elasticsearch), not before
                self.segment_dead.append(where)
        if kind == "index":
            parsed, _ = self.schema.mapping.parse(json.loads(raw))
            self.buffer[doc_id] = self.builder.add(doc_id, parsed, raw, seq, version, term)
            self.tombstones.pop(doc_id, None)
            self.stats["indexed"] += 1
        else:
            self.buffer.pop(doc_id, None)
            self.tombstones[doc_id] = Entry(seq, version, term, True)
            self.stats["deletes"] += 1
        self.max_seq = max(self.max_seq, seq)
        self.since_commit.append(op)
        return True

    def adopt(self, name: str) -> int:
        """Take in segment NAME, built by a batch job and written beside the
        shard's files: its documents get this shard's next sequence numbers
        and supersede older copies of their ids. The caller flushes."""
        with self.lock:
            self.refresh()
            seg = Segment.load(name, lambda p: self.fs.cat(self._file(name, p)))
            base = self.max_seq + 1
            seg.seq = np.arange(base, base + seg.maxdoc, dtype=np.int64)
            seg.term = np.full(seg.maxdoc, self.term, dtype=np.int64)
            version = np.ones(seg.maxdoc, dtype=np.int64)
            for d, doc_id in enumerate(seg.ids):
                cur, where = self.lookup(doc_id)
                if cur is not None:
                    version[d] = cur.version + 1
                if where is not None:
                    old, od = where
                    old.live[od] = False
                    if old.name in self.persisted:
                        self.dirty.add(old.name)
                self.tombstones.pop(doc_id, None)
            seg.version = version
            self.counter += 1
            seg.name = f"_{self.term}_{self.counter}"     # written anew, with its numbers
            self.segments = self.segments + [seg]
            self.max_seq = base + seg.maxdoc - 1
            self.stats["indexed"] += seg.maxdoc
            return seg.maxdoc

    def log(self, ops: list[list]) -> None:
        """Make OPS durable in this copy's translog (an hflush)."""
        self.tlog.add(ops)

    def replica_apply(self, ops: list[list]) -> None:
        with self.lock:
            for op in sorted(ops, key=lambda o: o[0]):
                if op[1] > self.term:
                    self.term = op[1]
                self._apply(op)
        if self.tlog is not None and ops:
            self.tlog.add(ops)

    # -- reads --------------------------------------------------------------------------

    def get(self, doc_id: str) -> dict | None:
        """Real-time: the buffer first, then the segments."""
        with self.lock:
            cur, where = self.lookup(doc_id)
            if cur is None or cur.deleted or where is None:
                return None
            if where[0] == "buffer":
                raw = self.builder.sources[where[1]]
            else:
                raw = where[0].source(where[1])
            return {"_source": json.loads(raw), "_version": cur.version, "_seq_no": cur.seq,
                    "_primary_term": cur.term}

    def searchable(self) -> list[Segment]:
        return list(self.segments)

    def doc_count(self) -> int:
        return sum(s.live_count for s in self.segments)

    # -- refresh, flush, merge ------------------------------------------------------------

    def refresh(self) -> None:
        with self.lock:
            if not len(self.builder) and not self.segment_dead:
                return
            for seg, d in self.segment_dead:
                seg.live[d] = False
                if seg.name in self.persisted:
                    self.dirty.add(seg.name)
            self.segment_dead = []
            if len(self.builder):
                seg = self.builder.build()
                for d in self.buffer_dead:
                    seg.live[d] = False
                self.segments = self.segments + [seg]
                self.builder = self._builder()
                self.buffer, self.buffer_dead = {}, set()
            self.stats["refreshes"] += 1
            self.stats["last_refresh"] = time.time()

    def flush(self, rewrite: bool = False) -> int:
        """Write the segments not yet in the DFS and a new commit; the
        translog before it is then no longer needed. REWRITE: write every
        segment anew (a promoted replica trusts no file it did not write)."""
        with self.lock:
            self.refresh()
            if rewrite:
                self.segments = [self._renamed(s) for s in self.segments]
                self.persisted, self.dirty = set(), set()
            for seg in self.segments:
                if seg.name not in self.persisted:
                    for part, data in seg.files().items():
                        self._write(self._file(seg.name, part), data)
                    if not seg.live.all():
                        seg.del_gen = 1
                        self._write(self._file(seg.name, f"{seg.del_gen}.liv"), seg.live_file())
                    self.persisted.add(seg.name)
                elif seg.name in self.dirty:
                    seg.del_gen += 1
                    self._write(self._file(seg.name, f"{seg.del_gen}.liv"), seg.live_file())
            self.dirty.clear()
            new_tl = self.tlog.roll() if self.tlog is not None else 0
            gen = self.commit_gen + 1
            meta = {"segments": [[s.name, s.del_gen] for s in self.segments],
                    "max_seq": self.max_seq, "term": self.term, "translog_gen": new_tl,
                    "counter": self.counter, "written": time.time()}
            self._write(f"{self.path}/segments_{gen}", codec.pack({}, meta))
            self.commit_gen = gen
            self.since_commit = []
            self.stats["flushes"] += 1
        if self.tlog is not None:
            self.tlog.trim(new_tl)
        self._collect_garbage()
        return gen

    def _renamed(self, seg: Segment) -> Segment:
        self.counter += 1
        seg.name, seg.del_gen = f"_{self.term}_{self.counter}", 0
        return seg

    def _write(self, path: str, data: bytes) -> None:
        with self.fs.open(path, "wb", replication=self.replication) as f:
            f.write(data)

    def _collect_garbage(self) -> None:
        """Remove commits past the newest KEEP_COMMITS and files none of them name."""
        try:
            names = [e["path"].rsplit("/", 1)[-1] for e in self.fs.ls(self.path)]
        except OSError:
            return
        gens = sorted((int(n[9:]) for n in names if n.startswith("segments_")), reverse=True)
        keep: set[str] = set()
        for gen in gens[:KEEP_COMMITS]:
            try:
                meta, _ = codec.unpack(self.fs.cat(f"{self.path}/segments_{gen}"))
            except (codec.CorruptIndexError, OSError):
                return
            for name, del_gen in meta["segments"]:
                keep.update(f"{name}.{p}" for p in PARTS)
                keep.add(f"{name}_{del_gen}.liv")
        with self.lock:
            for s in self.segments:        # in use, though no commit names them yet
                keep.update(f"{s.name}.{p}" for p in PARTS)
                keep.add(f"{s.name}_{s.del_gen}.liv")
        for n in names:
            stale_commit = n.startswith("segments_") and int(n[9:]) not in gens[:KEEP_COMMITS]
            stale_file = n.startswith("_") and n not in keep
            if stale_commit or stale_file:
                try:
                    self.fs.rm(f"{self.path}/{n}")
                except OSError:
                    pass

    def maybe_merge(self, policy: merge.TieredPolicy | None = None, force_to: int = 0) -> bool:
        policy = policy or merge.TieredPolicy()
        with self.lock:
            self.refresh()              # a merge drops dead documents: none may be pending
            segs = self.segments
            if force_to:
                if len(segs) <= force_to and all(s.live.all() for s in segs):
                    return False
                pick = [s.name for s in segs]
            else:
                pick = policy.pick([(s.name, s.maxdoc, s.live_count) for s in segs])
            if not pick:
                return False
            chosen = [s for s in segs if s.name in pick]
            self.counter += 1
            merged = merge.merge(f"_{self.term}_{self.counter}", chosen)
            at = segs.index(chosen[0])
            rest = [s for s in segs if s.name not in pick]
            self.segments = rest[:at] + [merged] + rest[at:] if merged.maxdoc else rest
            self.stats["merges"] += 1
            self.stats["last_merge"] = time.time()
            return True

    def close(self) -> None:
        if self.tlog is not None:
            self.tlog.close()

    def info(self) -> dict:
        segs = self.segments
        return {"docs": int(sum(s.live_count for s in segs)),
                "deleted": int(sum(s.maxdoc - s.live_count for s in segs)),
                "segments": len(segs), "buffered": len(self.builder), "max_seq": self.max_seq,
                "commit": self.commit_gen, "primary": self.primary, "term": self.term,
                "bytes": int(sum(_size(s) for s in segs)), **self.stats}


def _size(seg: Segment) -> int:
    total = 0
    for f in seg.fields.values():
        total += f.docs.nbytes + f.freqs.nbytes + (f.positions.nbytes if f.positions is not None
                                                   else 0)
    return total + sum(a.nbytes for a in seg.norms.values()) + len(seg.ids) * 8 + \
        int(np.sum([len(x) for x in seg.ids]) if seg.ids else 0)

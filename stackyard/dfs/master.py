"""The master's request handling: namespace ops, chunk allocation and commit,
leases, read locations, liveness and repair. Synchronous on purpose: a
mutation is applied, logged and fsync'd, and replied to without yielding to
another request in between, so nothing a client saw can be lost by a crash.
A failure to write the log is fatal (as for HDFS's NameNode): state in
memory must never run ahead of the disk for longer than one op.

The HTTP wiring and timers are in master_daemon.py.
"""

from __future__ import annotations

import getpass
import logging
import posixpath
import secrets
import time
from pathlib import Path

import msgpack

from stackyard.cluster.config import MasterConfig
from stackyard.dfs import ops, placement, quota, trash
from stackyard.dfs.chunkmap import Action, ChunkMap, DeleteReplica, Replicate, Rollback
from stackyard.dfs.journal import Journal
from stackyard.dfs.leases import Leases
from stackyard.dfs.master_admin import MasterAdmin
from stackyard.dfs.namespace import Inode, Namespace, check_replication, normalize
from stackyard.dfs.permissions import (
    ALL,
    EXECUTE,
    READ,
    WRITE,
    Caller,
    check,
    check_owner,
    check_sticky,
    check_subtree,
    rwx,
    walk_checked,
)
from stackyard.dfs.quota import NO_QUOTA
from stackyard.errors import SafeModeError, fs_error
from stackyard.net.auth import Secret
from stackyard.storage.oplog import OpLog

log = logging.getLogger("stackyard.master")


class Master(MasterAdmin):
    def __init__(self, cfg: MasterConfig, secret: Secret, clock=time.time):
        self.cfg = cfg
        self.secret = secret
        self.clock = clock
        self.superuser = cfg.superuser or getpass.getuser()
        self.ns = Namespace(self.superuser, max_items=cfg.max_directory_items)
        self.skipped: list[str] = []        # records replay could not apply, named
        self.chunkmap = ChunkMap(self.ns.chunks, cfg.dead_after, cfg.replication_timeout)
        self.leases = Leases(cfg.lease_timeout)
        self.outbox: dict[str, list[dict]] = {}
        self.must_report: set[str] = set()  # servers whose next heartbeat asks a full report
        self.next_emptier = 0.0             # the trash emptier's next round
        self.started = clock()
        self._safe = True
        self.journal = Journal(Path(cfg.data_dir) / "journal", cfg.node_id, cfg.peer_map(),
                               self._apply_record, self._restore, cfg.election_ticks,
                               cfg.heartbeat_ticks)
        if self.journal.empty and list(Path(cfg.data_dir).glob("edits.*")):
            self._import_op_log()
        self.journal.on_active, self.journal.on_deposed = self._activated, self._deposed
        if self.journal.active:         # a master alone was elected while the log loaded
            self._activated()
        log.info("recovered %d files, %d chunks at index %d",
                 sum(1 for _ in self.ns.walk_files(self.ns.root)), len(self.ns.chunks),
                 self.journal.index)

    # -- the replicated state ----------------------------------------------------

    def _apply_record(self, data: bytes, number: int) -> None:
        """Committed record NUMBER of the log (replay, or a standby following)."""
        rec = msgpack.unpackb(data)
        try:
            self.ns.apply(ops.decode(rec))
        except Exception as exc:    # a record from before today's bounds: say which
            what = f"op log record {number} ({rec.get('op')} {str(rec.get('path', ''))[:80]})"
            self.skipped.append(f"{what}: {type(exc).__name__}: {exc}"[:300])
            log.error("cannot apply %s, skipped: %s", what, exc)

    def _restore(self, image: bytes) -> None:
        items = self.cfg.max_directory_items
        self.ns = (Namespace.load(msgpack.unpackb(image), items) if image
                   else Namespace(self.superuser, max_items=items))
        self.chunkmap.chunks = self.ns.chunks

    def _import_op_log(self) -> None:
        """A master's op log from before it was replicated becomes the new
        log's first snapshot; the old files stay where they are."""
        image, records = OpLog(self.cfg.data_dir).recover()
        self._restore(msgpack.packb(image) if image else b"")
        for rec in records:
            rec = dict(rec)
            tx = rec.pop("tx")
            self._apply_record(msgpack.packb(rec), tx)
        self.journal.seed(msgpack.packb(self.ns.dump()))
        log.info("imported the op log of %s into the replicated log", self.cfg.data_dir)

    def _activated(self) -> None:
        """Elected: every file under construction gets a fresh lease, every
        chunkserver sends a full report, and safe mode holds repairs until the
        reports are in."""
        self.started, self._safe = self.clock(), True
        self.next_emptier = self.started + 60 * (self.cfg.trash_checkpoint_interval
                                                 or self.cfg.trash_interval)
        self.leases = Leases(self.cfg.lease_timeout)
        for f in self.ns.walk_files(self.ns.root):
            if f.holder:
                self.leases.grant(Namespace.path_of(f), f.holder, self.started)
        self.chunkmap.deleting.clear()
        for handle in [h for h in self.chunkmap.replicas if h not in self.ns.chunks]:
            self.chunkmap.forget_chunks([handle])
        self.must_report = set(self.chunkmap.servers)
        self.outbox = {}

    def _deposed(self) -> None:
        """Lost the leadership: drop what was applied ahead of the commit."""
        image, records = self.journal.committed_state()
        self._restore(image)
        for index, data in records:
            self._apply_record(data, index)
        self.outbox, self.leases = {}, Leases(self.cfg.lease_timeout)

    @property
    def active(self) -> bool:
        return self.journal.active

    # -- helpers ------------------------------------------------------------------

    def mutate(self, op: ops.Op):
        self.journal.check_active()
        record = ops.encode(op)
        try:                # an op that cannot be logged must not change the namespace
            data = msgpack.packb(record)
        except (OverflowError, TypeError, ValueError) as exc:
            raise ValueError(f"{type(op).__name__}: an argument is out of range ({exc})") from None
        result = self.ns.apply(op)
        self.journal.submit(data)
        return result

    def checkpoint_if_due(self) -> None:
        """A standby's snapshot, or the active one's once its records committed."""
        if self.journal.settled and self.journal.log_bytes > self.cfg.checkpoint_log_bytes:
            self.journal.compact(msgpack.packb(self.ns.dump()))

    def caller(self, a: dict) -> Caller:
        return Caller(a.get("user") or "nobody", a.get("groups") or [], self.superuser)

    @property
    def in_safemode(self) -> bool:
        """HDFS's safe mode: right after a start the master knows no replica
        locations, so it must not mistake unreported chunks for lost ones. It
        ends when every written chunk has a reported replica (at once, on an
        empty file system) or when `safemode` seconds have passed."""
        if self._safe:
            elapsed = self.clock() - self.started
            written = [h for h, c in self.ns.chunks.items() if c.version]
            if elapsed >= self.cfg.safemode or not written or (
                    elapsed >= self.cfg.heartbeat_interval
                    and all(self.chunkmap.locations(h) for h in written)):
                self._safe = False
        return self._safe

    def stat(self, node: Inode, path: str) -> dict:
        d = {"path": path, "name": node.name, "type": "directory" if node.is_dir else "file",
             "owner": node.owner, "group": node.group, "mode": node.mode,
             "permission": ("d" if node.is_dir else "-") + rwx(node.mode), "mtime": node.mtime}
        if node.is_dir:
            d.update(length=0, replication=0, chunk_size=0, chunks=0, children=len(node.children))
        else:
            d.update(length=node.length, replication=node.replication, chunk_size=node.chunk_size,
                     chunks=len(node.chunks), under_construction=bool(node.holder))
        return d

    def _holding(self, path: str, client: str) -> Inode:
        node = self.ns.get_file(path)
        if not node.holder or node.holder != client:
            raise fs_error("EBUSY", path, "No lease on the file: it was closed or the lease expired")
        return node

    def _deliver(self, actions: list[Action]) -> None:
        if not self.active:
            return          # a standby judges replicas but orders nothing
        for a in actions:
            if isinstance(a, Replicate):
                cmd = {"kind": "replicate", "handle": a.handle, "version": a.version,
                       "length": a.length, "source": a.source,
                       "token": self.secret.chunk_token(a.handle, "r", self.cfg.token_lifetime)}
            elif isinstance(a, DeleteReplica):
                cmd = {"kind": "delete", "handle": a.handle}
            elif isinstance(a, Rollback):
                cmd = {"kind": "rollback", "handle": a.handle, "version": a.version,
                       "length": a.length, "expect": a.expect}
            self.outbox.setdefault(a.server_id, []).append(cmd)

    # -- namespace RPCs -----------------------------------------------------------

    def rpc_mkdir(self, a: dict) -> bool:
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, WRITE, parent=True)
        if a.get("retry") and (done := self.ns.lookup(path)) is not None and done.is_dir:
            return True     # a retry whose first try was applied by a deposed master
        return self.mutate(ops.Mkdir(path, c.user, a.get("group") or "supergroup",
                                     a.get("mode", 0o755), self.clock(), bool(a.get("parents"))))

    def rpc_create(self, a: dict) -> dict:
        c = self.caller(a)
        path = normalize(a["path"])
        repl = check_replication(a.get("replication") or self.cfg.default_replication)
        size = a.get("chunk_size") or self.cfg.default_chunk_size
        if type(size) is not int or size <= 0 or size % (64 * 1024):
            raise ValueError(f"chunk_size: must be a positive multiple of 64 KiB, got {size}")
        check(self.ns, c, path, WRITE, parent=True)
        old = self.ns.lookup(path)
        if a.get("retry") and old is not None and not old.is_dir and \
                old.holder == a["client"] and not old.chunks:
            self.leases.grant(path, a["client"], self.clock())    # its own create, retried
            return {**self.stat(old, path), "lease_timeout": self.cfg.lease_timeout}
        if old is not None and not old.is_dir and a.get("overwrite"):
            check(self.ns, c, path, WRITE)       # replacing a file needs write on it
        parent = self.ns.lookup(posixpath.dirname(path))
        if parent is None and a.get("create_parent", True):
            self.rpc_mkdir({**a, "path": posixpath.dirname(path), "parents": True})
            parent = self.ns.lookup(posixpath.dirname(path))
        node = self.mutate(ops.Create(path, c.user, parent.group if parent else "supergroup",
                                      a.get("mode", 0o644), self.clock(), repl, size,
                                      bool(a.get("overwrite")), a["client"]))
        self.leases.grant(path, a["client"], self.clock())
        return {**self.stat(node, path), "lease_timeout": self.cfg.lease_timeout}

    def rpc_append(self, a: dict) -> dict:
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, WRITE)
        node = self.mutate(ops.OpenAppend(path, a["client"]))
        self.leases.grant(path, a["client"], self.clock())
        last = node.chunks[-1].length if node.chunks else 0
        return {**self.stat(node, path), "lease_timeout": self.cfg.lease_timeout,
                "last_length": last}

    def rpc_begin_write(self, a: dict) -> dict:
        path, client, index = normalize(a["path"]), a["client"], a["index"]
        node = self._holding(path, client)
        exclude = set(a.get("exclude") or ())
        fresh = False
        live = [s for s in self.chunkmap.writable_servers() if s.server_id not in exclude]
        # A writer may have two chunks in flight (it commits them in order), so
        # any chunk that is not full yet may be written, not only the last.
        if index == len(node.chunks):
            handle = secrets.token_hex(8)
            while handle in self.ns.chunks:
                handle = secrets.token_hex(8)
            chunk = self.mutate(ops.AddChunk(path, handle, 1))
            fresh = True
        elif 0 <= index < len(node.chunks) and node.chunks[index].length < node.chunk_size:
            chunk = node.chunks[index]
        else:
            raise ValueError(f"index: chunk {index} of {path} is full or does not exist")
        if chunk.version == 0:
            ids = placement.choose_targets(
                node.replication, [ChunkMap.candidate(s) for s in live], [], node.chunk_size,
                self.chunkmap.rng)
        else:
            ids = [s.server_id for s in self.chunkmap.locations(chunk.handle)
                   if s.server_id not in exclude]
        if not ids:
            if self.in_safemode:
                raise SafeModeError("master is starting up: no chunkserver has reported yet")
            raise fs_error("EIO", path, "No live chunkserver can take the write"
                           if chunk.version == 0 else "Every replica of the last chunk is gone")
        if fresh:
            version = 1                      # issued by the AddChunk just logged
        else:
            version = max(chunk.issued, chunk.version) + 1
            self.mutate(ops.BumpVersion(chunk.handle, version))
        self.leases.grant(path, client, self.clock())
        servers = self.chunkmap.servers
        pipeline = [servers[i].address for i in ids]
        return {"handle": chunk.handle, "version": version, "offset": chunk.length,
                "pipeline": [{"id": i, "address": servers[i].address} for i in ids],
                "token": self.secret.chunk_token(chunk.handle, "w", self.cfg.token_lifetime,
                                                 pipeline)}

    def rpc_commit(self, a: dict) -> dict:
        path, handle = normalize(a["path"]), a["handle"]
        node = self._holding(path, a["client"])
        chunk = self.ns.chunks.get(handle)
        if chunk is None or chunk.file is not node:
            raise ValueError(f"handle: chunk {handle} is not part of {path}")
        if a["version"] != chunk.issued:
            raise fs_error("EBUSY", path, f"stale write of chunk {handle} (version {a['version']})")
        if not a["servers"]:
            raise ValueError("servers: a commit needs at least one replica")
        self.mutate(ops.CommitChunk(handle, a["version"], a["length"], self.clock()))
        self._deliver(self.chunkmap.committed(handle, a["servers"]))
        self.leases.grant(path, a["client"], self.clock())
        return {"length": node.length}

    def rpc_close(self, a: dict) -> dict:
        path = normalize(a["path"])
        done = self.ns.lookup(path)
        if a.get("retry") and done is not None and not done.is_dir and not done.holder:
            return self.stat(done, path)
        node = self.mutate(ops.Close(path, a["client"], self.clock()))
        self.leases.release(path)
        return self.stat(node, path)

    def rpc_renew(self, a: dict) -> int:
        return self.leases.renew(a["client"], self.clock())

    def rpc_stat(self, a: dict) -> dict:
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, 0)
        return self.stat(self.ns.get(path), path)

    def rpc_list(self, a: dict) -> list[dict]:
        c = self.caller(a)
        path = normalize(a["path"])
        node = self.ns.get(path)
        if not node.is_dir:
            check(self.ns, c, path, 0)
            return [self.stat(node, path)]
        check(self.ns, c, path, READ | EXECUTE)
        return [self.stat(ch, posixpath.join(path, name))
                for name, ch in sorted(node.children.items())]

    def rpc_delete(self, a: dict) -> bool:
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, WRITE, parent=True)
        node = self.ns.lookup(path)
        if node is not None:
            check_sticky(c, node, path)
            if node.is_dir and a.get("recursive"):
                check_subtree(self.ns, c, node, ALL, ignore_empty=True)
        if node is None and a.get("retry"):
            return True
        handles = self.mutate(ops.Delete(path, bool(a.get("recursive"))))
        self.leases.release_tree(path)
        self._deliver(self.chunkmap.forget_chunks(handles))
        return True

    def rpc_rename(self, a: dict) -> str:
        c = self.caller(a)
        src, dst = normalize(a["src"]), normalize(a["dst"])
        check(self.ns, c, src, WRITE, parent=True)
        node = self.ns.lookup(src)
        if node is not None:
            check_sticky(c, node, src)
            into = self.ns.lookup(dst)
            if into is not None and into.is_dir:     # moved into DST: DST is the parent
                check(self.ns, c, posixpath.join(dst, node.name), WRITE, parent=True)
            else:
                check(self.ns, c, dst, WRITE, parent=True)
        if node is None and a.get("retry") and self.ns.lookup(dst) is not None:
            return dst
        final = self.mutate(ops.Rename(src, dst, self.clock()))
        self.leases.moved(src, final)
        return final

    def rpc_truncate(self, a: dict) -> bool:
        """HDFS's truncate. True: the file reads at its new length at once and
        may be appended to (Hadoop's false, "wait for block recovery", never
        applies: replicas keep their version and are trimmed in the background)."""
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, WRITE)
        dropped, cut = self.mutate(ops.Truncate(path, a["length"], self.clock()))
        self._deliver(self.chunkmap.forget_chunks(dropped))
        if cut is not None:
            self._deliver(self.chunkmap.trim(cut.handle))
        return True

    def rpc_setrep(self, a: dict) -> int:
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, WRITE)
        return len(self.mutate(ops.SetReplication(path, check_replication(a["replication"]))))

    def rpc_chmod(self, a: dict) -> bool:
        c = self.caller(a)
        path = normalize(a["path"])
        check_owner(c, self.ns.get(path), path)
        self.mutate(ops.SetPermission(path, int(a["mode"])))
        return True

    def rpc_chown(self, a: dict) -> bool:
        c = self.caller(a)
        path = normalize(a["path"])
        node = self.ns.get(path)
        if a.get("owner") and not c.is_super:
            raise fs_error("EACCES", path, f"Permission denied: non-super user {c.user} cannot change owner")
        group = a.get("group")
        if group and not c.is_super and group not in c.groups:   # HDFS: only to one's own groups
            raise fs_error("EACCES", path, f"Permission denied: user {c.user} does not belong "
                           f"to {group}")
        check_owner(c, node, path)
        self.mutate(ops.SetOwner(path, a.get("owner") or "", a.get("group") or ""))
        return True

    def rpc_du(self, a: dict) -> dict:
        """HDFS's content summary: READ+EXECUTE on every directory it counts."""
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, 0)
        files, dirs = [], 0
        for n in walk_checked(self.ns, c, self.ns.get(path), READ | EXECUTE):
            if n.is_dir:
                dirs += 1
            else:
                files.append(n)
        length = sum(f.length for f in files)
        node = self.ns.get(path)
        return {"length": length, "space": sum(f.length * f.replication for f in files),
                "files": len(files), "directories": dirs,
                "quota": node.ns_quota, "space_quota": node.ds_quota,
                "quota_used": (dirs + len(files)) if node.ns_quota != NO_QUOTA else 0,
                "space_used": sum(quota.file_space(f) for f in files)}

    # -- data location RPCs -------------------------------------------------------

    def rpc_locations(self, a: dict) -> dict:
        c = self.caller(a)
        path = normalize(a["path"])
        check(self.ns, c, path, READ)
        node = self.ns.get_file(path)
        start, end = a.get("offset", 0), a.get("offset", 0) + a.get("length", 1 << 62)
        out, pos = [], 0
        for index, chunk in enumerate(node.chunks):
            if pos < end and pos + chunk.length > start:
                out.append({
                    "index": index, "handle": chunk.handle, "version": chunk.version,
                    "offset": pos, "length": chunk.length,
                    "locations": [{"id": s.server_id, "address": s.address, "rack": s.rack}
                                  for s in self.chunkmap.locations(chunk.handle)],
                    "token": self.secret.chunk_token(chunk.handle, "r", self.cfg.token_lifetime)})
            pos += chunk.length
        return {"length": node.length, "chunk_size": node.chunk_size, "chunks": out,
                "safemode": self.in_safemode, "under_construction": bool(node.holder)}

    def rpc_bad_replica(self, a: dict) -> bool:
        by_addr = {s.address: s.server_id for s in self.chunkmap.servers.values()}
        sid = by_addr.get(a["address"])
        if sid is not None:
            log.warning("replica of %s on %s reported corrupt", a["handle"], a["address"])
            self.chunkmap.bad_replica(a["handle"], sid)
        return sid is not None

    def rpc_fsck(self, a: dict) -> dict:
        path = normalize(a.get("path", "/"))
        files = []
        totals = {"healthy": 0, "under-replicated": 0, "corrupt": 0, "missing": 0}
        for f in self.ns.walk_files(self.ns.get(path)):
            chunks = []
            for chunk in f.chunks:
                if chunk.version == 0:
                    continue
                h = self.chunkmap.health(chunk.handle)
                totals[h.state] += 1
                chunks.append({"handle": h.handle, "state": h.state, "live": h.live,
                               "corrupt": h.corrupt, "expected": h.expected,
                               "length": chunk.length})
            files.append({"path": Namespace.path_of(f), "length": f.length,
                          "replication": f.replication, "chunks": chunks,
                          "under_construction": bool(f.holder)})
        bad = totals["corrupt"] + totals["missing"]
        return {"path": path, "files": files, "totals": totals,
                "status": "CORRUPT" if bad else "HEALTHY",
                "live_servers": len(self.chunkmap.live_servers()), "safemode": self.in_safemode}

    def rpc_cluster(self, _a: dict) -> dict:
        servers = []
        for s in sorted(self.chunkmap.servers.values(), key=lambda s: s.address):
            servers.append({"id": s.server_id, "address": s.address, "rack": s.rack,
                            "alive": s.alive, "capacity": s.capacity, "used": s.used,
                            "free": s.free, "chunks": len(s.chunks),
                            "last_seen": round(self.clock() - s.last_seen, 1),
                            **self._admin_state(s)})
        totals = {"healthy": 0, "under-replicated": 0, "corrupt": 0, "missing": 0}
        for handle, chunk in self.ns.chunks.items():
            if chunk.version:
                totals[self.chunkmap.health(handle).state] += 1
        return {"servers": servers, "chunks": totals, "files": sum(
                1 for _ in self.ns.walk_files(self.ns.root)), "txid": self.journal.index,
                "role": "active" if self.active else "standby", "epoch": self.journal.epoch,
                "node": self.cfg.node_id, "active_master": self.journal.leader,
                "safemode": self.in_safemode, "leases": len(self.leases),
                "moves": len(self.chunkmap.moves),
                "uptime": round(self.clock() - self.started, 1), "skipped": self.skipped[:20]}

    # -- chunkserver RPCs ---------------------------------------------------------

    def rpc_heartbeat(self, a: dict) -> dict:
        sid = a["server_id"]
        known = self.chunkmap.heartbeat(sid, a["address"], a["rack"], a["capacity"], a["used"],
                                        a["free"], self.clock())
        self.chunkmap.deleted(sid, a.get("deleted") or [])
        if sid in self.must_report:
            self.must_report.discard(sid)
            known = False
        if not self.active:
            return {"register": not known, "commands": [], "active": False, "epoch": 0}
        return {"register": not known, "commands": self.outbox.pop(sid, []), "active": True,
                "epoch": self.journal.epoch}

    def rpc_report(self, a: dict) -> bool:
        sid = a["server_id"]
        if sid not in self.chunkmap.servers:
            raise fs_error("ENOENT", None, "unknown chunkserver: send a heartbeat first")
        self._deliver(self.chunkmap.report(sid, [tuple(e) for e in a["entries"]], bool(a["full"])))
        return True

    # -- the periodic check --------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        self.checkpoint_if_due()
        self._sync_draining()
        if not self.active:
            self.chunkmap.tick(now, False, set())       # who is alive, for stale reads
            return
        every = 60 * (self.cfg.trash_checkpoint_interval or self.cfg.trash_interval)
        if every and now >= self.next_emptier:
            self.next_emptier = now + every
            for op in trash.emptier_ops(self.ns, now, self.cfg.trash_interval * 60):
                self._empty(op)
        for path, holder in self.leases.expired(now):
            log.warning("lease of %s on %s expired: closing the file", holder, path)
            self.leases.release(path)
            node = self.ns.lookup(path)
            if node is not None and not node.is_dir and node.holder == holder:
                self.mutate(ops.Close(path, holder, now))
        busy = set()        # chunks still being written: those of the leased files
        for path in self.leases.paths():
            f = self.ns.lookup(path)
            if f is not None and not f.is_dir and f.holder:
                busy.update(c.handle for c in f.chunks if c.length < f.chunk_size)
        self._deliver(self.chunkmap.tick(now, not self.in_safemode, busy))

    def close(self) -> None:
        self.journal.close()

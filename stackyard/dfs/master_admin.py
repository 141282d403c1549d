"""The master's administrative RPCs: server defaults, the trash's expunge
and emptier steps, directory quotas, decommissioning chunkservers. A mixin
of Master (master.py), whose state it uses."""

from __future__ import annotations

import logging

from stackyard.cluster.config import BLOCK
from stackyard.dfs import ops, trash
from stackyard.dfs.namespace import normalize
from stackyard.errors import fs_error

log = logging.getLogger("stackyard.master")


class MasterAdmin:
    def rpc_server_defaults(self, _a: dict) -> dict:
        """HDFS's FsServerDefaults: what clients use unless told otherwise."""
        c = self.cfg
        return {"replication": c.default_replication, "chunk_size": c.default_chunk_size,
                "trash_interval": c.trash_interval, "bytes_per_checksum": BLOCK}

    def rpc_expunge(self, a: dict) -> int:
        """`-expunge`: a checkpoint of the caller's trash now, and the old
        checkpoints (all of them with `immediate`) deleted. Ops applied."""
        c = self.caller(a)
        mine = [op for op in trash.emptier_ops(self.ns, self.clock(), self.cfg.trash_interval * 60,
                                               bool(a.get("immediate")))
                if (op.path if isinstance(op, ops.Delete) else op.src).startswith(
                    trash.trash_root(c.user) + "/")]
        for op in mine:
            self._empty(op)
        return len(mine)

    def _empty(self, op: ops.Op) -> None:
        try:
            result = self.mutate(op)
        except OSError as exc:          # gone since: someone else emptied it
            log.info("trash: %s skipped: %s", type(op).__name__, exc)
            return
        if isinstance(op, ops.Delete):
            self._deliver(self.chunkmap.forget_chunks(result))

    def rpc_setquota(self, a: dict) -> bool:
        """dfsadmin's -setQuota / -setSpaceQuota / -clr...: the superuser's."""
        c = self.caller(a)
        path = normalize(a["path"])
        if not c.is_super:
            raise fs_error("EACCES", path, f"Access denied for user {c.user}. Superuser "
                           "privilege is required")
        self.mutate(ops.SetQuota(path, a.get("names"), a.get("space")))
        return True

    def _admin_state(self, s) -> dict:
        """HDFS's admin state of a chunkserver, and how many of its chunks
        still wait for copies elsewhere while it is drained."""
        if s.address not in self.ns.decommissioned:
            return {"admin_state": "In Service", "pending": 0}
        pending = self.chunkmap.drain_pending(s.server_id)
        return {"admin_state": "Decommission In Progress" if pending else "Decommissioned",
                "pending": pending}

    def rpc_decommission(self, a: dict) -> dict:
        """Drain the chunkserver at `address` (`on`, the default) or take it
        back into service; the superuser's, as dfsadmin is."""
        c = self.caller(a)
        if not c.is_super:
            raise fs_error("EACCES", None, f"Access denied for user {c.user}. Superuser "
                           "privilege is required")
        address, on = a["address"], a.get("on", True)
        known = {s.address: s for s in self.chunkmap.servers.values()}
        if on and address not in known:
            raise fs_error("ENOENT", None, f"no chunkserver at {address} "
                           f"(known: {', '.join(sorted(known)) or 'none'})")
        self.mutate(ops.Decommission(address, bool(on)))
        self._sync_draining()
        s = known.get(address)
        return {"address": address, **(self._admin_state(s) if s else {"admin_state": "In Service"})}

    def _sync_draining(self) -> None:
        self.chunkmap.draining = {sid for sid, s in self.chunkmap.servers.items()
                                  if s.address in self.ns.decommissioned}

    def rpc_server_chunks(self, a: dict) -> list:
        """[handle, length] of up to `limit` chunks on server `id` that the
        balancer may move (closed files' chunks, none moving)."""
        s = self.chunkmap.servers.get(a["id"])
        if s is None:
            raise fs_error("ENOENT", None, f"no chunkserver {str(a['id'])[:40]}")
        limit = min(int(a.get("limit", 1000)), 10_000)
        out = []
        for h in sorted(s.chunks):
            c = self.ns.chunks.get(h)
            if c is not None and c.version and c.file is not None and not c.file.holder \
                    and h not in self.chunkmap.moves:
                out.append([h, c.length])
                if len(out) >= limit:
                    break
        return out

    def rpc_move_replica(self, a: dict) -> bool:
        """Copy a replica from server `source` to `target`, then drop the
        source's: the superuser's, as HDFS's balancer runs as the superuser."""
        c = self.caller(a)
        if not c.is_super:
            raise fs_error("EACCES", None, f"Access denied for user {c.user}. Superuser "
                           "privilege is required")
        self._deliver(self.chunkmap.move(a["handle"], a["source"], a["target"], self.clock()))
        return True

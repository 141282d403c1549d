"""Where each chunk's replicas are, which servers are alive, and what to do
about it. Pure: events in (heartbeats, chunk reports, commits, bad-replica
reports, clock ticks), actions out (replicate, delete, roll back). The
master's service delivers the actions to chunkservers in heartbeat replies.

Replica locations are soft state, learnt from reports, never logged (GFS).
A reported replica is judged against the namespace's committed version and
length of its chunk:

    version <  committed                      stale: delete
    version == committed, length >= committed good (a longer one of a closed
                                              file, truncated, is trimmed)
    committed < version <= issued, not being written
                                              an uncommitted write: roll back
                                              to the committed version and
                                              length (every write first
                                              truncates to the committed
                                              length, so the prefix is intact)
    anything else, or an unknown handle       delete

A replica the master has ordered deleted is not counted again, whatever a
report says, until the server confirms the deletion (HDFS's invalidate
sets); nor is that server given a new copy of the chunk meanwhile. Without
this, a report that crosses a delete command revives the replica, the
"excess" is trimmed elsewhere, and the last copies can all go.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from stackyard.dfs import placement
from stackyard.dfs.namespace import Chunk


@dataclass
class Server:
    server_id: str
    address: str
    rack: str
    capacity: int = 0
    used: int = 0
    free: int = 0
    last_seen: float = 0.0
    alive: bool = True
    chunks: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Replicate:
    server_id: str       # the target: it pulls the chunk from `source`
    handle: str
    version: int
    length: int
    source: str          # address of a good replica


@dataclass(frozen=True)
class DeleteReplica:
    server_id: str
    handle: str


@dataclass(frozen=True)
class Rollback:
    """Cut a replica to VERSION and LENGTH, if its version is still EXPECT
    (0: any): a trim that crosses a new write must not undo it."""
    server_id: str
    handle: str
    version: int
    length: int
    expect: int = 0


Action = Replicate | DeleteReplica | Rollback


@dataclass(frozen=True)
class ChunkHealth:
    handle: str
    live: list[str]        # server addresses with a good replica
    corrupt: list[str]
    expected: int
    state: str             # healthy | under-replicated | corrupt | missing


class ChunkMap:
    def __init__(self, chunks: dict[str, Chunk], dead_after: float, replication_timeout: float,
                 seed: int | None = None):
        self.chunks = chunks               # the namespace's chunk table, shared, read-only here
        self.dead_after = dead_after
        self.replication_timeout = replication_timeout
        self.servers: dict[str, Server] = {}
        self.replicas: dict[str, set[str]] = {}
        self.corrupt: dict[str, set[str]] = {}
        self.pending: dict[str, dict[str, float]] = {}  # handle -> target -> deadline
        self.deleting: dict[str, set[str]] = {}         # server -> handles ordered deleted
        # servers being decommissioned: their replicas serve as sources but do
        # not count, and they take no new ones (HDFS's decommissioning)
        self.draining: set[str] = set()
        self.moves: dict[str, tuple[str, str]] = {}     # handle -> (source, target): balancer
        self.rng = random.Random(seed)

    # -- events ---------------------------------------------------------------

    def heartbeat(self, server_id: str, address: str, rack: str, capacity: int, used: int,
                  free: int, now: float) -> bool:
        """Record a heartbeat; False if the server must (re)send a full report."""
        s = self.servers.get(server_id)
        known = s is not None and s.alive
        if s is None:
            s = self.servers[server_id] = Server(server_id, address, rack)
        s.address, s.rack, s.capacity, s.used, s.free = address, rack, capacity, used, free
        s.last_seen, s.alive = now, True
        return known

    def report(self, server_id: str, entries: list, full: bool) -> list[Action]:
        """A chunk report: [(handle, version, length), ...]. FULL replaces what we knew."""
        s = self.servers[server_id]
        actions: list[Action] = []
        seen = set()
        doomed = self.deleting.get(server_id, set())
        for handle, version, length in entries:
            seen.add(handle)
            if handle in doomed or server_id in self.corrupt.get(handle, ()):
                continue        # a replica known bad stays bad whatever its server says
            verdict = self._judge(handle, version, length)
            if verdict == "good":
                self._add(handle, server_id)
                actions.extend(self._trims(handle, [server_id], length))
                actions.extend(self._moved(handle, server_id))
                pend = self.pending.get(handle)
                if pend:
                    pend.pop(server_id, None)
            elif verdict == "rollback":
                c = self.chunks[handle]
                actions.append(Rollback(server_id, handle, c.version, c.length, version))
            elif verdict == "delete":
                actions.append(self._delete(server_id, handle))
        if full:
            for handle in list(s.chunks - seen):
                self._remove(handle, server_id)
            doomed &= seen          # what is no longer there has been deleted
        return actions

    def deleted(self, server_id: str, handles: list[str]) -> None:
        doomed = self.deleting.get(server_id, set())
        for h in handles:
            self._remove(h, server_id)
            self.corrupt.get(h, set()).discard(server_id)
            doomed.discard(h)

    def committed(self, handle: str, server_ids: list[str]) -> list[Action]:
        """A write committed: SERVER_IDS hold the new version; others are stale."""
        actions: list[Action] = [self._delete(sid, handle)
                                 for sid in self.replicas.get(handle, set()) - set(server_ids)]
        for sid in list(self.replicas.get(handle, ())):
            self._remove(handle, sid)
        for sid in server_ids:
            if sid in self.servers:
                self._add(handle, sid)
        return actions

    def move(self, handle: str, source: str, target: str, now: float) -> list[Action]:
        """The balancer's move: copy HANDLE from SOURCE to TARGET, then delete
        it on SOURCE once TARGET reports the copy (HDFS's replaceBlock)."""
        c = self.chunks.get(handle)
        reps = self.replicas.get(handle, set())
        t = self.servers.get(target)
        if c is None or c.version == 0 or source not in reps or t is None or not t.alive:
            raise ValueError(f"handle: cannot move {handle} from {source} to {target}")
        if target in reps or target in self.draining or handle in self.moves:
            raise ValueError(f"handle: {handle} is on {target} already or moving")
        if c.file is not None and c.file.holder:
            raise ValueError(f"handle: {handle} belongs to a file being written")
        self.moves[handle] = (source, target)
        self.pending.setdefault(handle, {})[target] = now + self.replication_timeout
        return [Replicate(target, handle, c.version, c.length, self.servers[source].address)]

    def _moved(self, handle: str, server_id: str) -> list[Action]:
        move = self.moves.get(handle)
        if move is None or move[1] != server_id:
            return []
        del self.moves[handle]
        source = move[0]
        if source in self.replicas.get(handle, ()) and len(self.replicas[handle]) > 1:
            return [self._delete(source, handle)]
        return []

    def trim(self, handle: str) -> list[Action]:
        """A truncated chunk: cut its good replicas to the committed length."""
        return self._trims(handle, list(self.replicas.get(handle, ())), None)

    def _trims(self, handle: str, server_ids: list[str], length: int | None) -> list[Action]:
        """Replicas longer than a closed file's committed chunk (it was
        truncated) are cut back; while a file is written they are longer
        by right."""
        c = self.chunks[handle]
        if (c.file is None or c.file.holder or c.version == 0
                or (length is not None and length <= c.length)):
            return []
        return [Rollback(sid, handle, c.version, c.length, c.version) for sid in server_ids]

    def bad_replica(self, handle: str, server_id: str) -> None:
        """A reader or a scanner found a checksum mismatch: never serve it again;
        delete it once the chunk has enough good replicas (HDFS keeps it until then)."""
        if handle not in self.chunks or server_id not in self.servers:
            return
        self._remove(handle, server_id)
        self.corrupt.setdefault(handle, set()).add(server_id)

    def forget_chunks(self, handles: list[str]) -> list[Action]:
        actions: list[Action] = []
        for h in handles:
            for sid in self.replicas.pop(h, set()) | self.corrupt.pop(h, set()):
                actions.append(self._delete(sid, h))
            self.pending.pop(h, None)
        return actions

    # -- the periodic check -----------------------------------------------------

    def tick(self, now: float, replicate: bool, busy: set[str]) -> list[Action]:
        """Declare silent servers dead; when REPLICATE, repair replica counts.
        BUSY: handles whose last chunk is being written (left alone)."""
        for s in self.servers.values():
            if s.alive and now - s.last_seen > self.dead_after:
                s.alive = False
                self.deleting.pop(s.server_id, None)
                for h in list(s.chunks):
                    self._remove(h, s.server_id)
        if not replicate:
            return []
        actions: list[Action] = []
        for handle, chunk in self.chunks.items():
            if handle in busy or chunk.version == 0:
                continue
            actions.extend(self._repair(handle, chunk, now))
        self.moves = {h: m for h, m in self.moves.items()      # a copy that never came
                      if m[1] in self.pending.get(h, {}) and h in self.chunks}
        return actions

    def _repair(self, handle: str, chunk: Chunk, now: float) -> list[Action]:
        sources = [sid for sid in self.replicas.get(handle, ()) if self.servers[sid].alive]
        live = [sid for sid in sources if sid not in self.draining]
        pend = {t: d for t, d in self.pending.get(handle, {}).items()
                if d > now and self.servers[t].alive}
        self.pending[handle] = pend
        alive_count = sum(1 for s in self.servers.values()
                          if s.alive and s.server_id not in self.draining)
        want = min(chunk.file.replication if chunk.file else 1, alive_count)
        actions: list[Action] = []
        bad = self.corrupt.get(handle)
        if sources and len(live) + len(pend) < want:
            taken = set(sources) | set(pend) | (bad or set()) | self.draining | {
                sid for sid, hs in self.deleting.items() if handle in hs}
            cands = [self.candidate(s) for s in self.servers.values()
                     if s.alive and s.server_id not in taken]
            if not cands and bad:
                # nowhere else for a copy: clear the corrupt replicas so that
                # their servers can take good ones on the next check
                actions.extend(self._delete(sid, handle) for sid in bad
                               if self.servers[sid].alive)
                self.corrupt.pop(handle)
                return actions
            racks = [self.servers[sid].rack for sid in live + list(pend)]
            targets = placement.choose_targets(want - len(live) - len(pend), cands, racks,
                                               chunk.length, self.rng)
            for t in targets:
                source = self.servers[self.rng.choice(sources)]
                pend[t] = now + self.replication_timeout
                actions.append(Replicate(t, handle, chunk.version, chunk.length, source.address))
        elif len(live) > want and not pend:
            for sid in placement.choose_excess(len(live) - want,
                                               [self.candidate(self.servers[s]) for s in live]):
                actions.append(self._delete(sid, handle))
        if bad and len(live) >= want:
            for sid in bad:
                if self.servers[sid].alive:
                    actions.append(self._delete(sid, handle))
            self.corrupt.pop(handle)
        return actions

    # -- views ----------------------------------------------------------------

    def locations(self, handle: str) -> list[Server]:
        live = [self.servers[sid] for sid in self.replicas.get(handle, ())
                if self.servers[sid].alive]
        self.rng.shuffle(live)
        return live

    def health(self, handle: str) -> ChunkHealth:
        chunk = self.chunks[handle]
        live = [s.address for s in self.locations(handle)]
        corrupt = [self.servers[sid].address for sid in self.corrupt.get(handle, ())]
        expected = chunk.file.replication if chunk.file else 1
        if not live:
            state = "corrupt" if corrupt else "missing"
        elif corrupt:
            state = "corrupt"
        elif len(live) < expected:
            state = "under-replicated"
        else:
            state = "healthy"
        return ChunkHealth(handle, sorted(live), sorted(corrupt), expected, state)

    def live_servers(self) -> list[Server]:
        return [s for s in self.servers.values() if s.alive]

    def writable_servers(self) -> list[Server]:
        """Where new chunks may go: live and not being drained."""
        return [s for s in self.servers.values() if s.alive and s.server_id not in self.draining]

    def drain_pending(self, server_id: str) -> int:
        """Chunks on SERVER_ID that still lack their replicas elsewhere."""
        alive = sum(1 for s in self.servers.values()
                    if s.alive and s.server_id not in self.draining)
        pending = 0
        for h in self.servers[server_id].chunks:
            c = self.chunks.get(h)
            if c is None or c.version == 0:
                continue
            want = min(c.file.replication if c.file else 1, alive)
            elsewhere = sum(1 for sid in self.replicas.get(h, ())
                            if sid not in self.draining and self.servers[sid].alive)
            pending += elsewhere < want
        return pending

    # -- helpers ----------------------------------------------------------------

    def _judge(self, handle: str, version: int, length: int) -> str:
        c = self.chunks.get(handle)
        if c is None:
            return "delete"
        if version < c.version:
            return "delete"
        if version == c.version:
            return "good" if length >= c.length else "delete"
        if c.file is not None and c.file.holder:
            return "in-flight"
        return "rollback" if version <= c.issued and length >= c.length else "delete"

    def _delete(self, server_id: str, handle: str) -> DeleteReplica:
        """Order a replica deleted; it stops counting now, whatever reports say."""
        self._remove(handle, server_id)
        self.deleting.setdefault(server_id, set()).add(handle)
        return DeleteReplica(server_id, handle)

    def _add(self, handle: str, server_id: str) -> None:
        self.replicas.setdefault(handle, set()).add(server_id)
        self.servers[server_id].chunks.add(handle)

    def _remove(self, handle: str, server_id: str) -> None:
        reps = self.replicas.get(handle)
        if reps is not None:
            reps.discard(server_id)
        s = self.servers.get(server_id)
        if s is not None:
            s.chunks.discard(handle)

    @staticmethod
    def candidate(s: Server) -> placement.Candidate:
        return placement.Candidate(s.server_id, s.rack, s.used, s.free)

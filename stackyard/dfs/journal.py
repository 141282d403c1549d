"""The master's op log, replicated by Raft across the masters (coord/raft.py,
the same core as the coordination cell's), each master keeping it on its own
disk (coord/raft_log.py).

Why Raft and not a quorum journal as HDFS's QJM: the project has one tested
consensus core, and Raft's leadership doubles as the choice of the active
master, so no second service (ZKFC and ZooKeeper) has to elect one and no
fencing script has to stop the old one. The leader is the active master;
its term is the epoch that fences a deposed one: chunkservers refuse the
commands of a lower epoch, and an old leader can acknowledge nothing,
because acknowledging waits for a quorum.

The active master applies a mutation to its namespace at once (so its
handlers stay synchronous and see each other's effects in order, as the
NameNode under its lock) and the record joins the log; no reply leaves
before every record submitted so far is committed (`acknowledged`), so
nothing a client has seen can be lost with the active master. If it loses
the leadership with records uncommitted, `reset` rebuilds the namespace
from what was committed. A new leader becomes active only when its first
entry (Raft's no-op) has committed, which commits and applies everything
earlier terms left.

Standbys apply committed records as they come and serve reads that may be a
little behind (GFS's shadow masters).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

import msgpack
from aiohttp import web

from stackyard import errors
from stackyard.coord.raft import RaftNode, Role
from stackyard.coord.raft_log import RaftLog
from stackyard.coord.raft_transport import send_batch
from stackyard.coord.raft_types import HardState, Ready, Snapshot
from stackyard.coord.wire import BadMessage, message_from_wire, message_to_wire
from stackyard.net.aio import AioClient
from stackyard.net.server import MSGPACK, error_response

log = logging.getLogger("stackyard.master")
WAIT = 10.0        # seconds a reply may wait for its records to commit


class Journal:
    def __init__(self, directory: str | Path, node_id: str, peers: dict[str, str],
                 apply: Callable[[bytes, int], None], restore: Callable[[bytes], None],
                 election_ticks: int = 10, heartbeat_ticks: int = 2):
        self.id, self.peers = node_id, peers
        self.apply_record, self.restore_image = apply, restore
        self.raftlog = RaftLog(directory)
        self.node = RaftNode(node_id, peers, self.raftlog.load(), election_ticks=election_ticks,
                             heartbeat_ticks=heartbeat_ticks)
        self.active = False
        self.epoch = 0                  # the term this master became active in
        self.leader_term = 0            # the term it leads in, active or not yet
        self.term_start = 0             # index of this leader's first entry
        self.spec_upto = 0              # last index applied before it committed
        self.submitted = 0              # records submitted while active
        self.acked = 0                  # of those, committed
        self.inflight: deque[tuple[int, int]] = deque()   # (submitted count, index)
        self.pending: list[bytes] = []
        self.waiters: list[tuple[int, asyncio.Future]] = []
        self.reads: dict[int, asyncio.Future] = {}
        self.read_ctx = 0
        self.on_active: Callable[[], None] = lambda: None
        self.on_deposed: Callable[[], None] = lambda: None
        self.client: AioClient | None = None
        self.outbox: dict[str, list] = {p: [] for p in peers if p != node_id}
        self.outbox_ready: dict[str, asyncio.Event] = {}
        self.process(self.node.tick())      # the snapshot and committed entries it holds
        self._elect_alone()

    def _elect_alone(self) -> None:
        """A master without peers is its own quorum: active at once, not
        after an election timeout."""
        for _ in range(4 * self.node.election_ticks):
            if len(self.peers) > 1 or self.active:
                return
            self.process(self.node.tick())

    @property
    def index(self) -> int:
        return self.node.commit

    @property
    def empty(self) -> bool:
        """No record was ever logged (a new master's no-ops aside)."""
        return self.node.snap.index == 0 and not any(e.data for e in self.node.log)

    @property
    def leader(self) -> str | None:
        """The active master's address, as far as this one knows."""
        return self.peers.get(self.node.leader or "")

    def seed(self, image: bytes) -> None:
        """Start an empty log from IMAGE (a master's namespace from before the
        log was replicated): a snapshot at index 1, term 1."""
        snap = Snapshot(1, 1, image)
        self.raftlog.save(Ready(hard_state=HardState(1, None, 1), snapshot=snap))
        self.node = RaftNode(self.id, self.peers, self.raftlog.load(),
                             election_ticks=self.node.election_ticks,
                             heartbeat_ticks=self.node.heartbeat_ticks)
        self.process(self.node.tick())
        self._elect_alone()

    # -- the Ready pipeline --------------------------------------------------------

    def process(self, ready: Ready) -> None:
        try:
            self.raftlog.save(ready)                               # 1. durable
        except OSError as exc:      # as HDFS's NameNode: state must not outrun the disk
            log.critical("cannot write the op log (%s): stopping so that no state is lost", exc)
            os._exit(70)
        for m in ready.messages:                                   # 2. send
            self.outbox[m.dst].append(message_to_wire(m))
            if m.dst in self.outbox_ready:
                self.outbox_ready[m.dst].set()
        if ready.restore is not None:                              # 3. apply
            self.restore_image(ready.restore.data)
        for e in ready.committed:
            if e.data and not (self.active and self.term_start < e.index <= self.spec_upto):
                self.apply_record(e.data, e.index)
        while self.inflight and self.inflight[0][1] <= self.node.commit:
            self.acked = self.inflight.popleft()[0]
        if self.waiters:
            still = []
            for seq, fut in self.waiters:
                if seq <= self.acked:
                    _resolve(fut, None)
                else:
                    still.append((seq, fut))
            self.waiters = still
        for rs in ready.reads:
            fut = self.reads.pop(rs.ctx, None)
            if fut is not None:
                _resolve(fut, None)
        self._role_changed()

    def _role_changed(self) -> None:
        node = self.node
        leader = node.role is Role.LEADER
        if self.active and (not leader or node.term != self.epoch):
            self.active, self.epoch, self.leader_term = False, 0, 0
            self._fail_all()
            log.warning("%s is a standby again (leader now %s)", self.id, node.leader)
            self.on_deposed()
            leader = False
        if not leader:
            self.leader_term = 0
        elif not self.active:
            if self.leader_term != node.term:      # just elected: its no-op is last
                self.leader_term, self.term_start = node.term, node.last_index()
            if node.commit >= self.term_start:
                self.active, self.epoch = True, node.term
                self.spec_upto = node.last_index()
                log.info("%s is the active master (epoch %d)", self.id, self.epoch)
                self.on_active()

    def _fail_all(self) -> None:
        exc = errors.StandbyError("this master lost the leadership", self.leader)
        for _seq, fut in self.waiters:
            _fail(fut, exc)
        for fut in self.reads.values():
            _fail(fut, exc)
        self.waiters, self.reads, self.pending = [], {}, []
        self.inflight.clear()
        self.submitted = self.acked = 0

    def committed_state(self) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The snapshot and the committed records after it (index, record):
        the namespace without anything applied ahead of its commit."""
        node = self.node
        records = [(e.index, e.data) for e in node.log if e.index <= node.commit and e.data]
        return node.snap.data, records

    # -- the active master's side ----------------------------------------------------

    def check_active(self) -> None:
        if not self.active:
            raise errors.StandbyError(f"{self.id} is a standby master", self.leader)

    def submit(self, record: bytes) -> None:
        """Log RECORD, already applied here; replies wait for it (`acknowledged`)."""
        self.check_active()
        self.pending.append(record)
        self.submitted += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()               # no event loop (a tool or a test): at once
            return
        if len(self.pending) == 1:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Group commit: the records of one event-loop turn, one Ready, one fsync."""
        batch, self.pending = self.pending, []
        if not batch or not self.active:
            return
        indexes, ready = self.node.propose_batch(batch)
        first = self.submitted - len(batch)
        for i, index in enumerate(indexes):
            self.inflight.append((first + i + 1, index))
        self.spec_upto = indexes[-1]
        self.process(ready)

    async def acknowledged(self, read: bool = False) -> None:
        """Return once everything submitted so far has committed; for a READ
        also once a quorum has confirmed this master still leads."""
        self.check_active()
        seq = self.submitted
        fut = asyncio.get_running_loop().create_future()
        if seq > self.acked:
            self.waiters.append((seq, fut))
        elif read and len(self.peers) > 1:
            self.read_ctx += 1
            self.reads[self.read_ctx] = fut
            self.process(self.node.read_index(self.read_ctx))
        else:
            return
        try:
            await asyncio.wait_for(fut, WAIT)
        except TimeoutError:
            raise errors.StandbyError("no quorum of masters answered in time", None) from None

    @property
    def settled(self) -> bool:
        """Nothing applied here is still uncommitted (a snapshot may be taken)."""
        return not self.pending and not self.inflight

    def compact(self, image: bytes) -> None:
        self.process(self.node.compact(self.node.applied, image))

    @property
    def log_bytes(self) -> int:
        return self.raftlog._log.segment_bytes

    # -- transport -----------------------------------------------------------------

    def start(self, client: AioClient, tick: float) -> list[asyncio.Task]:
        self.client = client
        self.outbox_ready = {p: asyncio.Event() for p in self.outbox}
        for p, box in self.outbox.items():
            if box:
                self.outbox_ready[p].set()
        return [asyncio.create_task(self._ticks(tick))] + [
            asyncio.create_task(self._sender(p)) for p in self.outbox]

    async def _ticks(self, tick: float) -> None:
        while True:
            await asyncio.sleep(tick)
            try:
                self.process(self.node.tick())
            except Exception:            # one bad tick must not stop the master for good
                log.exception("raft tick failed")

    async def _sender(self, peer: str) -> None:
        event = self.outbox_ready[peer]
        while True:
            await event.wait()
            event.clear()
            batch, self.outbox[peer] = self.outbox[peer], []
            if not batch:
                continue
            try:
                self._step_all(peer, await send_batch(self.client, self.peers[peer], self.id,
                                                      batch))
            except Exception as exc:        # Raft tolerates lost messages
                log.debug("raft to %s: %s", peer, exc)

    def _step_all(self, sender: str, batch) -> None:
        if not isinstance(batch, list) or len(batch) > 100_000:
            raise BadMessage("a batch must be a list of messages")
        messages = [message_from_wire(m) for m in batch]
        if any(m.src != sender for m in messages):
            raise BadMessage(f"a message claims a sender other than {sender}")
        for m in messages:
            self.process(self.node.step(m))

    async def handle_step(self, request: web.Request) -> web.Response:
        """Raft messages from another master; the answer rides back in the reply."""
        src = request.get("yard.sender")
        if src not in self.peers or src == self.id:
            return error_response(errors.AuthError(
                "authentication failed: raft messages come only from this cluster's masters, "
                "signed as the one they name"))
        try:
            self._step_all(src, msgpack.unpackb(await request.read()))
        except Exception as exc:      # malformed msgpack too: unpackb raises many kinds
            return error_response(ValueError(f"bad raft message: {exc}"))
        reply, self.outbox[src] = self.outbox.get(src) or [], []
        return web.Response(body=msgpack.packb(reply), content_type=MSGPACK)

    def close(self) -> None:
        self.raftlog.close()


def _resolve(fut: asyncio.Future, value) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


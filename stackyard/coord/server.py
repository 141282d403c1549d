"""One replica of the coordination cell: the Raft core and the node tree
wrapped in I/O.

Every Ready is handled in the one order that is safe: persist (RaftLog,
fsync), then send its messages to the peers (POST /raft/step), then apply
its committed entries to the tree. Writes and reads are served by the
leader only; a follower answers with the leader's address. A write returns
once its entry is applied; a read once a heartbeat round has confirmed the
leadership (ReadIndex) and the tree has caught up, so every read is
linearizable. The leader tracks session keep-alives and proposes
CloseSession for a session that went silent; watches are held by the
leader and delivered through a long poll (`events`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time

import msgpack
from aiohttp import web

from stackyard import errors
from stackyard.cluster.config import CoordConfig
from stackyard.cluster.tls import server_context
from stackyard.coord import tree as t
from stackyard.coord.raft import RaftNode, Role
from stackyard.coord.raft_log import RaftLog
from stackyard.coord.raft_transport import send_batch
from stackyard.coord.raft_types import NotLeader, Ready
from stackyard.coord.wire import (
    BadMessage,
    Malformed,
    check_command,
    command_from_map,
    message_from_wire,
    message_to_wire,
    request_from_bytes,
    request_to_bytes,
    stat_to_wire,
)
from stackyard.net.aio import AioClient
from stackyard.net.auth import Secret
from stackyard.net.server import MSGPACK, error_response, make_app, rpc, serve

MIN_SESSION_TIMEOUT = 0.1          # seconds; below this a session dies between two keepalives
log = logging.getLogger("stackyard.coord")
WAIT = 10.0                       # seconds a client call may wait for commit or a read
FIRES = {                          # watch kind -> the events that fire it
    "data": {t.EventType.DATA_CHANGED, t.EventType.DELETED},
    "exists": {t.EventType.CREATED, t.EventType.DELETED, t.EventType.DATA_CHANGED},
    "children": {t.EventType.CHILDREN_CHANGED, t.EventType.DELETED},
}


class CoordServer:
    def __init__(self, cfg: CoordConfig):
        self.cfg = cfg
        self.secret = Secret.load(cfg.secret_file, cfg.tls_ca)
        self.peers = cfg.peer_map()
        self.raftlog = RaftLog(cfg.data_dir)
        self.node = RaftNode(cfg.node_id, self.peers, self.raftlog.load(),
                             election_ticks=cfg.election_ticks,
                             heartbeat_ticks=cfg.heartbeat_ticks)
        self.tree = t.Tree()
        self.client = AioClient(self.secret, timeout=2.0)
        self.proposals: dict[int, tuple[int, asyncio.Future]] = {}
        self.batch: list[tuple[bytes, asyncio.Future]] = []
        self.reads: dict[int, asyncio.Future] = {}
        self.read_ctx = 0
        self.waiting_reads: list[tuple[int, asyncio.Future]] = []
        self.deadlines: dict[int, float] = {}       # leader only: session -> deadline
        self.closing: set[int] = set()
        self.watches: dict[tuple[str, str], set[int]] = {}
        self.pending_events: dict[int, list[dict]] = {}
        self.event_ready: dict[int, asyncio.Event] = {}
        # Chubby's client caches (leader only): who caches which node, what each
        # session has yet to hear (invalidations) and acknowledge, when each last
        # polled, and which paths have a write in flight (not to be cached)
        self.cachers: dict[str, set[int]] = {}
        self.invalidations: dict[int, list[str]] = {}
        self.inval_ready: dict[int, asyncio.Event] = {}
        self.inval_acks: dict[int, asyncio.Future] = {}     # invalidation id -> acked
        self.outstanding: dict[str, list[tuple[int, int, asyncio.Future]]] = {}
        self.inval_ids = 0
        self.polled: dict[int, float] = {}
        self.inflight: dict[str, int] = {}
        self.leader_since = 0.0
        self.outbox: dict[str, list] = {p: [] for p in self.peers if p != cfg.node_id}
        self.outbox_ready: dict[str, asyncio.Event] = {}
        self.was_leader = False
        self.app = make_app(self.secret)
        self.app.router.add_post("/raft/step", self.handle_step)
        for name in ("create", "get", "set", "delete", "children", "exists", "multi",
                     "open_session", "keepalive", "close_session", "events", "status",
                     "cache_poll"):
            self.app.router.add_post(f"/rpc/{name}", rpc(self._guard(getattr(self, name))))
        self.app.router.add_get("/metrics", self.metrics)

    # -- the Ready pipeline -----------------------------------------------------------

    def process(self, ready: Ready) -> None:
        self.raftlog.save(ready)                                   # 1. durable
        for m in ready.messages:                                   # 2. send
            self.outbox[m.dst].append(message_to_wire(m))
            self.outbox_ready[m.dst].set()
        if ready.restore is not None:                              # 3. apply
            data = ready.restore.data
            self.tree = t.Tree.load(msgpack.unpackb(data, strict_map_key=False)) if data \
                else t.Tree()
        for e in ready.committed:
            if e.data:
                client, seq, cmd = request_from_bytes(e.data)
                result, events = self.tree.apply_request(e.index, client, seq, cmd)
            else:
                result, events = None, []
            waiting = self.proposals.pop(e.index, None)
            if waiting is not None and not waiting[1].done():
                if waiting[0] == e.term:
                    waiting[1].set_result(result)
                else:
                    waiting[1].set_exception(NotLeader(None))
            self._fire(events)
        for rs in ready.reads:
            fut = self.reads.pop(rs.ctx, None)
            if fut is not None:
                self.waiting_reads.append((rs.index, fut))
        self.waiting_reads = [(i, f) for i, f in self.waiting_reads
                              if not (i <= self.node.applied and _resolve(f, True))]
        self._leadership_changed()
        if self.node.applied - self.node.snap.index >= self.cfg.snapshot_entries:
            image = msgpack.packb(self.tree.dump())
            self.process(self.node.compact(self.node.applied, image))

    def _leadership_changed(self) -> None:
        leader = self.node.role is Role.LEADER
        if leader and not self.was_leader:
            now = time.monotonic()       # every session gets a fresh timeout (ZooKeeper too)
            self.deadlines = {s: now + to for s, to in self.tree.sessions.items()}
            self.closing = set()
            self.leader_since = now
            log.info("leader for term %d", self.node.term)
        if self.was_leader and not leader:
            for _term, fut in self.proposals.values():
                if not fut.done():
                    fut.set_exception(NotLeader(self.node.leader))
            for fut in [*self.reads.values(), *(f for _, f in self.waiting_reads)]:
                if not fut.done():
                    fut.set_exception(NotLeader(self.node.leader))
            self.proposals, self.reads, self.waiting_reads = {}, {}, []
            self.deadlines, self.watches = {}, {}
            for fut in self.inval_acks.values():
                if not fut.done():
                    fut.set_result(False)
            self.cachers, self.invalidations, self.inval_acks = {}, {}, {}
            self.outstanding = {}
            self.polled, self.inflight = {}, {}
            for ev in self.inval_ready.values():
                ev.set()
        self.was_leader = leader

    async def tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.tick)
            try:
                self.process(self.node.tick())
                if self.node.role is Role.LEADER:
                    self._expire_sessions()
            except Exception:            # one bad tick must not stop the replica for good
                log.exception("tick failed")

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for session, deadline in list(self.deadlines.items()):
            if deadline < now and session not in self.closing:
                self.closing.add(session)
                self._forget_cacher(session)
                log.info("session %x expired", session)
                paths = sorted(self.tree.ephemerals.get(session, ()))
                asyncio.ensure_future(self._propose_quietly(t.CloseSession(session), paths))

    async def _propose_quietly(self, cmd, paths: list[str]) -> None:
        try:
            await self._write(cmd, {}, paths)
        except (TimeoutError, NotLeader, t.CoordError):
            pass

    async def sender(self, peer: str) -> None:
        event = self.outbox_ready[peer]
        while True:
            await event.wait()
            event.clear()
            batch, self.outbox[peer] = self.outbox[peer], []
            if not batch:
                continue            # already carried back in a response to that peer
            try:
                self._step_all(peer, await send_batch(self.client, self.peers[peer],
                                                      self.cfg.node_id, batch))
            except Exception as exc:        # Raft tolerates lost messages
                log.debug("to %s: %s", peer, exc)

    def _step_all(self, sender: str, batch) -> None:
        """Step the messages of BATCH, all from SENDER; BadMessage if any is
        malformed or claims another sender (none is stepped then)."""
        if not isinstance(batch, list) or len(batch) > 100_000:
            raise BadMessage("a batch must be a list of messages")
        messages = [message_from_wire(m) for m in batch]
        for m in messages:
            if m.src != sender:
                raise BadMessage(f"a message from {m.src[:40]!r} sent by {sender}")
        for m in messages:
            try:
                self.process(self.node.step(m))
            except Exception:        # a bug in one message's handling must not stop the cell
                log.exception("stepping %s from %s failed", type(m).__name__, sender)

    async def handle_step(self, request: web.Request) -> web.Response:
        """Messages from a peer. What this replica has to say back to that peer
        (an AppendResponse, a vote) rides in the HTTP response instead of a
        request of its own: one round trip per replication round, not two."""
        src = request.get("yard.sender")
        if src not in self.peers or src == self.cfg.node_id:
            return error_response(errors.AuthError(
                "authentication failed: raft messages come only from this cell's replicas, "
                "signed as the one they name"))
        try:
            self._step_all(src, msgpack.unpackb(await request.read()))
        except Exception as exc:      # malformed msgpack too: unpackb raises many kinds
            return error_response(ValueError(f"bad raft message: {exc}"))
        reply = self.outbox.get(src) or []
        if reply:
            self.outbox[src] = []
        return web.Response(body=msgpack.packb(reply), content_type=MSGPACK)

    # -- serving ----------------------------------------------------------------------

    def _guard(self, handler):
        async def call(args: dict):
            try:
                return {"ok": True, "result": await handler(args)}
            except ValueError:
                raise                   # malformed: rpc() answers 400
            except NotLeader as exc:
                return {"ok": False, "code": "not_leader",
                        "leader": self.peers.get(exc.leader or self.node.leader or "")}
            except t.CoordError as exc:
                return {"ok": False, "code": exc.code, "message": str(exc)}
            except TimeoutError:
                return {"ok": False, "code": "timeout", "message": "no quorum answered in time"}
        return call

    async def _propose(self, cmd: t.Command, a: dict | None = None):
        """Commit CMD and return its result (wire data). A's `client` and `seq`
        make a retried request apply once."""
        if self.node.role is not Role.LEADER:
            raise NotLeader(self.node.leader)
        a = a or {}
        client, seq = a.get("client", 0), a.get("seq", 0)
        if type(client) is not int or type(seq) is not int or not (
                0 <= client < 1 << 63 and 0 <= seq < 1 << 63):
            raise Malformed("client, seq: expected integers in 0..2**63-1")
        data = request_to_bytes(client, seq, check_command(cmd))
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.batch.append((data, fut))
        if len(self.batch) == 1:
            loop.call_soon(self._flush_batch)
        result = await asyncio.wait_for(fut, WAIT)
        if isinstance(result, dict) and "error" in result:
            raise t.ERRORS.get(result["error"], t.CoordError)(result["message"])
        return result

    def _flush_batch(self) -> None:
        """Group commit: the proposals of one event-loop turn become one Ready,
        one log record and one fsync."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        if self.node.role is not Role.LEADER:
            for _data, fut in batch:
                if not fut.done():
                    fut.set_exception(NotLeader(self.node.leader))
            return
        indexes, ready = self.node.propose_batch([data for data, _ in batch])
        for index, (_data, fut) in zip(indexes, batch, strict=True):
            self.proposals[index] = (self.node.term, fut)
        self.process(ready)

    async def _confirmed(self) -> None:
        """Return once this node may answer a read linearizably."""
        if self.node.role is not Role.LEADER:
            raise NotLeader(self.node.leader)
        self.read_ctx += 1
        fut = asyncio.get_running_loop().create_future()
        self.reads[self.read_ctx] = fut
        self.process(self.node.read_index(self.read_ctx))
        await asyncio.wait_for(fut, WAIT)

    def _watch(self, kind: str, path: str, args: dict) -> None:
        if args.get("watch") and args.get("session"):
            self.watches.setdefault((kind, path), set()).add(args["session"])

    def _fire(self, events: list[t.WatchEvent]) -> None:
        for ev in events:
            for kind, fires in FIRES.items():
                if ev.type in fires:
                    for session in self.watches.pop((kind, ev.path), ()):
                        self.pending_events.setdefault(session, []).append(
                            {"type": ev.type.value, "path": ev.path, "watch": kind})
                        self.event_ready.setdefault(session, asyncio.Event()).set()

    async def create(self, a: dict) -> str:
        cmd = t.Create(a["path"], a.get("data", b""), bool(a.get("ephemeral")),
                       bool(a.get("sequential")), a.get("session", 0))
        return await self._write(cmd, a, [a["path"]])

    async def set(self, a: dict) -> dict:
        return await self._write(t.SetData(a["path"], a["data"], a.get("version", -1)), a,
                                 [a["path"]])

    async def delete(self, a: dict) -> bool:
        return await self._write(t.Delete(a["path"], a.get("version", -1)), a, [a["path"]])

    async def multi(self, a: dict) -> list:
        cmd = check_command(command_from_map({"c": "Multi", "ops": a["ops"]}))
        return await self._write(cmd, a, [op.path for op in cmd.ops])

    # -- Chubby's cache consistency ---------------------------------------------------

    async def _write(self, cmd: t.Command, a: dict, paths: list[str]):
        """Commit CMD after every cached copy of PATHS is invalidated: each
        caching session has acknowledged, or its cache lease has run out.
        While the write is in flight the paths are not handed out as cacheable."""
        if self.node.role is not Role.LEADER:
            raise NotLeader(self.node.leader)
        grace = self.leader_since + self.cfg.cache_lease - time.monotonic()
        if grace > 0 and self.tree.caching:
            # caches handed out by the previous leader may still be trusted
            # for one lease; they cannot be invalidated, so they are outlived
            await asyncio.sleep(grace)
        for p in paths:
            self.inflight[p] = self.inflight.get(p, 0) + 1
        try:
            await self._invalidate(paths)
            return await self._propose(cmd, a)
        finally:
            for p in paths:
                left = self.inflight.get(p, 0) - 1
                if left > 0:
                    self.inflight[p] = left
                else:
                    self.inflight.pop(p, None)

    async def _invalidate(self, paths: list[str]) -> None:
        """Send invalidations of PATHS to their caching sessions, then wait
        until every invalidation of these paths still outstanding (this
        write's and earlier ones': a concurrent write must not slip past an
        unacknowledged invalidation) is acknowledged or its session's cache
        lease has run out (a lease after its last poll)."""
        loop = asyncio.get_running_loop()
        for p in paths:
            for session in self.cachers.pop(p, set()):
                self.inval_ids += 1
                fut = self.inval_acks[self.inval_ids] = loop.create_future()
                self.outstanding.setdefault(p, []).append((session, self.inval_ids, fut))
                self.invalidations.setdefault(session, []).append([self.inval_ids, p])
                self.inval_ready.setdefault(session, asyncio.Event()).set()
        waits = {iid: (session, fut) for p in paths
                 for session, iid, fut in self.outstanding.get(p, ()) if not fut.done()}
        for iid, (session, fut) in waits.items():
            left = self.polled.get(session, 0.0) + self.cfg.cache_lease - time.monotonic()
            if left > 0 and not fut.done():
                try:
                    await asyncio.wait_for(asyncio.shield(fut), left)
                except TimeoutError:
                    pass
            if not fut.done():                  # the lease ran out: nothing to wait for
                fut.set_result(False)
                self.inval_acks.pop(iid, None)
        for p in paths:
            left = [x for x in self.outstanding.get(p, ()) if not x[2].done()]
            if left:
                self.outstanding[p] = left
            else:
                self.outstanding.pop(p, None)

    async def cache_poll(self, a: dict) -> dict:
        """A caching client's poll: acknowledge the invalidations it applied,
        wait up to `wait` s for new ones, and renew its cache lease. Answered
        only after a ReadIndex round, so a deposed leader cannot renew leases."""
        if self.node.role is not Role.LEADER:
            raise NotLeader(self.node.leader)
        session = a["session"]
        if session not in self.tree.sessions or session in self.closing:
            raise t.SessionExpired(f"session {session:x}")
        self.polled[session] = time.monotonic()
        for iid in a.get("acked") or []:
            fut = self.inval_acks.pop(iid, None)
            if fut is not None and not fut.done():
                fut.set_result(True)
        ready = self.inval_ready.setdefault(session, asyncio.Event())
        if not self.invalidations.get(session):
            try:
                await asyncio.wait_for(ready.wait(), _seconds(a, "wait",
                                                              self.cfg.cache_lease / 2))
            except TimeoutError:
                pass
        ready.clear()
        await self._confirmed()
        return {"invalidate": self.invalidations.pop(session, []), "term": self.node.term,
                "lease": self.cfg.cache_lease}

    async def get(self, a: dict) -> dict:
        await self._confirmed()
        path = a["path"]
        data, stat = self.tree.get(path)
        self._watch("data", path, a)
        out = {"data": data, "stat": stat_to_wire(stat)}
        session = a.get("session", 0)
        if a.get("cache") and session in self.tree.caching:
            cacheable = not self.inflight.get(path)
            if cacheable:
                self.cachers.setdefault(path, set()).add(session)
            out.update(cacheable=cacheable, term=self.node.term)
        return out

    async def exists(self, a: dict) -> dict | None:
        await self._confirmed()
        self._watch("exists", a["path"], a)
        return stat_to_wire(self.tree.exists(a["path"]))

    async def children(self, a: dict) -> list[str] | dict:
        await self._confirmed()
        names = self.tree.children(a["path"])
        self._watch("children", a["path"], a)
        if a.get("with_stat"):
            return {"children": names, "stat": stat_to_wire(self.tree.exists(a["path"]))}
        return names

    async def open_session(self, a: dict) -> dict:
        # as ZooKeeper, a timeout outside the cell's bounds is brought within them
        timeout = _seconds(a, "timeout", self.cfg.max_session_timeout,
                           least=MIN_SESSION_TIMEOUT, default=10.0)
        # a retried open_session is answered with the first attempt's session
        session = await self._propose(t.OpenSession(secrets.randbits(62) + 1, timeout,
                                                    bool(a.get("cache"))), a)
        self.deadlines[session] = time.monotonic() + timeout
        return {"session": session, "timeout": timeout}

    async def keepalive(self, a: dict) -> float:
        if self.node.role is not Role.LEADER:
            raise NotLeader(self.node.leader)
        session = a["session"]
        timeout = self.tree.sessions.get(session)
        if timeout is None or session in self.closing:
            raise t.SessionExpired(f"session {session:x}")
        self.deadlines[session] = time.monotonic() + timeout
        return timeout

    async def close_session(self, a: dict) -> bool:
        session = a["session"]
        self.closing.add(session)
        self._forget_cacher(session)
        paths = sorted(self.tree.ephemerals.get(session, ()))
        return await self._write(t.CloseSession(session), a, paths)

    def _forget_cacher(self, session: int) -> None:
        for holders in self.cachers.values():
            holders.discard(session)
        self.polled.pop(session, None)
        self.invalidations.pop(session, None)

    async def events(self, a: dict) -> list[dict]:
        """Watch events for a session; waits up to `wait` seconds for the first."""
        session = a["session"]
        ready = self.event_ready.setdefault(session, asyncio.Event())
        if not self.pending_events.get(session):
            try:
                await asyncio.wait_for(ready.wait(), _seconds(a, "wait", 30.0))
            except TimeoutError:
                pass
        ready.clear()
        return self.pending_events.pop(session, [])

    async def status(self, _a: dict) -> dict:
        n = self.node
        return {"id": n.id, "role": n.role.value, "term": n.term,
                "leader": self.peers.get(n.leader or ""), "commit": n.commit,
                "applied": n.applied, "last_index": n.last_index(),
                "snapshot_index": n.snap.index, "sessions": len(self.tree.sessions),
                "nodes": len(self.tree.nodes)}

    async def metrics(self, _request: web.Request) -> web.Response:
        from stackyard.web.pages import prometheus
        s = await self.status({})
        values = {k: v for k, v in s.items() if isinstance(v, int)}
        values["leader"] = int(s["role"] == "leader")
        return web.Response(text=prometheus("stackyard_coord", values), content_type="text/plain")

    async def run(self) -> None:
        async def started(_address: str) -> None:
            for peer in self.outbox:
                self.outbox_ready[peer] = asyncio.Event()
                asyncio.create_task(self.sender(peer))
            asyncio.create_task(self.tick_loop())

        try:
            await serve(self.app, self.cfg.host, self.cfg.port, self.cfg.addr_file, started,
                        tls=server_context(self.cfg.tls_cert, self.cfg.tls_key))
        finally:
            await self.client.close()
            self.raftlog.close()


def _resolve(fut: asyncio.Future, value) -> bool:
    if not fut.done():
        fut.set_result(value)
    return True


def _seconds(a: dict, key: str, most: float, least: float = 0.0,
             default: float = 0.0) -> float:
    """A's KEY as LEAST..MOST seconds; Malformed if it is not a finite number."""
    v = a.get(key, default)
    if type(v) not in (int, float) or not math.isfinite(v):
        raise Malformed(f"{key}: expected a number of seconds, got {str(v)[:40]!r}")
    return min(max(float(v), least), most)

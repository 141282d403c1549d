"""A client of the coordination cell: finds the leader (following redirects),
fails over when it dies, and keeps its session alive meanwhile.

    cell = CoordClient(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], secret)
    cell.create("/app", b"config")
    data, stat = cell.get("/app")

With `cache=True` the client keeps the data of nodes it has read, as
Chubby's clients do, and the cell invalidates a cached node before any write
to it is acknowledged. A background thread long-polls the leader for
invalidations; each answer renews the cache's lease, and the cache is
trusted only until a lease after the poll was sent, so a client cut off
from the leader stops using it (and the leader stops waiting for it) when
that lease runs out. A change of leader empties the cache.

A call that cannot reach a leader within `retry_seconds` raises
ClusterUnavailable. As with ZooKeeper, a write whose reply was lost to a
failover may or may not have been applied: callers that must know read back.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time

from stackyard import errors
from stackyard.coord import tree
from stackyard.coord.wire import command_map
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool


class CoordClient:
    def __init__(self, addresses: list[str], secret: Secret, session_timeout: float = 10.0,
                 retry_seconds: float = 15.0, cache: bool = False):
        if not addresses:
            raise ValueError("addresses: need at least one replica")
        self.addresses = list(addresses)
        self.pool = HttpPool(secret, timeout=max(15.0, session_timeout))
        self.leader: str | None = None
        self.retry_seconds = retry_seconds
        self.session_timeout = session_timeout
        self.session: int | None = None
        self.expired = False
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        # writes carry (client id, seq); a retry keeps its seq, so a write that
        # committed before a failover is not applied again
        self.client_id = secrets.randbits(62) + 1
        self._served_by: str | None = None
        self._watches: dict[tuple[str, str], object] = {}
        self._local_events: list[dict] = []
        self._rearming = False
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self.caching = cache
        self._cache: dict[str, tuple[bytes, dict]] = {}
        self._cache_gen: dict[str, int] = {}     # bumped by each invalidation of a path
        self._cache_term = -1                    # the leader term the cache belongs to
        self._cache_valid_until = 0.0
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

    # -- watches across failovers ----------------------------------------------------

    def _arm(self, kind: str, path: str, state) -> None:
        self._watches[(kind, path)] = state

    def _rearm(self) -> None:
        """A new leader knows nothing of our watches (they lived on the old one):
        register them again, and report what changed meanwhile ourselves, as
        ZooKeeper's client does on reconnect."""
        if self._rearming:
            return
        self._rearming = True
        try:
            for (kind, path), before in list(self._watches.items()):
                try:
                    now = self._observe(kind, path)
                except tree.NoNode:
                    now = None
                if now != before:
                    self._watches.pop((kind, path), None)
                    etype = ("created" if before is None else "deleted" if now is None
                             else "children_changed" if kind == "children" else "data_changed")
                    self._local_events.append({"type": etype, "path": path, "watch": kind})
        finally:
            self._rearming = False

    def _observe(self, kind: str, path: str):
        """Re-register a watch; the node's state that it watches (None: absent)."""
        session = self.session or 0
        if kind == "children":
            r = self.call("children", path=path, watch=True, session=session, with_stat=True)
            return r["stat"]["cversion"] if r["stat"] else None
        if kind == "data":
            return self.call("get", path=path, watch=True, session=session)["stat"]["mzxid"]
        stat = self.call("exists", path=path, watch=True, session=session)
        return stat["mzxid"] if stat else None

    def write(self, name: str, **args):
        # one client's writes go one at a time, in the order of their numbers:
        # the cell drops a request older than one it has completed (at most
        # once), so two threads racing their writes would lose one
        with self._seq_lock:
            seq = next(self._seq)
            return self.call(name, client=self.client_id, seq=seq, **args)

    # -- transport -------------------------------------------------------------------

    def call(self, name: str, **args):
        deadline = time.monotonic() + self.retry_seconds
        tried: list[str] = []
        while True:
            address = self.leader or self.addresses[len(tried) % len(self.addresses)]
            try:
                reply = self.pool.call(address, name, **args)
            except errors.ClusterUnavailable as exc:
                reply = {"ok": False, "code": "unreachable", "message": str(exc)}
            if reply["ok"]:
                changed = self._served_by not in (None, address)
                self.leader = self._served_by = address
                if changed:
                    self._rearm()
                return reply["result"]
            code = reply["code"]
            if code not in ("not_leader", "unreachable", "timeout"):
                raise tree.ERRORS.get(code, tree.CoordError)(reply.get("message", code))
            self.leader = reply.get("leader") if code == "not_leader" else None
            tried.append(address)
            if time.monotonic() > deadline:
                raise errors.ClusterUnavailable(
                    f"no leader of the coordination cell answered within {self.retry_seconds} s "
                    f"(last: {address}: {reply.get('message', code)})")
            if self.leader is None:
                time.sleep(0.01 if len(tried) % len(self.addresses) else 0.05)

    # -- sessions --------------------------------------------------------------------

    def start_session(self) -> int:
        reply = self.write("open_session", timeout=self.session_timeout, cache=self.caching)
        self.session, self.expired = reply["session"], False
        self._keeper = threading.Thread(target=self._keep_alive, daemon=True,
                                        name="coord-keepalive")
        self._keeper.start()
        if self.caching:
            threading.Thread(target=self._poll_invalidations, daemon=True,
                             name="coord-cache").start()
        return self.session

    # -- Chubby's cache --------------------------------------------------------------

    def _poll_invalidations(self) -> None:
        acked: list[int] = []
        lease = 1.0
        while not self._stop.is_set() and not self.expired:
            sent = time.monotonic()
            try:
                r = self.call("cache_poll", session=self.session, acked=acked, wait=lease / 2)
            except tree.SessionExpired:
                self.expired = True
                break
            except (errors.ClusterUnavailable, tree.CoordError):
                continue               # no renewal: the cache lapses with its lease
            acked, lease = [], r["lease"]
            with self._cache_lock:
                if r["term"] != self._cache_term:
                    self._drop_cache(r["term"])
                for iid, path in r["invalidate"]:
                    self._cache.pop(path, None)
                    self._cache_gen[path] = self._cache_gen.get(path, 0) + 1
                    acked.append(iid)
                self._cache_valid_until = sent + lease
        with self._cache_lock:
            self._drop_cache(-1)

    def _drop_cache(self, term: int) -> None:
        for path in self._cache:
            self._cache_gen[path] = self._cache_gen.get(path, 0) + 1
        self._cache.clear()
        self._cache_term = term
        self._cache_valid_until = 0.0

    def _cached_get(self, path: str) -> tuple[bytes, dict]:
        with self._cache_lock:
            hit = self._cache.get(path)
            if hit is not None and time.monotonic() < self._cache_valid_until:
                self.cache_hits += 1
                return hit
            gen = self._cache_gen.get(path, 0)
        r = self.call("get", path=path, session=self.session, cache=True)
        with self._cache_lock:
            # an invalidation that arrived while the answer was on its way wins
            if (r.get("cacheable") and r.get("term") == self._cache_term
                    and self._cache_gen.get(path, 0) == gen):
                self._cache[path] = (r["data"], r["stat"])
        return r["data"], r["stat"]

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.session_timeout / 3):
            try:
                self.call("keepalive", session=self.session)
            except tree.SessionExpired:
                self.expired = True
                return
            except errors.ClusterUnavailable:
                continue

    def close(self) -> None:
        self._stop.set()
        if self.session is not None and not self.expired:
            try:
                self.write("close_session", session=self.session)
            except (tree.CoordError, errors.ClusterUnavailable):
                pass
        self.pool.close()

    # -- the tree ----------------------------------------------------------------------

    def create(self, path: str, data: bytes = b"", ephemeral: bool = False,
               sequential: bool = False) -> str:
        if ephemeral and self.session is None:
            self.start_session()
        return self.write("create", path=path, data=data, ephemeral=ephemeral,
                         sequential=sequential, session=self.session or 0)

    def get(self, path: str, watch: bool = False) -> tuple[bytes, dict]:
        if self.caching and not watch:
            if self.session is None:
                self.start_session()
            return self._cached_get(path)
        r = self.call("get", path=path, watch=watch, session=self.session or 0)
        if watch:
            self._arm("data", path, r["stat"]["mzxid"])
        return r["data"], r["stat"]

    def set(self, path: str, data: bytes, version: int = -1) -> dict:
        return self.write("set", path=path, data=data, version=version)

    def delete(self, path: str, version: int = -1) -> None:
        self.write("delete", path=path, version=version)

    def multi(self, ops: list) -> list:
        """Apply OPS (tree.Create / SetData / Delete / Check) all or none; their
        results in order. The first failing op's error is raised, nothing applied."""
        return self.write("multi", ops=[command_map(op) for op in ops])

    def children(self, path: str, watch: bool = False) -> list[str]:
        if not watch:
            return self.call("children", path=path, session=self.session or 0)
        r = self.call("children", path=path, watch=True, session=self.session or 0,
                      with_stat=True)
        self._arm("children", path, r["stat"]["cversion"] if r["stat"] else None)
        return r["children"]

    def exists(self, path: str, watch: bool = False) -> dict | None:
        stat = self.call("exists", path=path, watch=watch, session=self.session or 0)
        if watch:
            self._arm("exists", path, stat["mzxid"] if stat else None)
        return stat

    def events(self, wait: float = 0.0) -> list[dict]:
        """Watch events for this session (one-shot watches), waiting up to WAIT s;
        including those a failover would have lost (see _rearm)."""
        got = self.call("events", session=self.session or 0, wait=0)
        if not got and not self._local_events and wait:
            got = self.call("events", session=self.session or 0, wait=wait)
        got = self._local_events + got
        self._local_events = []
        for ev in got:
            self._watches.pop((ev["watch"], ev["path"]), None)
        return got

    def status(self, address: str) -> dict:
        reply = self.pool.call(address, "status")
        return reply["result"]

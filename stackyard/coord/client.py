"""A client of the coordination cell: finds the leader (following redirects),
fails over when it dies, and keeps its session alive meanwhile.

    cell = CoordClient(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], secret)
    cell.create("/app", b"config")
    data, stat = cell.get("/app")

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
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool


class CoordClient:
    def __init__(self, addresses: list[str], secret: Secret, session_timeout: float = 10.0,
                 retry_seconds: float = 15.0):
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
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()

    def write(self, name: str, **args):
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
                self.leader = address
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
        reply = self.write("open_session", timeout=self.session_timeout)
        self.session, self.expired = reply["session"], False
        self._keeper = threading.Thread(target=self._keep_alive, daemon=True,
                                        name="coord-keepalive")
        self._keeper.start()
        return self.session

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
        r = self.call("get", path=path, watch=watch, session=self.session or 0)
        return r["data"], r["stat"]

    def set(self, path: str, data: bytes, version: int = -1) -> dict:
        return self.write("set", path=path, data=data, version=version)

    def delete(self, path: str, version: int = -1) -> None:
        self.write("delete", path=path, version=version)

    def children(self, path: str, watch: bool = False) -> list[str]:
        return self.call("children", path=path, watch=watch, session=self.session or 0)

    def exists(self, path: str, watch: bool = False) -> dict | None:
        return self.call("exists", path=path, watch=watch, session=self.session or 0)

    def events(self, wait: float = 0.0) -> list[dict]:
        """Watch events for this session (one-shot watches), waiting up to WAIT s."""
        return self.call("events", session=self.session or 0, wait=wait)

    def status(self, address: str) -> dict:
        reply = self.pool.call(address, "status")
        return reply["result"]

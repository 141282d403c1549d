"""Locks, elections, barriers and a service registry, built by the client on
the cell's few primitives (ephemeral sequential nodes, versions, watches), as
ZooKeeper's recipes and kazoo's `recipe/` are.

A waiter watches only its predecessor (no herd), and re-checks at least every
second, because watches are held by the leader and a failover drops them.

A lock's sequencer (Chubby's term) carries a fencing token: the zxid that
created the holder's lock node. zxids only grow, so each holder of a lock has
a larger token than every holder before it; a server given a token smaller
than one it has seen knows the request comes from a deposed holder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from stackyard.coord.client import CoordClient
from stackyard.coord.tree import NodeExists, NoNode

RECHECK = 1.0


@dataclass(frozen=True)
class Sequencer:
    lock: str            # the lock's path
    node: str            # this holder's node
    token: int           # fencing token: strictly increasing per lock


def _seq(name: str) -> int:
    return int(name[-10:])


def _ensure(client: CoordClient, path: str) -> None:
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        try:
            client.create("/" + "/".join(parts[:i]))
        except NodeExists:
            pass


class _Queue:
    """Ephemeral sequential nodes under PATH; who may go depends on who is ahead."""

    def __init__(self, client: CoordClient, path: str, prefix: str, data: bytes):
        self.client, self.path, self.prefix, self.data = client, path.rstrip("/"), prefix, data
        self.node: str | None = None

    def _blocker(self, ahead: list[str]) -> str | None:
        return ahead[-1] if ahead else None           # exclusive: anyone ahead blocks

    def acquire(self, timeout: float | None = None) -> Sequencer | None:
        _ensure(self.client, self.path)
        if self.node is None:
            self.node = self.client.create(f"{self.path}/{self.prefix}", self.data,
                                           ephemeral=True, sequential=True)
        mine = self.node.rsplit("/", 1)[1]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            names = sorted(self.client.children(self.path), key=_seq)
            if mine not in names:
                raise NoNode(f"{self.node}: our lock node vanished (session expired?)")
            blocker = self._blocker(names[:names.index(mine)])
            if blocker is None:
                _, stat = self.client.get(self.node)
                return Sequencer(self.path, self.node, stat["czxid"])
            if self.client.exists(f"{self.path}/{blocker}", watch=True) is None:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self.release()
                return None
            self.client.events(wait=min(RECHECK, left) if left is not None else RECHECK)

    def release(self) -> None:
        if self.node is not None:
            try:
                self.client.delete(self.node)
            except NoNode:
                pass
            self.node = None

    def __enter__(self) -> Sequencer:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class Lock(_Queue):
    """An exclusive lock: `with Lock(client, "/locks/x") as seq: ... seq.token`."""

    def __init__(self, client: CoordClient, path: str, identifier: str = ""):
        super().__init__(client, path, "lock-", identifier.encode())


class ReadLock(_Queue):
    """Shared with other readers; waits for writers queued before it."""

    def __init__(self, client: CoordClient, path: str, identifier: str = ""):
        super().__init__(client, path, "read-", identifier.encode())

    def _blocker(self, ahead: list[str]) -> str | None:
        writers = [n for n in ahead if not n.startswith("read-")]
        return writers[-1] if writers else None


class WriteLock(_Queue):
    """Exclusive against readers and writers of the same path."""

    def __init__(self, client: CoordClient, path: str, identifier: str = ""):
        super().__init__(client, path, "write-", identifier.encode())


class Election:
    """Leader election: the holder of the election's lock leads."""

    def __init__(self, client: CoordClient, path: str, identifier: str):
        self.path = path
        self.client = client
        self._lock = Lock(client, path, identifier)

    def campaign(self, timeout: float | None = None) -> Sequencer | None:
        """Block until elected (or TIMEOUT); the term's sequencer."""
        return self._lock.acquire(timeout)

    def resign(self) -> None:
        self._lock.release()

    def leader(self) -> str | None:
        try:
            names = sorted(self.client.children(self.path), key=_seq)
        except NoNode:
            return None
        for name in names:
            try:
                return self.client.get(f"{self.path}/{name}")[0].decode()
            except NoNode:
                continue
        return None


class Barrier:
    """Holds everyone who `wait`s until the node is removed."""

    def __init__(self, client: CoordClient, path: str):
        self.client, self.path = client, path

    def create(self) -> None:
        parent = self.path.rsplit("/", 1)[0]
        if parent:
            _ensure(self.client, parent)
        try:
            self.client.create(self.path)
        except NodeExists:
            pass

    def remove(self) -> None:
        try:
            self.client.delete(self.path)
        except NoNode:
            pass

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.client.exists(self.path, watch=True) is not None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.client.events(wait=min(RECHECK, left) if left is not None else RECHECK)
        return True


class Registry:
    """A name service: instances register ephemerally; lookups list the live ones."""

    def __init__(self, client: CoordClient, root: str = "/services"):
        self.client, self.root = client, root.rstrip("/")

    def register(self, service: str, address: str) -> str:
        _ensure(self.client, f"{self.root}/{service}")
        return self.client.create(f"{self.root}/{service}/instance-", address.encode(),
                                  ephemeral=True, sequential=True)

    def lookup(self, service: str) -> list[str]:
        try:
            names = self.client.children(f"{self.root}/{service}")
        except NoNode:
            return []
        out = []
        for name in sorted(names, key=_seq):
            try:
                out.append(self.client.get(f"{self.root}/{service}/{name}")[0].decode())
            except NoNode:
                pass
        return out


def watch_lock(client: CoordClient, path: str, session_timeout: float, lost) -> None:
    """Block, checking that the ephemeral lock node PATH is still ours; call
    LOST(why) the moment it is gone or can no longer be vouched for (no
    renewal within SESSION_TIMEOUT). A server holding its lock this way stops
    serving before the master can have given its work to another (Bigtable's
    tablet servers and Chubby)."""
    from stackyard import errors
    last_ok = time.monotonic()
    while True:
        time.sleep(session_timeout / 5)
        if client.expired:
            lost("its coordination session expired")
        try:
            if client.exists(path) is None:
                lost("its lock node is gone")
            last_ok = time.monotonic()
        except (errors.ClusterUnavailable, errors.StackyardError, OSError):
            pass
        if time.monotonic() - last_ok > session_timeout:
            lost("it could not renew its lock within the session timeout")

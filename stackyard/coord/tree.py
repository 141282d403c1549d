"""The coordination cell's replicated state: a tree of small nodes (Chubby's
files, ZooKeeper's znodes) and the sessions that own ephemeral nodes.

Every replica applies the same committed commands in the same order, with the
Raft index as the transaction id (`zxid`), so every replica holds the same
tree. Pure: `apply(zxid, command)` returns the result and the watch events
the change fires; which client watches what is the serving replica's
business (watches are not replicated, as in ZooKeeper). Reads (`get`,
`children`, `exists`) are plain lookups: the daemon serves them after a
ReadIndex confirmation, so they are linearizable.

Liveness of sessions is judged by the leader (keep-alives are not logged);
when one expires the leader proposes CloseSession, whose apply deletes the
session's ephemeral nodes, and the fired events release their watchers' locks.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass, field
from enum import Enum

MAX_DATA = 1 << 20       # 1 MiB a node, as ZooKeeper's jute.maxbuffer


class CoordError(Exception):
    code = "error"


class NoNode(CoordError):
    code = "no_node"


class NodeExists(CoordError):
    code = "node_exists"


class BadVersion(CoordError):
    code = "bad_version"


class NotEmpty(CoordError):
    code = "not_empty"


class NoChildrenForEphemerals(CoordError):
    code = "no_children_for_ephemerals"


class SessionExpired(CoordError):
    code = "session_expired"


class BadArguments(CoordError):
    code = "bad_arguments"


ERRORS = {cls.code: cls for cls in (NoNode, NodeExists, BadVersion, NotEmpty,
                                    NoChildrenForEphemerals, SessionExpired, BadArguments)}


@dataclass(frozen=True)
class Stat:
    czxid: int           # transaction that created the node
    mzxid: int           # transaction that last set its data
    version: int         # data changes since creation
    cversion: int        # child changes since creation
    ephemeral_owner: int  # session id, 0 for a persistent node
    data_length: int
    num_children: int


@dataclass
class Node:
    data: bytes
    czxid: int
    mzxid: int
    version: int = 0
    cversion: int = 0
    ephemeral_owner: int = 0
    children: set[str] = field(default_factory=set)

    def stat(self) -> Stat:
        return Stat(self.czxid, self.mzxid, self.version, self.cversion,
                    self.ephemeral_owner, len(self.data), len(self.children))


# -- commands (what the log carries) -------------------------------------------------

@dataclass(frozen=True)
class OpenSession:
    session: int
    timeout: float
    cache: bool = False     # the client will cache node data (Chubby's cache)


@dataclass(frozen=True)
class CloseSession:
    session: int


@dataclass(frozen=True)
class Create:
    path: str
    data: bytes = b""
    ephemeral: bool = False
    sequential: bool = False
    session: int = 0


@dataclass(frozen=True)
class SetData:
    path: str
    data: bytes
    version: int = -1    # -1: any version; otherwise compare-and-set


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


@dataclass(frozen=True)
class Check:
    """Only in Multi: fail the whole transaction unless PATH is at VERSION."""
    path: str
    version: int


@dataclass(frozen=True)
class Multi:
    ops: tuple[Create | SetData | Delete | Check, ...]


Command = OpenSession | CloseSession | Create | SetData | Delete | Check | Multi


class EventType(Enum):
    CREATED = "created"
    DELETED = "deleted"
    DATA_CHANGED = "data_changed"
    CHILDREN_CHANGED = "children_changed"


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    path: str


MAX_CLIENTS = 10_000     # remembered request results (oldest forgotten first)


def result_to_wire(result) -> object:
    """A command's result as plain data (what a client receives and what the
    dedup table keeps): Stat -> dict, CoordError -> {"error": code, ...}."""
    if isinstance(result, Stat):
        return dataclasses.asdict(result)
    if isinstance(result, CoordError):
        return {"error": result.code, "message": str(result)}
    if isinstance(result, list):
        return [result_to_wire(r) for r in result]
    return result


class Tree:
    def __init__(self):
        self.nodes: dict[str, Node] = {"/": Node(b"", 0, 0)}
        self.sessions: dict[int, float] = {}       # session id -> timeout (seconds)
        self.ephemerals: dict[int, set[str]] = {}
        self.caching: set[int] = set()             # sessions that cache node data
        # client id -> (last request seq, its result as wire data, zxid): a write
        # retried after a failover is answered from here, not applied twice
        self.requests: dict[int, tuple[int, object, int]] = {}

    def apply_request(self, zxid: int, client: int, seq: int,
                      cmd: Command) -> tuple[object, list[WatchEvent]]:
        """Apply CMD once per (CLIENT, SEQ): a duplicate gets the first result.
        Results are returned as wire data (result_to_wire)."""
        if client:
            last = self.requests.get(client)
            if last is not None and seq <= last[0]:
                if seq == last[0]:
                    return last[1], []
                return {"error": BadArguments.code, "message": "request is older than "
                        "one this client already completed"}, []
        result, events = self.apply(zxid, cmd)
        wire = result_to_wire(result)
        if client:
            self.requests[client] = (seq, wire, zxid)
            if len(self.requests) > MAX_CLIENTS:
                oldest = min(self.requests, key=lambda c: self.requests[c][2])
                del self.requests[oldest]
        return wire, events

    # -- reads -------------------------------------------------------------------

    def get(self, path: str) -> tuple[bytes, Stat]:
        node = self._node(path)
        return node.data, node.stat()

    def exists(self, path: str) -> Stat | None:
        node = self.nodes.get(_check_path(path))
        return node.stat() if node else None

    def children(self, path: str) -> list[str]:
        return sorted(self._node(path).children)

    # -- writes --------------------------------------------------------------------

    def apply(self, zxid: int, cmd: Command) -> tuple[object, list[WatchEvent]]:
        """Apply CMD as transaction ZXID: (result or the CoordError raised, events).
        A failed command changes nothing."""
        events: list[WatchEvent] = []
        try:
            if isinstance(cmd, Multi):
                return self._multi(zxid, cmd, events), events
            return self._apply_one(zxid, cmd, events, undo=None), events
        except CoordError as exc:
            return exc, []

    def _apply_one(self, zxid: int, cmd: Command, events: list, undo: list | None):
        if isinstance(cmd, OpenSession):
            self.sessions[cmd.session] = cmd.timeout
            self.ephemerals.setdefault(cmd.session, set())
            if cmd.cache:
                self.caching.add(cmd.session)
            return cmd.session
        if isinstance(cmd, CloseSession):
            for path in sorted(self.ephemerals.pop(cmd.session, set()), reverse=True):
                if path in self.nodes:
                    self._delete(zxid, path, -1, events, undo)
            self.sessions.pop(cmd.session, None)
            self.caching.discard(cmd.session)
            return True
        if isinstance(cmd, Create):
            return self._create(zxid, cmd, events, undo)
        if isinstance(cmd, SetData):
            return self._set(zxid, cmd, events, undo)
        if isinstance(cmd, Delete):
            return self._delete(zxid, cmd.path, cmd.version, events, undo)
        if isinstance(cmd, Check):
            node = self._node(cmd.path)
            if cmd.version != -1 and node.version != cmd.version:
                raise BadVersion(cmd.path)
            return True
        raise BadArguments(f"unknown command {type(cmd).__name__}")

    def _multi(self, zxid: int, cmd: Multi, events: list) -> list:
        undo: list = []
        results = []
        try:
            for op in cmd.ops:
                if isinstance(op, OpenSession | CloseSession | Multi):
                    raise BadArguments(f"{type(op).__name__} cannot be part of a multi")
                results.append(self._apply_one(zxid, op, events, undo))
        except CoordError:
            for restore in reversed(undo):
                restore()
            events.clear()
            raise
        return results

    def _create(self, zxid: int, cmd: Create, events: list, undo: list | None) -> str:
        path = _check_path(cmd.path)
        if path == "/":
            raise NodeExists(path)
        _check_data(cmd.data)
        parent_path = posixpath.dirname(path)
        parent = self._node(parent_path)
        if parent.ephemeral_owner:
            raise NoChildrenForEphemerals(parent_path)
        if cmd.ephemeral and cmd.session not in self.sessions:
            raise SessionExpired(f"session {cmd.session:x}")
        if cmd.sequential:       # ZooKeeper numbers from the parent's child-change count
            path = f"{path}{parent.cversion:010d}"
        if path in self.nodes:
            raise NodeExists(path)
        name = posixpath.basename(path)
        old_cversion = parent.cversion
        node = Node(cmd.data, zxid, zxid, ephemeral_owner=cmd.session if cmd.ephemeral else 0)
        self.nodes[path] = node
        parent.children.add(name)
        parent.cversion += 1
        if cmd.ephemeral:
            self.ephemerals[cmd.session].add(path)
        if undo is not None:
            def restore(path=path, parent=parent, name=name):
                del self.nodes[path]
                parent.children.discard(name)
                parent.cversion = old_cversion
                if cmd.ephemeral:
                    self.ephemerals[cmd.session].discard(path)
            undo.append(restore)
        events += [WatchEvent(EventType.CREATED, path),
                   WatchEvent(EventType.CHILDREN_CHANGED, parent_path)]
        return path

    def _set(self, zxid: int, cmd: SetData, events: list, undo: list | None) -> Stat:
        node = self._node(cmd.path)
        _check_data(cmd.data)
        if cmd.version != -1 and node.version != cmd.version:
            raise BadVersion(cmd.path)
        old = (node.data, node.version, node.mzxid)
        node.data, node.version, node.mzxid = cmd.data, node.version + 1, zxid
        if undo is not None:
            def restore(node=node, old=old):
                node.data, node.version, node.mzxid = old
            undo.append(restore)
        events.append(WatchEvent(EventType.DATA_CHANGED, _check_path(cmd.path)))
        return node.stat()

    def _delete(self, zxid: int, path: str, version: int, events: list,
                undo: list | None) -> bool:
        path = _check_path(path)
        if path == "/":
            raise BadArguments("the root cannot be deleted")
        node = self._node(path)
        if version != -1 and node.version != version:
            raise BadVersion(path)
        if node.children:
            raise NotEmpty(path)
        parent_path, name = posixpath.dirname(path), posixpath.basename(path)
        parent = self.nodes[parent_path]
        del self.nodes[path]
        parent.children.discard(name)
        parent.cversion += 1
        if node.ephemeral_owner:
            self.ephemerals.get(node.ephemeral_owner, set()).discard(path)
        if undo is not None:
            def restore(path=path, node=node, parent=parent, name=name):
                self.nodes[path] = node
                parent.children.add(name)
                parent.cversion -= 1
                if node.ephemeral_owner:
                    self.ephemerals.setdefault(node.ephemeral_owner, set()).add(path)
            undo.append(restore)
        events += [WatchEvent(EventType.DELETED, path),
                   WatchEvent(EventType.CHILDREN_CHANGED, parent_path)]
        return True

    def _node(self, path: str) -> Node:
        node = self.nodes.get(_check_path(path))
        if node is None:
            raise NoNode(path)
        return node

    # -- snapshots ---------------------------------------------------------------------

    def dump(self) -> dict:
        return {"nodes": {p: [n.data, n.czxid, n.mzxid, n.version, n.cversion,
                              n.ephemeral_owner] for p, n in self.nodes.items()},
                "sessions": {str(s): t for s, t in self.sessions.items()},
                "caching": sorted(self.caching),
                "requests": {str(c): list(r) for c, r in self.requests.items()}}

    @classmethod
    def load(cls, image: dict) -> Tree:
        t = cls()
        t.nodes = {}
        for path, (data, czxid, mzxid, version, cversion, owner) in image["nodes"].items():
            t.nodes[path] = Node(data, czxid, mzxid, version, cversion, owner)
        for path, node in t.nodes.items():
            if path != "/":
                t.nodes[posixpath.dirname(path)].children.add(posixpath.basename(path))
            if node.ephemeral_owner:
                t.ephemerals.setdefault(node.ephemeral_owner, set()).add(path)
        t.sessions = {int(s): timeout for s, timeout in image["sessions"].items()}
        t.requests = {int(c): tuple(r) for c, r in image.get("requests", {}).items()}
        t.caching = set(image.get("caching", []))
        for s in t.sessions:
            t.ephemerals.setdefault(s, set())
        return t


def _check_path(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadArguments(f"path must be absolute: {path!r}")
    if path != "/" and (path.endswith("/") or "//" in path or "\x00" in path
                        or any(p in (".", "..") for p in path.split("/")[1:])):
        raise BadArguments(f"invalid path: {path!r}")
    return path


def _check_data(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray):
        raise BadArguments("data must be bytes")
    if len(data) > MAX_DATA:
        raise BadArguments(f"data is {len(data)} bytes; a node holds at most {MAX_DATA}")

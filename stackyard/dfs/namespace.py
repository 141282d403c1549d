"""The master's namespace: directories, files, and each file's chunks.

A pure state machine: `apply(op)` validates, then mutates, and raises the
file-system error a client should see if the op is not valid. It does no
I/O and reads no clock, so replaying the op log over a checkpoint rebuilds
the same tree. Chunk replica locations are not here: they are soft state,
learnt from chunkservers (see chunkmap.py), exactly as in GFS.

Invariants:
- every chunk handle in `chunks` belongs to exactly one file, in order;
- a file's length is the sum of its chunks' committed lengths;
- a file with a `holder` is under construction, and only that holder writes.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from stackyard.dfs import ops
from stackyard.errors import fs_error


@dataclass
class Chunk:
    handle: str
    version: int = 0          # committed version: replicas below it are stale
    length: int = 0           # committed length
    issued: int = 0           # highest version handed to a writer
    file: Inode | None = field(default=None, repr=False)


@dataclass
class Inode:
    name: str
    is_dir: bool
    owner: str
    group: str
    mode: int
    mtime: float
    children: dict[str, Inode] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    replication: int = 0
    chunk_size: int = 0
    holder: str = ""          # lease holder while under construction
    parent: Inode | None = field(default=None, repr=False)

    @property
    def length(self) -> int:
        return sum(c.length for c in self.chunks)


def normalize(path: str) -> str:
    """An absolute, normalized DFS path; ValueError names what is wrong."""
    if not isinstance(path, str) or not path:
        raise ValueError("path: must be a non-empty string")
    if not path.startswith("/"):
        raise ValueError(f"path: must be absolute, got {path!r}")
    if "\x00" in path:
        raise ValueError("path: must not contain NUL")
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"path: must not contain '.' or '..' components: {path!r}")
    return norm


class Namespace:
    def __init__(self, owner: str = "root", group: str = "supergroup"):
        self.root = Inode("", True, owner, group, 0o755, 0.0)
        self.chunks: dict[str, Chunk] = {}

    # -- lookups ------------------------------------------------------------

    def lookup(self, path: str) -> Inode | None:
        node = self.root
        for part in _parts(normalize(path)):
            if not node.is_dir:
                return None
            node = node.children.get(part)
            if node is None:
                return None
        return node

    def get(self, path: str) -> Inode:
        node = self.lookup(path)
        if node is None:
            raise fs_error("ENOENT", path)
        return node

    def get_file(self, path: str) -> Inode:
        node = self.get(path)
        if node.is_dir:
            raise fs_error("EISDIR", path)
        return node

    def _parent_of(self, path: str) -> tuple[Inode, str]:
        path = normalize(path)
        if path == "/":
            raise fs_error("EEXIST", path)
        head, name = posixpath.split(path)
        parent = self.lookup(head)
        if parent is None:
            raise fs_error("ENOENT", head)
        if not parent.is_dir:
            raise fs_error("ENOTDIR", head)
        return parent, name

    @staticmethod
    def path_of(node: Inode) -> str:
        parts = []
        while node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def walk_files(self, node: Inode):
        if not node.is_dir:
            yield node
            return
        for child in node.children.values():
            yield from self.walk_files(child)

    # -- apply --------------------------------------------------------------

    def apply(self, op: ops.Op):
        handler = getattr(self, "_" + type(op).__name__)
        return handler(op)

    def _Mkdir(self, op: ops.Mkdir) -> bool:
        path = normalize(op.path)
        if path == "/":
            return False
        missing = []
        node, probe = self.lookup(path), path
        if node is not None:
            if not node.is_dir:
                raise fs_error("EEXIST", path)
            if op.parents:
                return False
            raise fs_error("EEXIST", path)
        while self.lookup(probe) is None:
            missing.append(probe)
            probe = posixpath.dirname(probe)
        if not self.lookup(probe).is_dir:
            raise fs_error("ENOTDIR", probe)
        if len(missing) > 1 and not op.parents:
            raise fs_error("ENOENT", posixpath.dirname(path))
        for p in reversed(missing):
            parent, name = self._parent_of(p)
            child = Inode(name, True, op.owner, op.group, op.mode, op.mtime, parent=parent)
            parent.children[name] = child
            parent.mtime = op.mtime
        return True

    def _Create(self, op: ops.Create) -> Inode:
        parent, name = self._parent_of(op.path)
        old = parent.children.get(name)
        if old is not None:
            if old.is_dir:
                raise fs_error("EISDIR", op.path)
            if old.holder and old.holder != op.holder:
                raise fs_error("EBUSY", op.path, f"File is being written by another client ({old.holder})")
            if not op.overwrite:
                raise fs_error("EEXIST", op.path)
            self._drop_chunks(old)
        node = Inode(name, False, op.owner, op.group, op.mode, op.mtime, replication=op.replication,
                     chunk_size=op.chunk_size, holder=op.holder, parent=parent)
        parent.children[name] = node
        parent.mtime = op.mtime
        return node

    def _OpenAppend(self, op: ops.OpenAppend) -> Inode:
        node = self.get_file(op.path)
        if node.holder and node.holder != op.holder:
            raise fs_error("EBUSY", op.path, f"File is being written by another client ({node.holder})")
        node.holder = op.holder
        return node

    def _AddChunk(self, op: ops.AddChunk) -> Chunk:
        node = self.get_file(op.path)
        if op.handle in self.chunks:
            raise ValueError(f"handle: chunk {op.handle} already exists")
        chunk = Chunk(op.handle, issued=op.version, file=node)
        node.chunks.append(chunk)
        self.chunks[op.handle] = chunk
        return chunk

    def _BumpVersion(self, op: ops.BumpVersion) -> Chunk:
        chunk = self._chunk(op.handle)
        chunk.issued = max(chunk.issued, op.version)
        return chunk

    def _CommitChunk(self, op: ops.CommitChunk) -> Chunk:
        chunk = self._chunk(op.handle)
        if op.version < chunk.version or op.length < chunk.length:
            raise ValueError(f"commit of chunk {op.handle} would go backwards")
        chunk.version, chunk.length = op.version, op.length
        chunk.issued = max(chunk.issued, op.version)
        if chunk.file is not None:
            chunk.file.mtime = op.mtime
        return chunk

    def _Close(self, op: ops.Close) -> Inode:
        node = self.get_file(op.path)
        if node.holder != op.holder:
            raise fs_error("EBUSY", op.path, "File is not held by this writer (lease lost?)")
        node.holder = ""
        node.mtime = op.mtime
        return node

    def _Delete(self, op: ops.Delete) -> list[str]:
        path = normalize(op.path)
        if path == "/":
            raise fs_error("EACCES", path, "Cannot delete the root directory")
        node = self.get(path)
        if node.is_dir and node.children and not op.recursive:
            raise fs_error("ENOTEMPTY", path, f"`{path}' is a non empty directory")
        handles = []
        for f in self.walk_files(node):
            handles.extend(c.handle for c in f.chunks)
            self._drop_chunks(f)
        del node.parent.children[node.name]
        return handles

    def _Rename(self, op: ops.Rename) -> str:
        src, dst = normalize(op.src), normalize(op.dst)
        node = self.get(src)
        if src == "/":
            raise fs_error("EACCES", src, "Cannot move the root directory")
        target = self.lookup(dst)
        if target is not None and target.is_dir:
            dst = posixpath.join(dst, node.name)
            target = self.lookup(dst)
        if target is not None:
            raise fs_error("EEXIST", dst)
        if dst == src or dst.startswith(src.rstrip("/") + "/"):
            raise ValueError(f"`{src}' cannot be moved into itself")
        parent, name = self._parent_of(dst)
        del node.parent.children[node.name]
        node.parent.mtime = op.mtime
        node.name, node.parent = name, parent
        parent.children[name] = node
        parent.mtime = op.mtime
        return dst

    def _SetReplication(self, op: ops.SetReplication) -> list[Inode]:
        if op.replication < 1:
            raise ValueError(f"replication: must be at least 1, got {op.replication}")
        files = list(self.walk_files(self.get(op.path)))
        for f in files:
            f.replication = op.replication
        return files

    def _SetPermission(self, op: ops.SetPermission) -> Inode:
        if not 0 <= op.mode <= 0o7777:
            raise ValueError(f"mode: must be an octal mode like 755, got {op.mode:o}")
        node = self.get(op.path)
        node.mode = op.mode
        return node

    def _SetOwner(self, op: ops.SetOwner) -> Inode:
        node = self.get(op.path)
        node.owner = op.owner or node.owner
        node.group = op.group or node.group
        return node

    def _chunk(self, handle: str) -> Chunk:
        chunk = self.chunks.get(handle)
        if chunk is None:
            raise fs_error("ENOENT", None, f"No such chunk {handle}")
        return chunk

    def _drop_chunks(self, node: Inode) -> None:
        for c in node.chunks:
            self.chunks.pop(c.handle, None)
        node.chunks = []

    # -- checkpoint -----------------------------------------------------------

    def dump(self) -> dict:
        return _dump(self.root)

    @classmethod
    def load(cls, image: dict) -> Namespace:
        ns = cls()
        ns.root = _load(image, None, ns.chunks)
        return ns


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _dump(n: Inode) -> dict:
    d = {"n": n.name, "d": n.is_dir, "o": n.owner, "g": n.group, "m": n.mode, "t": n.mtime}
    if n.is_dir:
        d["c"] = [_dump(c) for c in n.children.values()]
    else:
        d.update(r=n.replication, s=n.chunk_size, h=n.holder,
                 k=[[c.handle, c.version, c.length, c.issued] for c in n.chunks])
    return d


def _load(d: dict, parent: Inode | None, table: dict[str, Chunk]) -> Inode:
    node = Inode(d["n"], d["d"], d["o"], d["g"], d["m"], d["t"], parent=parent)
    if node.is_dir:
        for c in d["c"]:
            child = _load(c, node, table)
            node.children[child.name] = child
    else:
        node.replication, node.chunk_size, node.holder = d["r"], d["s"], d["h"]
        for handle, version, length, issued in d["k"]:
            chunk = Chunk(handle, version, length, issued, file=node)
            node.chunks.append(chunk)
            table[handle] = chunk
    return node

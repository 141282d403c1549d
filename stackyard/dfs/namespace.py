"""The master's namespace: directories, files, and each file's chunks.

A pure state machine: `apply(op)` validates, then mutates, and raises the
file-system error a client should see if the op is not valid. It does no
I/O and reads no clock, so replaying the op log over a checkpoint rebuilds
the same tree. Chunk replica locations are not here: they are soft state,
learnt from chunkservers (see chunkmap.py), exactly as in GFS.

Bounds, as HDFS's (DFSUtil, FSDirectory): a path of at most MAX_PATH_LENGTH
characters and MAX_PATH_DEPTH components, each at most MAX_NAME_BYTES bytes
of UTF-8 and free of control characters (they would reach a terminal raw in
every listing); at most `max_items` entries in one directory
(dfs.namenode.fs-limits.max-directory-items). Every walk of the tree is
iterative, and the checkpoint image is a flat list of inodes (each naming its
parent), so no depth the bounds allow can exhaust a stack.

Invariants:
- every chunk handle in `chunks` belongs to exactly one file, in order;
- a file's length is the sum of its chunks' committed lengths;
- a file with a `holder` is under construction, and only that holder writes.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from stackyard.dfs import ops, quota
from stackyard.dfs.quota import NO_QUOTA
from stackyard.errors import RequestTooLarge, fs_error


@dataclass(slots=True, eq=False)     # one per chunk: no per-object dict (memory)
class Chunk:
    handle: str
    version: int = 0          # committed version: replicas below it are stale
    length: int = 0           # committed length
    issued: int = 0           # highest version handed to a writer
    file: Inode | None = field(default=None, repr=False)


@dataclass(slots=True, eq=False)     # identity, not a deep comparison of subtrees
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
    ns_quota: int = NO_QUOTA  # a directory's quotas (quota.py): names, raw bytes
    ds_quota: int = NO_QUOTA

    @property
    def length(self) -> int:
        return sum(c.length for c in self.chunks)


MAX_PATH_LENGTH = 8000          # HDFS's MAX_PATH_LENGTH
MAX_PATH_DEPTH = 1000           # HDFS's MAX_PATH_DEPTH
MAX_NAME_BYTES = 255            # dfs.namenode.fs-limits.max-component-length
MAX_DIRECTORY_ITEMS = 1024 * 1024   # dfs.namenode.fs-limits.max-directory-items
MAX_REPLICATION = 512           # dfs.replication.max
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize(path: str) -> str:
    """An absolute, normalized DFS path within the bounds; ValueError names
    what is wrong (RequestTooLarge for a path past a bound)."""
    if not isinstance(path, str) or not path:
        raise ValueError("path: must be a non-empty string")
    if len(path) > MAX_PATH_LENGTH:
        raise RequestTooLarge(f"path: longer than {MAX_PATH_LENGTH} characters "
                              f"({len(path)}): {path[:40]!r}...")
    if not path.startswith("/"):
        raise ValueError(f"path: must be absolute, got {path!r}")
    bad = _CONTROL.search(path)
    if bad:
        raise ValueError(f"path: must not contain control characters "
                         f"({bad.group()!r} at {bad.start()}): {path!r}")
    parts = [p for p in path.split("/") if p]
    if len(parts) > MAX_PATH_DEPTH:
        raise RequestTooLarge(f"path: deeper than {MAX_PATH_DEPTH} directories "
                              f"({len(parts)}): {path[:40]!r}...")
    for part in parts:
        if part in (".", ".."):
            raise ValueError(f"path: must not contain '.' or '..' components: {path!r}")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise RequestTooLarge(f"path: the name {part[:40]!r}... is longer than "
                                  f"{MAX_NAME_BYTES} bytes")
    return "/" + "/".join(parts)


def check_mode(mode) -> int:
    if type(mode) is not int or not 0 <= mode <= 0o7777:
        raise ValueError(f"mode: must be an octal mode like 755, got {str(mode)[:30]}")
    return mode


def check_replication(replication) -> int:
    if type(replication) is not int or not 1 <= replication <= MAX_REPLICATION:
        raise ValueError(f"replication: must be 1..{MAX_REPLICATION}, got {replication}")
    return replication


class Namespace:
    def __init__(self, owner: str = "root", group: str = "supergroup",
                 max_items: int = MAX_DIRECTORY_ITEMS):
        self.root = Inode("", True, owner, group, 0o755, 0.0)
        self.chunks: dict[str, Chunk] = {}
        self.max_items = max_items
        self.decommissioned: set[str] = set()   # chunkserver addresses being drained

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

    @staticmethod
    def walk(node: Inode):
        """NODE and everything under it, parents before children."""
        stack = [node]
        while stack:
            n = stack.pop()
            yield n
            if n.is_dir:
                stack.extend(reversed(n.children.values()))

    def walk_files(self, node: Inode):
        return (n for n in self.walk(node) if not n.is_dir)

    def _room(self, parent: Inode, name: str) -> None:
        if name not in parent.children and len(parent.children) >= self.max_items:
            raise fs_error("ELIMIT", self.path_of(parent),
                           f"The directory item limit of {self.max_items} is exceeded")

    # -- apply --------------------------------------------------------------

    def apply(self, op: ops.Op):
        handler = getattr(self, "_" + type(op).__name__)
        return handler(op)

    def _Mkdir(self, op: ops.Mkdir) -> bool:
        check_mode(op.mode)
        path = normalize(op.path)
        parts = _parts(path)
        node, depth = self.root, 0          # one walk down: linear in the depth
        while depth < len(parts) and node.is_dir and parts[depth] in node.children:
            node = node.children[parts[depth]]
            depth += 1
        if not node.is_dir:
            raise fs_error("EEXIST" if depth == len(parts) else "ENOTDIR",
                           "/" + "/".join(parts[:depth]))
        if depth == len(parts):
            if op.parents or path == "/":
                return False
            raise fs_error("EEXIST", path)
        if len(parts) - depth > 1 and not op.parents:
            raise fs_error("ENOENT", posixpath.dirname(path))
        quota.check(self.path_of, node, names=len(parts) - depth)
        for name in parts[depth:]:
            self._room(node, name)
            child = Inode(name, True, op.owner, op.group, op.mode, op.mtime, parent=node)
            node.children[name] = child
            node.mtime = op.mtime
            node = child
        return True

    def _Create(self, op: ops.Create) -> Inode:
        check_mode(op.mode)
        check_replication(op.replication)
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
        else:
            quota.check(self.path_of, parent, names=1)
        self._room(parent, name)
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
        quota.check(self.path_of, node.parent, space=node.chunk_size * node.replication)
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

    def _Truncate(self, op: ops.Truncate) -> tuple[list[str], Chunk | None]:
        """(handles dropped, the chunk cut short or None). Its replicas stay
        longer on disk until trimmed: readers stop at the committed length,
        and every write first truncates a replica to it."""
        node = self.get_file(op.path)
        if node.holder:
            raise fs_error("EBUSY", op.path, f"Failed to TRUNCATE_FILE {op.path}: it is being "
                           f"written by {node.holder}")
        if type(op.length) is not int or op.length < 0:
            raise ValueError(f"Cannot truncate to a negative file size: {op.length}.")
        if op.length > node.length:
            raise ValueError(f"Cannot truncate to a larger file size. Current size: "
                             f"{node.length}, truncate size: {op.length}.")
        kept, dropped, cut, at = [], [], None, 0
        for c in node.chunks:
            if at >= op.length:
                dropped.append(c.handle)
                self.chunks.pop(c.handle, None)
                continue
            if at + c.length > op.length:
                c.length, cut = op.length - at, c
            at += c.length
            kept.append(c)
        node.chunks = kept
        node.mtime = op.mtime
        return dropped, cut

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
        self._room(parent, name)
        names, space = quota.usage(node)
        quota.check(self.path_of, parent, names, space, skip=list(quota.quota_dirs(node.parent)))
        del node.parent.children[node.name]
        node.parent.mtime = op.mtime
        node.name, node.parent = name, parent
        parent.children[name] = node
        parent.mtime = op.mtime
        return dst

    def _SetReplication(self, op: ops.SetReplication) -> list[Inode]:
        check_replication(op.replication)
        files = list(self.walk_files(self.get(op.path)))
        for f in files:
            if op.replication > f.replication:
                quota.check(self.path_of, f.parent,
                            space=quota.file_space(f) // f.replication * (op.replication
                                                                          - f.replication))
        for f in files:
            f.replication = op.replication
        return files

    def _Decommission(self, op: ops.Decommission) -> bool:
        """HDFS's exclude list, kept in the namespace so a new active master
        goes on draining the same servers."""
        if not isinstance(op.address, str) or ":" not in op.address or len(op.address) > 300:
            raise ValueError(f"address: expected host:port, got {str(op.address)[:40]!r}")
        (self.decommissioned.add if op.on else self.decommissioned.discard)(op.address)
        return True

    def _SetQuota(self, op: ops.SetQuota) -> Inode:
        node = self.get(op.path)
        if not node.is_dir:
            raise fs_error("ENOTDIR", op.path, f"{op.path}: quotas are set on directories")
        if op.names is not None:
            if type(op.names) is not int or not (op.names >= 1 or op.names == NO_QUOTA):
                raise ValueError(f"setQuota: Invalid values for quota : {op.names}")
            node.ns_quota = op.names
        if op.space is not None:
            if type(op.space) is not int or not (op.space >= 0 or op.space == NO_QUOTA):
                raise ValueError(f"setSpaceQuota: Invalid values for quota : {op.space}")
            node.ds_quota = op.space
        return node

    def _SetPermission(self, op: ops.SetPermission) -> Inode:
        check_mode(op.mode)
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
        """The image: every inode once, parents first, each naming its
        parent's place in the list (HDFS's fsimage does the same), so that
        its depth is never the tree's."""
        index: dict[int, int] = {}
        inodes = []
        for n in self.walk(self.root):
            index[id(n)] = len(inodes)
            row = [index[id(n.parent)] if n.parent is not None else -1, n.name, n.is_dir,
                   n.owner, n.group, n.mode, n.mtime]
            if not n.is_dir:
                row += [n.replication, n.chunk_size, n.holder,
                        [[c.handle, c.version, c.length, c.issued] for c in n.chunks]]
            elif n.ns_quota != NO_QUOTA or n.ds_quota != NO_QUOTA:
                row += [n.ns_quota, n.ds_quota]
            inodes.append(row)
        return {"format": 2, "inodes": inodes, "decommission": sorted(self.decommissioned)}

    @classmethod
    def load(cls, image: dict, max_items: int = MAX_DIRECTORY_ITEMS) -> Namespace:
        ns = cls(max_items=max_items)
        ns.decommissioned = set(image.get("decommission", ()))
        rows = image["inodes"] if image.get("format") == 2 else _flatten(image)
        made: list[Inode] = []
        for parent, name, is_dir, owner, group, mode, mtime, *file in rows:
            up = made[parent] if parent >= 0 else None
            node = Inode(name, is_dir, owner, group, mode, mtime, parent=up)
            if is_dir and file:
                node.ns_quota, node.ds_quota = file
            elif file:
                node.replication, node.chunk_size, node.holder, chunks = file
                for handle, version, length, issued in chunks:
                    chunk = Chunk(handle, version, length, issued, file=node)
                    node.chunks.append(chunk)
                    ns.chunks[handle] = chunk
            if up is None:
                ns.root = node
            else:
                up.children[name] = node
            made.append(node)
        return ns


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _flatten(image: dict) -> list[list]:
    """The rows of an image written before format 2 (nested dicts)."""
    rows: list[list] = []
    stack = [(image, -1)]
    while stack:
        d, parent = stack.pop()
        row = [parent, d["n"], d["d"], d["o"], d["g"], d["m"], d["t"]]
        if not d["d"]:
            row += [d["r"], d["s"], d["h"], d["k"]]
        rows.append(row)
        for child in reversed(d.get("c", ())):
            stack.append((child, len(rows) - 1))
    return rows

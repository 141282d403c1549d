"""The namespace mutations: what the op log records and replay applies.

Each op is a frozen dataclass; `encode` / `decode` turn it into the msgpack
map the log stores ({"op": NAME, ...fields}). Times are carried in the op,
never read during apply, so replay rebuilds exactly the same state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Mkdir:
    path: str
    owner: str
    group: str
    mode: int
    mtime: float
    parents: bool


@dataclass(frozen=True)
class Create:
    path: str
    owner: str
    group: str
    mode: int
    mtime: float
    replication: int
    chunk_size: int
    overwrite: bool
    holder: str


@dataclass(frozen=True)
class OpenAppend:
    path: str
    holder: str


@dataclass(frozen=True)
class AddChunk:
    """A new last chunk, already issued to its first writer at `version`."""
    path: str
    handle: str
    version: int = 0


@dataclass(frozen=True)
class BumpVersion:
    """A new write session on a chunk: versions are never reused."""
    handle: str
    version: int


@dataclass(frozen=True)
class CommitChunk:
    handle: str
    version: int
    length: int
    mtime: float


@dataclass(frozen=True)
class Close:
    path: str
    holder: str
    mtime: float


@dataclass(frozen=True)
class Truncate:
    """Cut a closed file to `length` bytes: later chunks go, the chunk the
    cut falls in keeps its version and a shorter committed length."""
    path: str
    length: int
    mtime: float


@dataclass(frozen=True)
class Delete:
    path: str
    recursive: bool


@dataclass(frozen=True)
class Rename:
    src: str
    dst: str
    mtime: float


@dataclass(frozen=True)
class SetReplication:
    path: str
    replication: int


@dataclass(frozen=True)
class SetPermission:
    path: str
    mode: int


@dataclass(frozen=True)
class SetOwner:
    path: str
    owner: str
    group: str


@dataclass(frozen=True)
class SetQuota:
    """A directory's quotas; None leaves one as it is, -1 clears it."""
    path: str
    names: int | None
    space: int | None


@dataclass(frozen=True)
class Decommission:
    """Drain a chunkserver (ON) or take it back into service."""
    address: str
    on: bool


Op = (Mkdir | Create | OpenAppend | AddChunk | BumpVersion | CommitChunk | Close | Truncate
      | Delete | Rename | SetReplication | SetPermission | SetOwner)

_BY_NAME = {cls.__name__: cls for cls in (
    Mkdir, Create, OpenAppend, AddChunk, BumpVersion, CommitChunk, Close, Truncate, Delete, Rename,
    SetReplication, SetPermission, SetOwner, SetQuota, Decommission)}


def encode(op: Op) -> dict:
    return {"op": type(op).__name__, **dataclasses.asdict(op)}


def decode(record: dict) -> Op:
    fields = dict(record)
    cls = _BY_NAME[fields.pop("op")]
    return cls(**fields)

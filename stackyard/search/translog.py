"""A shard copy's translog in the DFS: every operation, appended and made
durable on every replica of the DFS file (hflush) before the write is
acknowledged, so a shard whose server dies is rebuilt from its last commit
plus the operations after it (Elasticsearch's translog).

Record: length u32 | CRC32C u32 | msgpack [seq_no, primary_term, op, id,
source, version]. A generation is one file; a commit names the first
generation it still needs and the older ones are removed. A torn record at
the end of the newest generation was never acknowledged and is dropped.
"""

from __future__ import annotations

import logging
import struct
import threading

import crc32c
import msgpack

log = logging.getLogger("stackyard.search.translog")
_HEAD = struct.Struct(">II")


def encode(op: list) -> bytes:
    body = msgpack.packb(op, use_bin_type=True)
    return _HEAD.pack(len(body), crc32c.crc32c(body)) + body


def decode(data: bytes, where: str = "") -> list[list]:
    out, at = [], 0
    while at + _HEAD.size <= len(data):
        n, crc = _HEAD.unpack_from(data, at)
        body = data[at + _HEAD.size:at + _HEAD.size + n]
        if len(body) < n or crc32c.crc32c(body) != crc:
            log.warning("%s: record at %d is torn or corrupt; the log ends there", where, at)
            break
        out.append(msgpack.unpackb(body, raw=False))
        at += _HEAD.size + n
    return out


class Translog:
    def __init__(self, fs, directory: str, generation: int, replication: int | None = None):
        self.fs, self.dir, self.replication = fs, directory, replication
        self.lock = threading.Lock()
        self.generation = generation
        self.file = None
        self._open()

    def _path(self, gen: int) -> str:
        return f"{self.dir}/translog-{gen:08d}.tlog"

    def _open(self) -> None:
        self.file = self.fs.open(self._path(self.generation), "wb",
                                 replication=self.replication)

    def add(self, ops: list[list]) -> None:
        """Durable on return (every DFS replica of the file has the bytes)."""
        data = b"".join(encode(op) for op in ops)
        with self.lock:
            self.file.write(data)
            self.file.flush()

    def roll(self) -> int:
        """Start a new generation; the number of the one started."""
        with self.lock:
            self.file.close()
            self.generation += 1
            self._open()
            return self.generation

    def trim(self, keep_from: int) -> None:
        for gen in generations(self.fs, self.dir):
            if gen < keep_from:
                try:
                    self.fs.rm(self._path(gen))
                except OSError as exc:
                    log.warning("could not remove translog generation %d: %s", gen, exc)

    def close(self) -> None:
        with self.lock:
            if self.file is not None:
                try:
                    self.file.close()
                except OSError:
                    pass
                self.file = None


def generations(fs, directory: str) -> list[int]:
    try:
        entries = fs.ls(directory)
    except (FileNotFoundError, OSError):
        return []
    out = []
    for e in entries:
        name = (e["path"] if isinstance(e, dict) else str(e)).rsplit("/", 1)[-1]
        if name.startswith("translog-") and name.endswith(".tlog"):
            out.append(int(name[9:17]))
    return sorted(out)


def read(fs, directory: str, from_gen: int = 0) -> list[list]:
    ops = []
    for gen in generations(fs, directory):
        if gen >= from_gen:
            path = f"{directory}/translog-{gen:08d}.tlog"
            ops += decode(fs.cat(path), path)
    return ops

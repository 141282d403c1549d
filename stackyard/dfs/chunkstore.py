"""Chunk replicas on a chunkserver's local disk. Format: docs/formats.md.

    <data_dir>/chunks/<first 2 hex of handle>/<handle>.dat    the bytes
    <data_dir>/chunks/<first 2 hex of handle>/<handle>.meta   msgpack
        {"v": version, "n": length, "c": CRC32C of each 64 KiB block, 4 bytes
         big-endian each}

The .meta file is the truth: a write lands in .dat, is fsync'd, and only then
does a new .meta (written aside, fsync'd, renamed) say how long the replica
is and at which version. Bytes in .dat past the meta's length are leftovers
of a write that never finished and are never served.

A handle must match HANDLE_RE before it becomes part of a path.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import crc32c
import msgpack

from stackyard.cluster.config import BLOCK
from stackyard.dfs.writeback import WriteBehind
from stackyard.errors import CorruptDataError, fs_error

HANDLE_RE = re.compile(r"^[0-9a-f]{16}$")


def check_handle(handle: str) -> str:
    if not isinstance(handle, str) or not HANDLE_RE.fullmatch(handle):
        raise ValueError(f"handle: not a chunk handle: {str(handle)[:40]!r}")
    return handle


@dataclass
class ChunkMeta:
    version: int
    length: int
    crcs: list[int]

    def pack(self) -> bytes:
        return msgpack.packb({"v": self.version, "n": self.length,
                              "c": struct.pack(f">{len(self.crcs)}I", *self.crcs)})

    @classmethod
    def unpack(cls, raw: bytes) -> ChunkMeta:
        d = msgpack.unpackb(raw)
        c = d["c"]
        return cls(d["v"], d["n"], list(struct.unpack(f">{len(c) // 4}I", c)))


def block_crcs(data: bytes | memoryview) -> list[int]:
    view = memoryview(data)
    return [crc32c.crc32c(view[i:i + BLOCK]) for i in range(0, len(view), BLOCK)]


class ChunkStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir) / "chunks"
        self.root.mkdir(parents=True, exist_ok=True)
        for tmp in self.root.glob("*/*.tmp"):
            tmp.unlink()
        # handle -> (version, length): what the .meta files say, kept in memory
        # so that heartbeats do not re-read every chunk's metadata. Writes finish
        # in helper threads, hence the lock.
        self._lock = threading.Lock()
        self._index = {h: (v, n) for h, v, n in self._scan()}
        self.writing: set[str] = set()      # handles with a write session open

    def _paths(self, handle: str) -> tuple[Path, Path]:
        check_handle(handle)
        d = self.root / handle[:2]
        return d / f"{handle}.dat", d / f"{handle}.meta"

    # -- metadata ---------------------------------------------------------------

    def meta(self, handle: str) -> ChunkMeta | None:
        _, meta = self._paths(handle)
        try:
            return ChunkMeta.unpack(meta.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, struct.error, msgpack.ExtraData):
            return None

    def _write_meta(self, handle: str, meta: ChunkMeta) -> None:
        _, path = self._paths(handle)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(meta.pack())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._index[handle] = (meta.version, meta.length)

    def report(self) -> list[tuple[str, int, int]]:
        """(handle, version, length) of every replica here."""
        with self._lock:
            return [(h, v, n) for h, (v, n) in self._index.items()]

    def used_bytes(self) -> int:
        with self._lock:
            return sum(n for _v, n in self._index.values())

    def _scan(self) -> list[tuple[str, int, int]]:
        out = []
        for meta_path in self.root.glob("*/*.meta"):
            handle = meta_path.stem
            if HANDLE_RE.fullmatch(handle):
                m = self.meta(handle)
                if m is not None:
                    out.append((handle, m.version, m.length))
        return out

    def disk_usage(self) -> tuple[int, int]:
        du = shutil.disk_usage(self.root)
        return du.total, du.free

    # -- writes -----------------------------------------------------------------

    def begin_write(self, handle: str, version: int, offset: int) -> ChunkWrite:
        """Start writing at OFFSET (the committed length the writer knows)."""
        data, _ = self._paths(handle)
        meta = self.meta(handle)
        have = meta.length if meta else 0
        if offset > have:
            raise fs_error("EIO", None, f"chunk {handle}: replica has {have} bytes, write starts at {offset}")
        if meta and version < meta.version:
            raise ValueError(f"chunk {handle}: write version {version} older than replica's {meta.version}")
        data.parent.mkdir(exist_ok=True)
        return ChunkWrite(self, handle, version, offset, meta)

    def rollback(self, handle: str, version: int, length: int) -> None:
        meta = self.meta(handle)
        if meta is None or meta.length < length:
            raise fs_error("EIO", None, f"chunk {handle}: cannot roll back to {length} bytes")
        data, _ = self._paths(handle)
        nblocks = -(-length // BLOCK)
        crcs = meta.crcs[:nblocks]
        if length % BLOCK:
            with open(data, "rb") as f:
                f.seek((nblocks - 1) * BLOCK)
                crcs[-1] = crc32c.crc32c(f.read(length % BLOCK))
        with open(data, "r+b") as f:
            f.truncate(length)
            os.fsync(f.fileno())
        self._write_meta(handle, ChunkMeta(version, length, crcs))

    def delete(self, handle: str) -> bool:
        data, meta = self._paths(handle)
        with self._lock:
            self._index.pop(handle, None)
        found = meta.exists()
        meta.unlink(missing_ok=True)
        data.unlink(missing_ok=True)
        return found

    # -- reads ------------------------------------------------------------------

    def open_range(self, handle: str, offset: int, length: int, min_version: int):
        """(file positioned at the first whole block, its start, byte count, CRCs).

        The range is widened to whole checksum blocks so the reader can verify
        every byte it gets."""
        meta = self.meta(handle)
        if meta is None:
            raise fs_error("ENOENT", None, f"No replica of chunk {handle} here")
        if meta.version < min_version:
            raise fs_error("EIO", None, f"chunk {handle}: replica is stale (version {meta.version} < {min_version})")
        if offset < 0 or length < 0 or offset + length > meta.length:
            raise ValueError(f"range {offset}+{length} outside chunk {handle} of {meta.length} bytes")
        first = offset // BLOCK
        last = -(-(offset + length) // BLOCK) if length else first
        start = first * BLOCK
        count = min(last * BLOCK, meta.length) - start
        data, _ = self._paths(handle)
        f = open(data, "rb")
        f.seek(start)
        return f, start, count, meta.crcs[first:last]

    def verify(self, handle: str) -> bool:
        """Read the whole replica and check every block's CRC (the scanner)."""
        meta = self.meta(handle)
        if meta is None:
            return False
        data, _ = self._paths(handle)
        try:
            with open(data, "rb") as f:
                got = block_crcs(f.read(meta.length))
        except OSError:
            return False
        return len(got) == len(meta.crcs) and got == meta.crcs and \
            sum(min(BLOCK, meta.length - i * BLOCK) for i in range(len(got))) == meta.length


class ChunkWrite:
    """One write session: feed bytes in order, then `finish()` makes them durable."""

    def __init__(self, store: ChunkStore, handle: str, version: int, offset: int,
                 meta: ChunkMeta | None):
        self.store, self.handle, self.version = store, handle, version
        data, _ = store._paths(handle)
        self.fd = os.open(data, os.O_RDWR | os.O_CREAT, 0o644)
        nfull = offset // BLOCK
        self.crcs = list(meta.crcs[:nfull]) if meta else []
        self.block_fill = offset % BLOCK
        self.block_crc = 0
        if self.block_fill:
            # the stored block may run past OFFSET (a truncated file's replica
            # not yet trimmed): check it whole, then keep its head
            stored = min(meta.length, (nfull + 1) * BLOCK) - nfull * BLOCK if meta else 0
            block = os.pread(self.fd, stored, nfull * BLOCK)
            if meta is None or crc32c.crc32c(block) != meta.crcs[nfull]:
                os.close(self.fd)
                raise CorruptDataError(5, f"chunk {handle}: last block fails its checksum")
            self.block_crc = crc32c.crc32c(block[:self.block_fill])
        os.ftruncate(self.fd, offset)
        self.length = offset
        os.lseek(self.fd, offset, os.SEEK_SET)
        store.writing.add(handle)
        self.behind = WriteBehind(self.fd, offset)

    def write(self, piece: bytes | memoryview) -> None:
        view = memoryview(piece)
        while view:
            n = os.write(self.fd, view)
            self._checksum(view[:n])
            view = view[n:]
        self.behind.advance(self.length)

    def _checksum(self, view: memoryview) -> None:
        pos = 0
        while pos < len(view):
            take = min(BLOCK - self.block_fill, len(view) - pos)
            self.block_crc = crc32c.crc32c(view[pos:pos + take], self.block_crc)
            self.block_fill += take
            pos += take
            if self.block_fill == BLOCK:
                self.crcs.append(self.block_crc)
                self.block_crc, self.block_fill = 0, 0
        self.length += len(view)

    def finish(self) -> ChunkMeta:
        self.behind.wait()
        os.fsync(self.fd)
        os.close(self.fd)
        crcs = self.crcs + ([self.block_crc] if self.block_fill else [])
        meta = ChunkMeta(self.version, self.length, crcs)
        self.store._write_meta(self.handle, meta)
        self.store.writing.discard(self.handle)
        return meta

    def abort(self) -> None:
        self.store.writing.discard(self.handle)
        self.behind.wait()
        try:
            os.close(self.fd)
        except OSError:
            pass


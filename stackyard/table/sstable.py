"""SSTables: one column family's cells of one tablet, sorted, immutable
(Bigtable's SSTable, HBase's HFile). The format is in docs/table.md:

    data block*  bloom block  index block  meta block  trailer

Every block is `codec u8 | raw length u32 | stored length u32 | CRC32C of the
stored bytes u32 | stored bytes`, its body a msgpack list. A data block
holds about 64 KiB of cells `[row, qualifier, ts, kind, value]`; the index
lists each block's first key, offset and size; the trailer (fixed size, its
own CRC) says where the other blocks are. Reads verify each block's CRC and
raise CorruptBlock naming the file and offset.
"""

from __future__ import annotations

import bisect
import itertools
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

import crc32c
import msgpack

from stackyard.errors import CorruptDataError
from stackyard.table import codecs
from stackyard.table.bloom import Bloom
from stackyard.table.model import Cell, sort_key

MAGIC = b"YARDSST1"
BLOCK_SIZE = 64 * 1024
HEADER = struct.Struct(">BIII")
TRAILER = struct.Struct(">8sQIQIQIHI")      # magic, 3 x (offset, length), version, crc
VERSION = 1


class CorruptBlock(CorruptDataError):
    """A block whose CRC32C does not match: the file is damaged."""


def _block(codec: int, body) -> bytes:
    raw = msgpack.packb(body, use_bin_type=True)
    stored = codecs.compress(codec, raw)
    if codec != codecs.NONE and len(stored) >= len(raw):
        codec, stored = codecs.NONE, raw
    return HEADER.pack(codec, len(raw), len(stored), crc32c.crc32c(stored)) + stored


def write(out, cells: Iterable[Cell], codec: str = "none", bloom: bool = True,
          block_size: int = BLOCK_SIZE) -> dict:
    """Write sorted CELLS to the binary file OUT; the file's meta block."""
    cid = codecs.BY_NAME[codec]
    offset, index, rows, block, size = 0, [], [], [], 0
    meta = {"cells": 0, "min_ts": None, "max_ts": None, "first": None, "last": None}

    def emit():
        nonlocal offset, block, size
        data = _block(cid, block)
        index.append([list(sort_key(block[0])[:2]) + [block[0][2], block[0][3]], offset,
                      len(data)])
        out.write(data)
        offset += len(data)
        block, size = [], 0

    for cell in cells:
        row, qual, ts, kind, value = cell
        if not rows or rows[-1] != row:
            rows.append(row)
        block.append([row, qual, ts, int(kind), value])
        size += len(row) + len(qual) + len(value) + 16
        meta["cells"] += 1
        meta["min_ts"] = ts if meta["min_ts"] is None else min(meta["min_ts"], ts)
        meta["max_ts"] = ts if meta["max_ts"] is None else max(meta["max_ts"], ts)
        if size >= block_size:
            emit()
    if block:
        emit()
    meta["first"], meta["last"] = (rows[0], rows[-1]) if rows else (None, None)
    places = []
    for body in ({"bits": bytes(Bloom.for_keys(rows).bits) if bloom else b"",
                  "k": Bloom.for_keys([]).k},
                 index, meta):
        data = _block(codecs.NONE, body)
        places += [offset, len(data)]
        out.write(data)
        offset += len(data)
    head = TRAILER.pack(MAGIC, *places, VERSION, 0)[:-4]
    out.write(head + struct.pack(">I", crc32c.crc32c(head)))
    meta["size"] = offset + TRAILER.size
    return meta


class BlockCache:
    """Decoded data blocks, least recently used out first, bounded in bytes
    (one per tablet server, shared by every file it reads)."""

    def __init__(self, capacity: int = 256 << 20):
        self.capacity, self.used = capacity, 0
        self.blocks: OrderedDict[tuple, tuple[list, int]] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple):
        with self.lock:
            hit = self.blocks.get(key)
            if hit is None:
                self.misses += 1
                return None
            self.blocks.move_to_end(key)
            self.hits += 1
            return hit[0]

    def put(self, key: tuple, cells: list, size: int) -> None:
        with self.lock:
            if key in self.blocks:
                return
            self.blocks[key] = (cells, size)
            self.used += size
            while self.used > self.capacity and self.blocks:
                _, (_, n) = self.blocks.popitem(last=False)
                self.used -= n


Pread = Callable[[int, int], bytes]
_OPENED = itertools.count()


class Reader:
    """An open SSTable: its index, bloom and meta in memory, data blocks read
    on demand through PREAD(offset, length) and kept in CACHE."""

    def __init__(self, name: str, pread: Pread, size: int, cache: BlockCache | None = None):
        self.name, self.pread, self.cache = name, pread, cache or BlockCache(8 << 20)
        if size < TRAILER.size:
            raise CorruptBlock(f"{name}: {size} bytes is too short for an SSTable")
        tail = pread(size - TRAILER.size, TRAILER.size)
        magic, *places, version, crc = TRAILER.unpack(tail)
        if magic != MAGIC or crc32c.crc32c(tail[:-4]) != crc:
            raise CorruptBlock(f"{name}: bad SSTable trailer (not an SSTable, or damaged)")
        if version != VERSION:
            raise CorruptBlock(f"{name}: SSTable version {version}, this reader knows {VERSION}")
        bloom, index, self.meta = (self._read(places[i], places[i + 1]) for i in (0, 2, 4))
        self.bloom = Bloom(bytearray(bloom["bits"]), bloom["k"]) if bloom["bits"] else None
        self.index = index
        self.first_keys = [(e[0][0], e[0][1], -e[0][2], -e[0][3]) for e in index]
        self.size = size
        self.key = next(_OPENED)         # cache entries belong to this open, not the path

    def _read(self, offset: int, length: int):
        data = self.pread(offset, length)
        if len(data) != length:
            raise CorruptBlock(f"{self.name}: block at {offset} is cut short")
        codec, raw_len, stored_len, crc = HEADER.unpack_from(data)
        stored = data[HEADER.size:HEADER.size + stored_len]
        if len(stored) != stored_len or crc32c.crc32c(stored) != crc:
            raise CorruptBlock(f"{self.name}: checksum mismatch in the block at offset {offset}")
        return msgpack.unpackb(codecs.decompress(codec, stored, raw_len), raw=False)

    def block(self, i: int) -> list[Cell]:
        key = (self.key, i)
        cells = self.cache.get(key)
        if cells is None:
            _, offset, length = self.index[i]
            cells = [tuple(c) for c in self._read(offset, length)]
            self.cache.put(key, cells, length * 2)
        return cells

    def may_contain(self, row: bytes) -> bool:
        if self.meta["first"] is None or not self.meta["first"] <= row <= self.meta["last"]:
            return False
        return self.bloom is None or row in self.bloom

    def scan(self, start: bytes = b"", stop: bytes = b"") -> Iterator[Cell]:
        """Cells with start <= row < stop (b"": unbounded)."""
        if not self.index:
            return
        i = max(0, bisect.bisect_left(self.first_keys, (start,)) - 1)
        for b in range(i, len(self.index)):
            if stop and self.first_keys[b][0] >= stop:
                return
            for c in self.block(b):
                if c[0] < start:
                    continue
                if stop and c[0] >= stop:
                    return
                yield c

    def scan_reverse(self, start: bytes, stop: bytes = b"") -> Iterator[Cell]:
        """Cells with stop < row <= start, rows from the last down (b"": unbounded);
        within a row in their stored order."""
        if not self.index:
            return
        hi = len(self.index) - 1 if not start else \
            max(0, bisect.bisect_right(self.first_keys, (start, b"\xff" * 8)) - 1)
        for b in range(hi, -1, -1):
            for_row: list[Cell] = []
            for c in reversed(self.block(b)):
                if start and c[0] > start:
                    continue
                if stop and c[0] <= stop:
                    break
                for_row.append(c)
            yield from for_row
            if stop and self.first_keys[b][0] <= stop:
                return

    def row(self, row: bytes) -> list[Cell]:
        if not self.may_contain(row):
            return []
        return list(self.scan(row, row + b"\x00"))


def bytes_pread(data: bytes) -> Pread:
    return lambda offset, length: data[offset:offset + length]

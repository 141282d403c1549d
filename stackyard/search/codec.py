"""The container every index file is written in: named arrays and a little
metadata, with a CRC32C of the whole file in its footer, checked on every
open (Lucene's CodecUtil header and footer). A file whose checksum does not
match is refused with CorruptIndexError naming it; nothing is read from it.

    magic "SYIX" | version u8 | header length u32 | msgpack header
    | array payloads (zstd when that is smaller) | CRC32C u32 | magic "XIYS"
"""

from __future__ import annotations

import struct

import crc32c
import msgpack
import numpy as np
import zstandard

from stackyard.errors import CorruptDataError

MAGIC, END = b"SYIX", b"XIYS"
VERSION = 1
_HEAD = struct.Struct(">4sBI")
_FOOT = struct.Struct(">I4s")
_MIN_COMPRESS = 4096


class CorruptIndexError(CorruptDataError):
    """An index file whose checksum or structure is wrong."""


def pack(arrays: dict[str, np.ndarray | bytes], meta: dict | None = None) -> bytes:
    parts, index, at = [], [], 0
    cctx = zstandard.ZstdCompressor(level=1)
    for name, a in arrays.items():
        if isinstance(a, bytes | bytearray):
            raw, dtype, shape = bytes(a), "bytes", [len(a)]
        else:
            a = np.ascontiguousarray(a)
            raw, dtype, shape = a.tobytes(), a.dtype.str, list(a.shape)
        body, z = raw, False
        if len(raw) >= _MIN_COMPRESS:
            c = cctx.compress(raw)
            if len(c) < len(raw) * 0.9:
                body, z = c, True
        index.append([name, dtype, shape, at, len(body), z])
        parts.append(body)
        at += len(body)
    header = msgpack.packb({"meta": meta or {}, "arrays": index}, use_bin_type=True)
    out = b"".join([_HEAD.pack(MAGIC, VERSION, len(header)), header, *parts])
    return out + _FOOT.pack(crc32c.crc32c(out), END)


def unpack(data: bytes, path: str = "") -> tuple[dict, dict[str, np.ndarray | bytes]]:
    where = path or "index file"
    if len(data) < _HEAD.size + _FOOT.size:
        raise CorruptIndexError(f"{where}: truncated ({len(data)} bytes)")
    crc, end = _FOOT.unpack_from(data, len(data) - _FOOT.size)
    body = memoryview(data)[:len(data) - _FOOT.size]
    if end != END or crc32c.crc32c(body) != crc:
        raise CorruptIndexError(f"{where}: checksum failed (the file is corrupt)")
    magic, version, hlen = _HEAD.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise CorruptIndexError(f"{where}: not an index file of version {VERSION}")
    header = msgpack.unpackb(body[_HEAD.size:_HEAD.size + hlen], raw=False)
    base = _HEAD.size + hlen
    dctx = zstandard.ZstdDecompressor()
    arrays: dict = {}
    for name, dtype, shape, at, length, z in header["arrays"]:
        raw = bytes(body[base + at:base + at + length])
        if z:
            raw = dctx.decompress(raw)
        if dtype == "bytes":
            arrays[name] = raw
        else:
            arrays[name] = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape)
    return header["meta"], arrays


def strings_to_blob(items: list[str]) -> tuple[bytes, np.ndarray]:
    encoded = [s.encode() for s in items]
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64) if encoded else \
        np.zeros(0, np.int64)
    return b"".join(encoded), ends


def blob_to_strings(blob: bytes, ends: np.ndarray) -> list[str]:
    out, at = [], 0
    for e in ends.tolist():
        out.append(blob[at:e].decode())
        at = e
    return out

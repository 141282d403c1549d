"""Which reduce partition a key goes to. Python's hash() of a str differs
from process to process (hash randomization), so every map task would
scatter a key differently; this hash is the same everywhere."""

from __future__ import annotations

import zlib


def stable_hash(key) -> int:
    if isinstance(key, bool) or key is None:
        return int(bool(key))
    if isinstance(key, int):
        return key & 0x7FFFFFFFFFFFFFFF
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if isinstance(key, bytes | bytearray | memoryview):
        return zlib.crc32(key)
    if isinstance(key, float):
        return stable_hash(int(key)) if key.is_integer() else zlib.crc32(repr(key).encode())
    if isinstance(key, tuple | frozenset):
        h = 0x345678
        for item in (sorted(key, key=repr) if isinstance(key, frozenset) else key):
            h = (h * 1000003) ^ stable_hash(item)
            h &= 0xFFFFFFFFFFFF
        return h
    return zlib.crc32(repr(key).encode())


def hash_partition(key, partitions: int) -> int:
    """Hadoop's HashPartitioner: hash(key) mod R."""
    return stable_hash(key) % partitions

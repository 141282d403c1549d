"""A bloom filter over row keys, one per SSTable (HBase's ROW bloom): a get
skips a file whose filter says the row is not there. Double hashing of two
CRC32Cs (Kirsch and Mitzenmacher), about 1% false positives at 10 bits a key."""

from __future__ import annotations

import math

import crc32c

BITS_PER_KEY = 10


class Bloom:
    def __init__(self, bits: bytearray, k: int):
        self.bits, self.k, self.m = bits, k, len(bits) * 8

    @classmethod
    def for_keys(cls, keys: list[bytes]) -> Bloom:
        m = max(64, len(keys) * BITS_PER_KEY)
        k = max(1, min(30, round(BITS_PER_KEY * math.log(2))))
        bloom = cls(bytearray((m + 7) // 8), k)
        for key in keys:
            bloom.add(key)
        return bloom

    def _positions(self, key: bytes):
        h1 = crc32c.crc32c(key)
        h2 = crc32c.crc32c(key, 0x9E3779B9) | 1
        return ((h1 + i * h2) % self.m for i in range(self.k))

    def add(self, key: bytes) -> None:
        for p in self._positions(key):
            self.bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: bytes) -> bool:
        return all(self.bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))

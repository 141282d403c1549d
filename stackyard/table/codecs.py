"""Block compression per column family, through libraries: zstd (zstandard),
lz4 (lz4.block) and snappy (cramjam). The codec's number is written in each
block's header, so a reader needs no schema to decode a file."""

from __future__ import annotations

NONE, ZSTD, LZ4, SNAPPY = 0, 1, 2, 3
BY_NAME = {"none": NONE, "zstd": ZSTD, "lz4": LZ4, "snappy": SNAPPY}


def compress(codec: int, raw: bytes) -> bytes:
    if codec == NONE:
        return raw
    if codec == ZSTD:
        import zstandard
        return zstandard.ZstdCompressor(level=3).compress(raw)
    if codec == LZ4:
        import lz4.block
        return lz4.block.compress(raw, store_size=False)
    if codec == SNAPPY:
        import cramjam
        return bytes(cramjam.snappy.compress_raw(raw))
    raise ValueError(f"unknown codec {codec}")


def decompress(codec: int, stored: bytes, raw_len: int) -> bytes:
    if codec == NONE:
        return stored
    if codec == ZSTD:
        import zstandard
        return zstandard.ZstdDecompressor().decompress(stored, max_output_size=raw_len)
    if codec == LZ4:
        import lz4.block
        return lz4.block.decompress(stored, uncompressed_size=raw_len)
    if codec == SNAPPY:
        import cramjam
        return bytes(cramjam.snappy.decompress_raw(stored))
    raise ValueError(f"unknown codec {codec}")

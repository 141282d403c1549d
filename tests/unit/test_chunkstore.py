from __future__ import annotations

import os

import crc32c
import pytest

from stackyard.cluster.config import BLOCK
from stackyard.dfs.chunkstore import ChunkStore, block_crcs, check_handle

H = "00112233445566aa"


def write(store, data, version=1, offset=0, pieces=7777):
    w = store.begin_write(H, version, offset)
    for i in range(0, len(data), pieces):
        w.write(data[i:i + pieces])
    return w.finish()


def read(store, offset, length, version=1):
    f, start, count, crcs = store.open_range(H, offset, length, version)
    with f:
        blob = f.read(count)
    assert block_crcs(blob) == crcs
    return blob[offset - start: offset - start + length]


def test_write_read_and_block_checksums(tmp_path):
    store = ChunkStore(tmp_path)
    data = os.urandom(3 * BLOCK + 100)
    meta = write(store, data)
    assert meta.length == len(data) and meta.crcs == block_crcs(data)
    assert read(store, 0, len(data)) == data
    assert read(store, BLOCK - 3, 10) == data[BLOCK - 3:BLOCK + 7]
    assert store.report() == [(H, 1, len(data))]


def test_append_at_unaligned_offset_keeps_checksums_right(tmp_path):
    store = ChunkStore(tmp_path)
    a, b = os.urandom(BLOCK + 123), os.urandom(2 * BLOCK + 9)
    write(store, a)
    meta = write(store, b, version=2, offset=len(a))
    assert meta.crcs == block_crcs(a + b) and meta.version == 2
    assert read(store, 0, len(a + b), version=2) == a + b


def test_write_truncates_leftovers_of_a_failed_write(tmp_path):
    store = ChunkStore(tmp_path)
    write(store, b"x" * 1000)
    w = store.begin_write(H, 2, 1000)
    w.write(b"never committed")
    w.abort()                                     # a write that died half way
    meta = write(store, b"y" * 10, version=3, offset=1000)
    assert meta.length == 1010
    assert read(store, 0, 1010, 3) == b"x" * 1000 + b"y" * 10


def test_append_inside_a_longer_untrimmed_replica(tmp_path):
    """A truncated file's replica keeps its old bytes until trimmed; a write at
    the new length checks the stored last block whole, then keeps its head."""
    store = ChunkStore(tmp_path)
    old = os.urandom(2 * BLOCK + 500)
    write(store, old)
    cut = BLOCK + 77
    meta = write(store, b"tail", version=2, offset=cut)
    assert meta.length == cut + 4 and meta.crcs == block_crcs(old[:cut] + b"tail")
    assert read(store, 0, cut + 4, version=2) == old[:cut] + b"tail"
    assert not store.writing
    with open(store.root / H[:2] / f"{H}.dat", "r+b") as f:   # rot in the stored block
        f.seek(BLOCK + 3)
        f.write(b"\xff")
    with pytest.raises(OSError, match="last block fails its checksum"):
        store.begin_write(H, 3, BLOCK + 2)


def test_rollback_to_committed_length(tmp_path):
    store = ChunkStore(tmp_path)
    write(store, b"a" * (BLOCK + 50))
    write(store, b"b" * 500, version=2, offset=BLOCK + 50)
    store.rollback(H, 1, BLOCK + 50)
    m = store.meta(H)
    assert (m.version, m.length) == (1, BLOCK + 50)
    assert m.crcs == block_crcs(b"a" * (BLOCK + 50))


def test_verify_finds_a_flipped_byte_and_stale_reads_refused(tmp_path):
    store = ChunkStore(tmp_path)
    data = os.urandom(2 * BLOCK)
    write(store, data, version=4)
    assert store.verify(H)
    path = next(tmp_path.glob("chunks/*/*.dat"))
    raw = bytearray(path.read_bytes())
    raw[BLOCK + 5] ^= 0x10
    path.write_bytes(bytes(raw))
    assert not store.verify(H)
    f, start, count, crcs = store.open_range(H, BLOCK, 10, 4)
    with f:
        assert crc32c.crc32c(f.read(count)) != crcs[0]
    with pytest.raises(OSError, match="stale"):
        store.open_range(H, 0, 1, min_version=5)


@pytest.mark.parametrize("bad", ["../x", "0011223344556677/", "AABBCCDDEEFF0011", "", "0" * 17])
def test_handle_pattern(bad):
    with pytest.raises(ValueError, match="not a chunk handle"):
        check_handle(bad)


def test_report_kept_in_memory_matches_disk(tmp_path):
    store = ChunkStore(tmp_path)
    write(store, b"a" * 1000)
    other = "00112233445566bb"
    w = store.begin_write(other, 3, 0)
    w.write(b"b" * 10)
    w.finish()
    store.rollback(H, 1, 500)
    assert sorted(store.report()) == [(H, 1, 500), (other, 3, 10)]
    assert store.used_bytes() == 510
    store.delete(other)
    assert store.report() == [(H, 1, 500)]
    assert ChunkStore(tmp_path).report() == store.report()     # rebuilt from disk

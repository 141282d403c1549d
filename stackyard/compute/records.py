"""Record batches on disk and on the wire: a stream of frames, each a 4-byte
big-endian length and a pickled list of records. Batching amortizes
pickle's per-call cost; the frame length lets a reader skip or stream."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

BATCH = 2000            # records per frame
_LEN = struct.Struct(">I")


def write_batches(out: BinaryIO, records: Iterable, batch: int = BATCH) -> int:
    """Frame RECORDS into OUT; returns the bytes written."""
    written, buf = 0, []
    for r in records:
        buf.append(r)
        if len(buf) >= batch:
            written += write_frame(out, buf)
            buf = []
    if buf:
        written += write_frame(out, buf)
    return written


def write_frame(out: BinaryIO, records: list) -> int:
    data = pickle.dumps(records, protocol=5)
    out.write(_LEN.pack(len(data)))
    out.write(data)
    return 4 + len(data)


def read_batches(f: BinaryIO, limit: int | None = None) -> Iterator[list]:
    """The frames of F (up to LIMIT bytes from its position), one list each."""
    left = limit
    while left is None or left > 0:
        head = f.read(4)
        if not head:
            return
        if len(head) != 4:
            raise EOFError("truncated record frame")
        (n,) = _LEN.unpack(head)
        data = f.read(n)
        if len(data) != n:
            raise EOFError("truncated record frame")
        if left is not None:
            left -= 4 + n
        yield pickle.loads(data)


def read_records(f: BinaryIO, limit: int | None = None) -> Iterator:
    for batch in read_batches(f, limit):
        yield from batch

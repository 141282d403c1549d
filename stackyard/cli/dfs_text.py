"""What `yard dfs -text` makes of a file: gzip and zstd streams decompressed,
our framed pickle record files printed as `key<TAB>value` lines, anything
else as it is. Pickle files are read with an unpickler that builds only
plain values (no classes, no functions): a file another user wrote must
not run code as the reader."""

from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Iterator

GZIP, ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
PIECE = 1 << 20


class _Plain(pickle.Unpickler):
    SAFE = {("builtins", n) for n in ("set", "frozenset", "bytearray", "complex", "slice",
                                       "range")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"not a plain value: {module}.{name} "
                                     "(-text prints only plain records)")


def text_of(f) -> Iterator[bytes]:
    head = f.read(6)
    if head[:2] == GZIP:
        d = zlib.decompressobj(wbits=47)
        data = head
        while data:
            yield d.decompress(data)
            data = f.read(PIECE)
        yield d.flush()
    elif head[:4] == ZSTD:
        import zstandard
        r = zstandard.ZstdDecompressor().stream_reader(io.BufferedReader(_Prefixed(head, f)))
        while piece := r.read(PIECE):
            yield piece
    elif len(head) == 6 and head[4:6] == b"\x80\x05":
        yield from _records(head, f)
    else:
        yield head
        while piece := f.read(PIECE):
            yield piece


def _records(head: bytes, f) -> Iterator[bytes]:
    buf = io.BufferedReader(_Prefixed(head, f))
    while True:
        n_raw = buf.read(4)
        if len(n_raw) < 4:
            return
        data = buf.read(int.from_bytes(n_raw, "big"))
        for rec in _Plain(io.BytesIO(data)).load():
            if isinstance(rec, tuple) and len(rec) == 2:
                yield f"{_s(rec[0])}\t{_s(rec[1])}\n".encode("utf-8", "surrogateescape")
            else:
                yield f"{_s(rec)}\n".encode("utf-8", "surrogateescape")


def _s(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class _Prefixed(io.RawIOBase):
    """HEAD (already read) followed by the rest of F, as one raw stream."""

    def __init__(self, head: bytes, f):
        self.head, self.f = head, f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.f.read(len(b))
        b[:len(data)] = data
        return len(data)

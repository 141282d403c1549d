"""The tablet server's write-ahead log in the DFS: one log for all its
tablets (Bigtable's choice: one file to append to, one sync for many
writers), rolled into numbered files.

A record is `length u32 | CRC32C u32 | msgpack [seq, tablet id, {family:
[cells]}, table]`: one row mutation, so a row's edits are replayed all or none. A
reader stops at the first record that is cut short or fails its CRC (the
tail a dying writer left; never acknowledged).

Group commit: writers queue their records and wait; one thread writes what
has queued, makes it durable (hflush to every replica of the DFS file, an
fsync on each), and wakes them all. A failed sync fails every waiter: none
of them is acknowledged.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Iterator

import crc32c
import msgpack

log = logging.getLogger("stackyard.table.wal")
HEAD = struct.Struct(">II")
MAX_RECORD = 256 << 20


def encode(seq: int, tablet: str, cells: dict, table: str = "") -> bytes:
    body = msgpack.packb([seq, tablet, cells, table], use_bin_type=True)
    return HEAD.pack(len(body), crc32c.crc32c(body)) + body


def records(data: bytes, with_table: bool = False) -> Iterator[tuple]:
    """The whole records of one log file's bytes, up to the first damaged one."""
    pos = 0
    while pos + HEAD.size <= len(data):
        n, crc = HEAD.unpack_from(data, pos)
        body = data[pos + HEAD.size:pos + HEAD.size + n]
        if n > MAX_RECORD or len(body) != n or crc32c.crc32c(body) != crc:
            if pos + HEAD.size + n < len(data):
                log.warning("write-ahead log: a damaged record at offset %d is not the "
                            "file's tail; stopping there", pos)
            return
        seq, tablet, cells, table = msgpack.unpackb(body, raw=False)
        cells = {f: [tuple(c) for c in cs] for f, cs in cells.items()}
        yield (seq, tablet, cells, table) if with_table else (seq, tablet, cells)
        pos += HEAD.size + n


class SyncFailed(OSError):
    pass


class _Waiter:
    __slots__ = ("data", "done", "error")

    def __init__(self, data: bytes):
        self.data, self.done, self.error = data, threading.Event(), None


class GroupLog:
    """Appends records to the current log file through OPEN_FILE(number) (a
    DFS file object whose flush() is hflush), rolling at ROLL_BYTES."""

    def __init__(self, open_file: Callable[[int], object], roll_bytes: int = 64 << 20,
                 first_number: int = 1):
        self.open_file, self.roll_bytes = open_file, roll_bytes
        self.number = first_number
        self.file = open_file(self.number)
        self.written = 0
        self.seq = 0
        self.seq_lock = threading.Lock()
        self.queue: list[_Waiter] = []
        self.cond = threading.Condition()
        self.closed = False
        self.failed: BaseException | None = None
        self.max_seq: dict[int, int] = {}        # log number -> highest seq in it
        self.syncs = self.synced_records = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="wal-sync")
        self.thread.start()

    def next_seq(self) -> int:
        with self.seq_lock:
            self.seq += 1
            return self.seq

    def append(self, record: bytes, seq: int) -> None:
        """Block until RECORD is durable; raise if it could not be made so."""
        w = _Waiter(record)
        with self.cond:
            if self.failed is not None or self.closed:
                raise SyncFailed(f"write-ahead log unusable: {self.failed or 'closed'}")
            self.queue.append(w)
            self.max_seq[self.number] = max(self.max_seq.get(self.number, 0), seq)
            self.cond.notify()
        w.done.wait()
        if w.error is not None:
            raise SyncFailed(f"write-ahead log sync failed: {w.error}")

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if not self.queue and self.closed:
                    return
                batch, self.queue = self.queue, []
            try:
                for w in batch:
                    self.file.write(w.data)
                    self.written += len(w.data)
                self.file.flush()
                self.syncs += 1
                self.synced_records += len(batch)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
                log.error("write-ahead log sync failed: %s", exc)
                with self.cond:
                    self.failed = exc
                for w in batch:
                    w.error = exc
                    w.done.set()
                self._fail_queued(exc)
                return
            for w in batch:
                w.done.set()
            if self.written >= self.roll_bytes:
                self._roll()

    def _fail_queued(self, exc: BaseException) -> None:
        with self.cond:
            rest, self.queue = self.queue, []
        for w in rest:
            w.error = exc
            w.done.set()

    def _roll(self) -> None:
        with self.cond:
            old = self.file
            self.number += 1
            self.file = self.open_file(self.number)
            self.written = 0
        try:
            old.close()
        except OSError as exc:
            log.warning("closing a rolled log: %s", exc)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(timeout=30)
        try:
            self.file.close()
        except (OSError, ValueError):
            pass

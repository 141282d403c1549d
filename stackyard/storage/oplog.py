"""An fsync'd operation log with checkpoints: the DFS master's op log (GFS's
op log, HDFS's edits + fsimage) and each coord replica's Raft log. Format: docs/formats.md.

Files in the metadata directory:
    checkpoint.<txid>   msgpack {"txid", "image"}: the namespace after txid
    edits.<first txid>  records, each: length (4 bytes, big-endian),
                        CRC32C of the payload (4 bytes), msgpack payload
                        {"tx": txid, ...the op}

A record is on disk and fsync'd before `append` returns, so an op is
durable before the master acknowledges it. Recovery loads the newest
checkpoint and replays every later record. A torn or corrupt record at the
end of the newest segment is an op that was never acknowledged: it is cut
off. Anywhere else it is real corruption and recovery refuses to guess.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import crc32c
import msgpack

_HEADER = struct.Struct(">II")


class LogCorruption(Exception):
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OpLog:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.txid = 0
        self._fd: int | None = None
        self._segment: Path | None = None

    # -- recovery ---------------------------------------------------------------

    def recover(self) -> tuple[dict | None, list[dict]]:
        """(newest checkpoint image or None, the records after it, in order)."""
        image, base = None, 0
        checkpoints = sorted((p for p in self.dir.glob("checkpoint.*") if _num(p) >= 0), key=_num)
        if checkpoints:
            with open(checkpoints[-1], "rb") as f:
                data = msgpack.unpackb(f.read())
            image, base = data["image"], data["txid"]
        records: list[dict] = []
        segments = sorted((p for p in self.dir.glob("edits.*") if _num(p) >= 0), key=_num)
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            for rec in self._read_segment(seg, truncate_tail=last):
                if rec["tx"] > base:
                    if rec["tx"] != base + len(records) + 1:
                        raise LogCorruption(f"{seg}: transaction {rec['tx']} out of order")
                    records.append(rec)
        self.txid = base + len(records)
        if segments:
            self._open(segments[-1])
        else:
            self._open(self.dir / f"edits.{self.txid + 1:016d}")
        return image, records

    def _read_segment(self, path: Path, truncate_tail: bool):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            bad = None
            if pos + _HEADER.size > len(data):
                bad = "torn header"
            else:
                length, crc = _HEADER.unpack_from(data, pos)
                end = pos + _HEADER.size + length
                payload = data[pos + _HEADER.size:end]
                if end > len(data):
                    bad = "torn record"
                elif crc32c.crc32c(payload) != crc:
                    bad = "checksum mismatch"
            if bad:
                if not truncate_tail:
                    raise LogCorruption(f"{path}: {bad} at byte {pos}")
                with open(path, "r+b") as f:
                    f.truncate(pos)
                    os.fsync(f.fileno())
                return
            yield msgpack.unpackb(payload)
            pos = end

    # -- writing ----------------------------------------------------------------

    def _open(self, path: Path) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._segment = path
        _fsync_dir(self.dir)

    def append(self, record: dict) -> int:
        """Write RECORD as the next transaction and fsync it; returns its txid."""
        tx = self.txid + 1
        payload = msgpack.packb({"tx": tx, **record})
        os.write(self._fd, _HEADER.pack(len(payload), crc32c.crc32c(payload)) + payload)
        os.fsync(self._fd)
        self.txid = tx
        return tx

    @property
    def segment_bytes(self) -> int:
        return os.fstat(self._fd).st_size if self._fd is not None else 0

    def checkpoint(self, image: dict) -> Path:
        """Persist IMAGE as the state after the current txid; start a new segment
        and drop what the checkpoint makes unnecessary."""
        final = self.dir / f"checkpoint.{self.txid:016d}"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(msgpack.packb({"txid": self.txid, "image": image}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        old_segments = list(self.dir.glob("edits.*"))
        self._open(self.dir / f"edits.{self.txid + 1:016d}")
        for seg in old_segments:
            if seg != self._segment:
                seg.unlink()
        for cp in self.dir.glob("checkpoint.*"):
            if cp != final:
                cp.unlink()
        return final

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _num(p: Path) -> int:
    try:
        return int(p.name.split(".", 1)[1])
    except ValueError:
        return -1

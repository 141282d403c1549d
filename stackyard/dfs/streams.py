"""File objects over DFS files: a raw reader (wrapped in io.BufferedReader
for readline, iteration and seek) and a chunk-buffering writer.

Reading: the locations of every chunk are asked of the master once, at open,
and cached. Data comes straight from a replica, block by block; each 64 KiB
block is checked against its CRC32C before a byte of it is returned. A bad
checksum is reported to the master (which replaces the replica) and the read
goes on from another replica; so does a dead or refusing server.

Writing: bytes collect until a chunk is full (or flush / close), then go
down the pipeline chosen by the master, in a helper thread so that the
caller can fill the next chunk meanwhile. A pipeline member that fails is
left out and the chunk is committed with the members that made it durable;
if none did, the master picks a pipeline without the failed servers.
"""

from __future__ import annotations

import bisect
import http.client
import io
import json
import logging
import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import crc32c

from stackyard import errors
from stackyard.cluster.config import BLOCK
from stackyard.net.client import raise_refusal

log = logging.getLogger("stackyard.client")
MAX_INFLIGHT = 2   # chunks a writer streams at once; memory: (1 + this) chunk buffers


class ChunkStream:
    """Verified bytes of one chunk from one replica, from a position onwards."""

    def __init__(self, fs, chunk: dict, address: str, pos_in_chunk: int, end_in_chunk: int):
        self.fs, self.chunk, self.address = fs, chunk, address
        length = end_in_chunk - pos_in_chunk
        query = {"handle": chunk["handle"], "offset": pos_in_chunk, "length": length,
                 "version": chunk["version"], "token": chunk["token"]}
        self.resp = fs.pool.request(address, "GET", "/chunk/read", query)
        if self.resp.status != 200:
            body = self.resp.read()
            try:
                raise_refusal(self.resp.status, body, address)
            finally:
                self.fs.pool.drop(address)
        start = int(self.resp.headers["X-Yard-Start"])
        self.left = int(self.resp.headers["X-Yard-Count"])
        nblocks = -(-self.left // BLOCK)
        self.crcs = struct.unpack(f">{nblocks}I", self._read(4 * nblocks))
        self.block_no = 0
        self.skip = pos_in_chunk - start
        self.pos = pos_in_chunk        # chunk position of the next byte we hand out
        self.block = memoryview(b"")

    def _read(self, n: int) -> bytes:
        try:
            data = self.resp.read(n)
        except (OSError, http.client.HTTPException) as exc:
            self.fs.pool.drop(self.address)
            raise errors.ClusterUnavailable(f"lost {self.address} while reading: {exc}") from None
        if len(data) != n:
            self.fs.pool.drop(self.address)
            raise errors.ClusterUnavailable(f"{self.address} ended the chunk early")
        return data

    def readinto(self, view: memoryview) -> int:
        if not self.block:
            if not self.left:
                return 0
            n = min(BLOCK, self.left)
            data = self._read(n)
            self.left -= n
            if crc32c.crc32c(data) != self.crcs[self.block_no]:
                raise errors.CorruptDataError(
                    5, f"checksum error in chunk {self.chunk['handle']} block {self.block_no} "
                       f"on {self.address}")
            self.block_no += 1
            self.block = memoryview(data)[self.skip:]
            self.skip = 0
        n = min(len(view), len(self.block))
        view[:n] = self.block[:n]
        self.block = self.block[n:]
        self.pos += n
        return n

    @property
    def exhausted(self) -> bool:
        return not self.left and not self.block

    def close(self) -> None:
        if self.left:
            self.fs.pool.drop(self.address)   # unread body: the connection can't be reused
        self.resp.close()


class DfsReader(io.RawIOBase):
    def __init__(self, fs, path: str):
        super().__init__()
        self.fs, self.path = fs, path
        self._load_locations()
        self._pos = 0
        self._end: int | None = None     # a pread's end: streams stop there
        self._stream: ChunkStream | None = None
        self._failed: dict[str, set[str]] = {}   # handle -> replica addresses that failed

    def _load_locations(self) -> None:
        info = self.fs.call("locations", path=self.path)
        self.length = info["length"]
        self.chunks = [c for c in info["chunks"] if c["length"]]
        self.offsets = [c["offset"] for c in self.chunks]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.length}[whence]
        new = base + pos
        if new < 0:
            raise ValueError(f"negative seek position {new}")
        if new != self._pos:
            self._drop_stream()
            self._pos = new
        return self._pos

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        if self._pos >= self.length or not len(view):
            return 0
        i = bisect.bisect_right(self.offsets, self._pos) - 1
        chunk = self.chunks[i]
        want = min(len(view), chunk["offset"] + chunk["length"] - self._pos)
        for _attempt in range(8):
            try:
                n = self._stream_for(i, chunk).readinto(view[:want])
                self._pos += n
                return n
            except errors.CorruptDataError as exc:
                log.warning("%s", exc)
                self._give_up_on(chunk, corrupt=True)
            except (errors.ClusterUnavailable, errors.RemoteError, OSError, ValueError) as exc:
                log.info("replica %s of %s failed: %s", self._stream and self._stream.address,
                         chunk["handle"], exc)
                self._give_up_on(chunk, corrupt=False)
            chunk = self.chunks[i]
        raise errors.CorruptDataError(5, f"Could not obtain chunk {chunk['handle']}: "
                                         "no replica could serve it", self.path)

    def pread(self, offset: int, length: int) -> bytes:
        """LENGTH bytes from OFFSET (fewer past the end of the file). Only that
        range is asked of the chunkservers, so a small read of a big file
        costs a small transfer."""
        end = min(offset + length, self.length)
        if offset >= end:
            return b""
        out = bytearray(end - offset)
        view = memoryview(out)
        self.seek(offset)
        self._end, got = end, 0
        try:
            while got < len(out):
                n = self.readinto(view[got:])
                if not n:
                    break
                got += n
        finally:
            self._end = None
        return bytes(out) if got == len(out) else bytes(out[:got])

    def _stream_for(self, i: int, chunk: dict) -> ChunkStream:
        pos_in_chunk = self._pos - chunk["offset"]
        s = self._stream
        if s is not None and s.chunk is chunk and s.pos == pos_in_chunk and not s.exhausted:
            return s
        self._drop_stream()
        failed = self._failed.setdefault(chunk["handle"], set())
        replicas = [loc["address"] for loc in chunk["locations"] if loc["address"] not in failed]
        if not replicas:
            self._refresh(i)
            chunk = self.chunks[i]
            replicas = [loc["address"] for loc in chunk["locations"]
                        if loc["address"] not in failed]
            if not replicas:
                raise errors.CorruptDataError(5, f"Could not obtain chunk {chunk['handle']}: "
                                                 "no live replica", self.path)
        prefer = getattr(self.fs, "prefer", None)
        if prefer:     # a task reads the replica beside its worker first
            replicas.sort(key=lambda address: address != prefer)
        self._current = replicas[0]
        end_in_chunk = chunk["length"]
        if self._end is not None:
            end_in_chunk = min(end_in_chunk, self._end - chunk["offset"])
        self._stream = ChunkStream(self.fs, chunk, replicas[0], pos_in_chunk, end_in_chunk)
        return self._stream

    def _refresh(self, i: int) -> None:
        """Ask the master again (new replicas, fresh tokens); wait out safe mode."""
        failed = self._failed.get(self.chunks[i]["handle"], set())
        for _ in range(60):
            info = self.fs.call("locations", path=self.path)
            chunk = [c for c in info["chunks"] if c["length"]][i]
            untried = {loc["address"] for loc in chunk["locations"]} - failed
            if untried or not info["safemode"]:
                break
            self.fs.sleep(0.5)
        self.chunks[i] = chunk

    def _give_up_on(self, chunk: dict, corrupt: bool) -> None:
        address = self._stream.address if self._stream else getattr(self, "_current", None)
        self._drop_stream()
        if address is None:
            return
        self._failed.setdefault(chunk["handle"], set()).add(address)
        if corrupt:
            try:
                self.fs.call("bad_replica", handle=chunk["handle"], address=address)
            except errors.StackyardError as exc:
                log.warning("could not report the bad replica: %s", exc)

    def _drop_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._drop_stream()
        super().close()


class DfsWriter(io.RawIOBase):
    """Write-only file; `flush()` makes what was written durable on every live
    replica (HDFS's hflush), `close()` also releases the lease."""

    def __init__(self, fs, path: str, info: dict, append: bool):
        super().__init__()
        self.fs, self.path = fs, path
        self.chunk_size = info["chunk_size"]
        last = info.get("last_length", 0) if append else 0
        n = info.get("chunks", 0) if append else 0
        if n and last < self.chunk_size:
            self.index, self.in_chunk = n - 1, last
        else:
            self.index, self.in_chunk = n, 0
        self.written = 0
        self.buf = bytearray()
        self.excluded: set[str] = set()
        self.max_inflight = MAX_INFLIGHT
        self._sender = ThreadPoolExecutor(self.max_inflight, thread_name_prefix="yard-writer")
        self._inflight: deque[Future] = deque()
        self._last_index = -1
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, args=(info["lease_timeout"] / 3,),
                                         daemon=True, name="yard-lease")
        self._renewer.start()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.written

    def write(self, b) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        view = memoryview(b).cast("B")
        n = len(view)
        while view:
            room = self.chunk_size - self.in_chunk - len(self.buf)
            self.buf += view[:room]
            view = view[room:]
            if len(self.buf) == self.chunk_size - self.in_chunk:
                piece, self.buf = self.buf, bytearray()
                self._send(piece, full=True)
        self.written += n
        return n

    def flush(self) -> None:
        if self.closed:
            return
        if self.buf:
            piece, self.buf = self.buf, bytearray()
            self._send(piece, full=False)
        self._wait()

    def _send(self, data: bytearray, full: bool) -> None:
        index, offset = self.index, self.in_chunk
        if self._inflight and (len(self._inflight) >= self.max_inflight
                               or self._last_index == index):
            # pieces of one chunk go one after another: each starts where the
            # previous one committed
            self._wait(keep=0 if self._last_index == index else self.max_inflight - 1)
        if full:
            self.index, self.in_chunk = self.index + 1, 0
        else:
            self.in_chunk += len(data)
        prev = self._inflight[-1] if self._inflight else None
        planned = threading.Event()
        fut = self._sender.submit(self._write_piece, index, offset, data, prev, planned)
        fut.planned = planned
        self._inflight.append(fut)
        self._last_index = index

    def _wait(self, keep: int = 0) -> None:
        """Until at most KEEP pieces are in flight; re-raise a failed one's error."""
        while len(self._inflight) > keep:
            self._inflight.popleft().result()

    def _write_piece(self, index: int, offset: int, data: bytearray,
                     prev: Future | None, planned: threading.Event) -> None:
        """Send DATA down a pipeline, then commit it once PREV (the piece
        before) has committed: the file's committed chunks stay a prefix.
        Chunks are allocated in order too: this piece asks for its pipeline
        only after PREV has its own."""
        try:
            if prev is not None:
                prev.planned.wait()
            self._send_piece(index, offset, data, prev, planned)
        finally:
            planned.set()

    def _send_piece(self, index: int, offset: int, data: bytearray,
                    prev: Future | None, planned: threading.Event) -> None:
        crc = crc32c.crc32c(data)
        last_error = None
        for _attempt in range(6):
            plan = self.fs.call("begin_write", path=self.path, client=self.fs.client_id,
                                index=index, exclude=sorted(self.excluded))
            planned.set()
            if plan["offset"] != offset:
                raise errors.RemoteError(f"chunk {plan['handle']}: master expects offset "
                                         f"{plan['offset']}, writer is at {offset}")
            members = plan["pipeline"]
            by_addr = {m["address"]: m["id"] for m in members}
            query = {"handle": plan["handle"], "version": plan["version"], "offset": offset,
                     "length": len(data), "crc": crc, "token": plan["token"],
                     "next": ",".join(m["address"] for m in members[1:])}
            acked, failed = [], members[0]["address"]
            try:
                # the signed query carries the whole payload's CRC32C, checked
                # as the body streams: no second digest of the data
                resp = self.fs.pool.request(members[0]["address"], "POST", "/chunk/write", query,
                                            body=data, streamed=True)
                body = resp.read()
                if resp.status == 200:
                    reply = json.loads(body)
                    acked, failed = reply["acked"], reply["failed"]
                    last_error = reply.get("error")
                else:
                    raise_refusal(resp.status, body, members[0]["address"])
            except (errors.StackyardError, OSError, http.client.HTTPException) as exc:
                self.fs.pool.drop(members[0]["address"])
                last_error = exc
            if failed:
                log.warning("pipeline member %s failed writing chunk %s: %s", failed,
                            plan["handle"], last_error)
                if failed in by_addr:
                    self.excluded.add(by_addr[failed])
            if acked:
                if prev is not None:
                    prev.result()
                self.fs.call("commit", path=self.path, client=self.fs.client_id,
                             handle=plan["handle"], version=plan["version"],
                             length=offset + len(data), servers=acked)
                return
        raise errors.CorruptDataError(5, f"could not write chunk {index}: {last_error}", self.path)

    def _renew(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.fs.call("renew", client=self.fs.client_id)
            except errors.StackyardError as exc:
                log.warning("lease renewal failed: %s", exc)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
            self.fs.call("close", path=self.path, client=self.fs.client_id)
        finally:
            self._stop.set()
            self._sender.shutdown(wait=True)
            super().close()

    def abort(self) -> None:
        """Stop without closing the file: the lease runs out (tests a dead writer)."""
        self._stop.set()
        self.buf = bytearray()
        self._inflight.clear()
        self._sender.shutdown(wait=False)
        io.RawIOBase.close(self)

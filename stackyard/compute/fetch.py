"""A reducer's shuffle reads, as Spark's ShuffleBlockFetcherIterator does them:
the scheduler says which map outputs hold data for the partitions wanted
(an output known from its index to be empty there is never asked for);
segments written on this worker are read from its disk where they lie,
without a request; every other worker gets one streamed request for all of
its segments, a few workers at a time. What arrives is held in memory up
to a budget, and written to the task's scratch disk beyond it.

The request (POST /shuffle, msgpack): {"job", "want": [[attempt, [partition,
...]], ...]}. The answer, for each attempt in order: an 8-byte status (0:
here; MISSING: no such output on this worker) and, when here, for each
partition an 8-byte length and that many bytes (lengths little-endian).

A source, for merge_segments: bytes, or (path, offset, length) of a file.
"""

from __future__ import annotations

import http.client
import itertools
import os
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgpack

from stackyard import errors
from stackyard.compute.shuffle import read_offsets

MISSING = (1 << 64) - 1
U64 = struct.Struct("<Q")
FETCHERS = 4              # workers fetched from at once (Spark's maxReqsInFlight is unbounded)
PIECE = 1 << 20           # bytes the server reads and writes at a time
HELD = 64 << 20           # fetched bytes a reducer holds in memory; more go to disk
BIG = 4 << 20             # a segment this large goes to disk at once
MAX_WANT = 1 << 20        # (attempt, partition) pairs one request may ask for
MAX_PARTITION = 1 << 31


class FetchFailed(Exception):
    """A map output could not be fetched: the scheduler re-runs that map task
    (unless ATTEMPT, the output's attempt, is no longer the one it holds: a
    late report must not throw away an output made again meanwhile)."""

    def __init__(self, stage: int, task: int, why: str, attempt: str = ""):
        super().__init__(f"could not fetch the output of task {task} of stage {stage}: {why}")
        self.stage, self.task, self.attempt = stage, task, attempt


def segment_ranges(adir: Path, parts: list[int]) -> list[tuple[int, int]]:
    """(offset, length) in ADIR/out.data of each of PARTS."""
    if not parts:
        return []
    lo, hi = min(parts), max(parts)
    if lo < 0:
        raise ValueError(f"partition {lo}: must be 0 or more")
    with open(adir / "out.index", "rb") as f:
        if hi - lo < 4 * len(parts) + 64:       # near one another: one read for all
            offsets = read_offsets(f, lo, hi - lo + 1)
            return [(offsets[p - lo], offsets[p - lo + 1] - offsets[p - lo]) for p in parts]
        out = []
        for p in parts:
            start, end = read_offsets(f, p, 1)
            out.append((start, end - start))
        return out


def parse_want(body: bytes) -> tuple[str, list[tuple[str, list[int]]]]:
    """(job, [(attempt, partitions)]) of a shuffle request; ValueError if malformed."""
    try:
        msg = msgpack.unpackb(body)
        job, want = msg["job"], msg["want"]
        if not isinstance(job, str) or not isinstance(want, list):
            raise TypeError("job must be a string and want a list")
        out, n = [], 0
        for item in want:
            attempt, parts = item
            if not isinstance(attempt, str) or not all(
                    type(p) is int and 0 <= p < MAX_PARTITION for p in parts):
                raise TypeError("each want is [attempt, [partition, ...]], partitions "
                                f"in 0..{MAX_PARTITION - 1}")
            n += len(parts)
            out.append((attempt, list(parts)))
    except (ValueError, TypeError, KeyError, msgpack.ExtraData) as exc:
        raise ValueError(f"shuffle request: {exc}") from None
    if n > MAX_WANT:
        raise ValueError(f"shuffle request: {n} segments, more than {MAX_WANT} at once")
    return job, out


def plan_reads(jobdir: Path, want: list[tuple[str, list[int]]]) -> list:
    """For each wanted attempt: its data file and segment ranges, or None when
    its output is not here. Raises ValueError for a partition out of range."""
    plans = []
    for attempt, parts in want:
        adir = jobdir / attempt
        try:
            plans.append((adir / "out.data", segment_ranges(adir, parts)))
        except FileNotFoundError:
            plans.append(None)
    return plans


def answer_pieces(plans: list) -> Iterator[bytes]:
    """The answer to a shuffle request, PIECE bytes at a time."""
    buf = bytearray()
    for plan in plans:
        if plan is None:
            buf += U64.pack(MISSING)
            continue
        path, ranges = plan
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            buf += U64.pack(MISSING)
            continue
        try:
            buf += U64.pack(0)
            for offset, length in ranges:
                buf += U64.pack(length)
                while length:
                    data = os.pread(fd, min(length, PIECE), offset)
                    if not data:
                        raise OSError(f"{path}: shorter than its index says")
                    buf += data
                    offset += len(data)
                    length -= len(data)
                    if len(buf) >= PIECE:
                        yield bytes(buf)
                        buf.clear()
        finally:
            os.close(fd)
    if buf:
        yield bytes(buf)


class ShuffleReader:
    """The segments a task reads, by (job, stage, partition)."""

    def __init__(self, pool, scheduler: str, worker: str, jobs_dir: Path, scratch: Path,
                 counters: dict):
        self.pool, self.scheduler, self.worker = pool, scheduler, worker
        self.jobs_dir, self.scratch, self.counters = jobs_dir, scratch, counters
        self.held: dict[tuple[str, int, int], list] = {}
        self.in_memory = 0
        self._names = itertools.count(1)
        self._lock = threading.Lock()          # the fetcher threads share the budget
        self._pool: ThreadPoolExecutor | None = None   # kept: its threads keep connections

    def _incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def sources(self, job: str, sid: int, partition: int) -> list:
        """The segments of PARTITION of stage SID of JOB, handed over once."""
        key = (job, sid, partition)
        if key not in self.held:
            self.prefetch(job, sid, [partition])
        got = self.held.pop(key)
        self.in_memory -= sum(len(s) for s in got if isinstance(s, bytes))
        return got

    def prefetch(self, job: str, sid: int, partitions: list[int]) -> None:
        """Fetch PARTITIONS of stage SID of JOB now, in as few requests as can be."""
        partitions = sorted({p for p in partitions if (job, sid, p) not in self.held})
        if not partitions:
            return
        where = self.pool.call(self.scheduler, "map_outputs", job=job, stage=sid,
                               partitions=partitions)
        if where["missing_count"]:
            raise FetchFailed(sid, where["missing"][0], "its output is being recomputed")
        got: dict[int, list] = {p: [] for p in partitions}
        remote: dict[str, list[dict]] = {}
        for out in where["outputs"]:
            if not out["address"]:
                raise FetchFailed(sid, out["task"], "its worker is lost", out["attempt"])
            if out["worker"] == self.worker:
                self._read_local(job, sid, out, got)
            else:
                remote.setdefault(out["address"], []).append(out)
        if remote:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FETCHERS, thread_name_prefix="fetch")
            for received in self._pool.map(lambda item: self._fetch(job, sid, *item),
                                           remote.items()):
                for p, sources in received.items():
                    got[p] += sources
        for p, sources in got.items():
            # in the maps' order, as a single-process run would merge equal keys
            self.held[(job, sid, p)] = [src for _, src in sorted(sources, key=lambda x: x[0])]

    def _read_local(self, job: str, sid: int, out: dict, got: dict[int, list]) -> None:
        adir = self.jobs_dir / job / out["attempt"]
        try:
            ranges = segment_ranges(adir, out["parts"])
        except (FileNotFoundError, ValueError) as exc:
            raise FetchFailed(sid, out["task"], f"not on this worker's disk: {exc}",
                              out["attempt"]) from None
        for p, (offset, length) in zip(out["parts"], ranges, strict=True):
            if length:
                got[p].append((out["task"], (adir / "out.data", offset, length)))
                self._incr("shuffle_local_bytes", length)
        self._incr("shuffle_local_segments", len(ranges))

    def _fetch(self, job: str, sid: int, address: str, outs: list[dict]) -> dict[int, list]:
        """One request to ADDRESS for every wanted segment of OUTS."""
        body = msgpack.packb({"job": job, "want": [[o["attempt"], o["parts"]] for o in outs]})
        got: dict[int, list] = {}
        current = outs[0]
        try:
            resp = self.pool.request(address, "POST", "/shuffle", body=body)
            if resp.status != 200:
                raise errors.RemoteError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
            self._incr("shuffle_fetch_requests")
            n = 0
            for current in outs:
                if read_u64(resp) == MISSING:
                    raise FetchFailed(sid, current["task"],
                                      f"{current['worker']} ({address}) does not have it",
                                      current["attempt"])
                for p in current["parts"]:
                    length = read_u64(resp)
                    if length:
                        got.setdefault(p, []).append((current["task"], self._keep(resp, length)))
                        n += length
                self._incr("shuffle_remote_segments", len(current["parts"]))
            resp.read()
            self._incr("shuffle_bytes", n)
        except FetchFailed:
            self.pool.drop(address)
            raise
        except (errors.StackyardError, OSError, ValueError, EOFError,
                http.client.HTTPException) as exc:      # a cut chunked answer: IncompleteRead
            self.pool.drop(address)
            raise FetchFailed(sid, current["task"], f"{current['worker']} ({address}): {exc}",
                              current["attempt"]) from None
        return got

    def _keep(self, resp, length: int):
        """LENGTH bytes of RESP, in memory or in a scratch file."""
        with self._lock:
            keep = length < BIG and self.in_memory + length <= HELD
            if keep:
                self.in_memory += length
        if keep:
            return read_exactly(resp, length)
        self.scratch.mkdir(parents=True, exist_ok=True)
        with self._lock:
            path = self.scratch / f"seg{next(self._names)}"
        with open(path, "wb") as f:
            left = length
            while left:
                piece = resp.read(min(left, PIECE))
                if not piece:
                    raise EOFError(f"the answer ended {left} bytes short")
                f.write(piece)
                left -= len(piece)
        return (path, 0, length)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def read_exactly(resp, n: int) -> bytes:
    data = resp.read(n)
    if len(data) != n:
        raise EOFError(f"the answer ended {n - len(data)} bytes short")
    return data


def read_u64(resp) -> int:
    return U64.unpack(read_exactly(resp, 8))[0]

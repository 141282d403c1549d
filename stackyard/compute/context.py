"""What a task sees while it runs (in the runner process): who it is, the
DFS, its counters, its map-output buffer, its shuffle input, and the
permission to commit its output."""

from __future__ import annotations

import http.client
import posixpath
import shutil
from pathlib import Path

import msgpack

from stackyard import errors
from stackyard.compute.fetch import MISSING, FetchFailed, ShuffleReader, read_exactly, read_u64
from stackyard.compute.shuffle import MapOutputBuffer, empty_bitmap, merge_segments
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool

__all__ = ["CommitDenied", "FetchFailed", "TaskContext"]
PUT_BATCH = 16 << 20      # bytes of partitions to cache sent to the worker at once


class CommitDenied(Exception):
    """Another attempt of this task was allowed to commit its output."""


class TaskContext:
    """One attempt's view. An attempt runs one task, or a group of a stage's
    quick tasks one after another (TASKS); `begin` moves it to the next, and
    a map stage's group writes one output for all of them."""

    def __init__(self, task: dict, directory: Path):
        self.info = task
        self.job, self.stage, self.task = task["job"], task["stage"], task["task"]
        self.tasks: list[int] = list(task.get("tasks") or [self.task])
        self.attempt, self.number = task["attempt"], task["number"]
        self.partitions, self.parents = task["partitions"], task["parents"]
        self.user = task.get("user") or None
        self.dir = Path(directory)
        self.counters: dict[str, int] = {}
        self.secret = Secret.load(task["secret_file"], task.get("ca_file"))
        self.pool = HttpPool(self.secret, timeout=120)
        self.split = None          # a map task's input split, set by the program
        self.output = b""          # what the task returns to the driver (a result task's value)
        self.map_out: MapOutputBuffer | None = None
        self.reader = ShuffleReader(self.pool, task["scheduler"], task.get("worker", ""),
                                    self.dir.parent.parent, self.dir / "in", self.counters)
        self._got: dict[str, bytes] = {}          # prefetched cached partitions
        self._puts: dict[str, tuple[str, bytes]] = {}   # partitions to cache, not yet sent
        self._put_bytes = 0
        self._fs = None

    def begin(self, index: int) -> None:
        """The attempt now runs task INDEX of its group."""
        self.task, self.split, self.output = index, None, b""

    @property
    def fs(self):
        """A DFS client acting as the job's user, reading local replicas first."""
        if self._fs is None:
            from stackyard.dfs.client import FileSystem
            self._fs = FileSystem(self.info["master"], self.secret, self.user)
            self._fs.groups = list(self.info.get("groups") or [])
            self._fs.prefer = self.info.get("chunkserver") or None
        return self._fs

    def incr(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def map_output(self, partitioner, combiner, limit: int) -> MapOutputBuffer:
        """The attempt's map-output buffer (one for every task of a group);
        finish_map_output() writes it."""
        if self.map_out is None:
            self.map_out = MapOutputBuffer(self.dir, self.partitions, partitioner, limit,
                                           combiner, self.counters)
        return self.map_out

    def finish_map_output(self) -> dict:
        """Write the map output, if the attempt made one; what the scheduler
        is told about it (its empty partitions, its size)."""
        if self.map_out is None:
            return {}
        _, index = self.map_out.close()
        return {"empty": empty_bitmap(index), "size": sum(n for _, n in index)}

    def prefetch(self, partition_sets: dict[tuple[str, int], set[int]]) -> None:
        """Fetch, in as few requests as can be, the shuffle partitions the
        attempt's tasks will read: {(job, stage): partitions}."""
        for (job, sid), parts in partition_sets.items():
            self.reader.prefetch(job, sid, sorted(parts))

    def shuffle_input(self, partition: int, stages: list[int] | None = None,
                      job: str | None = None):
        """The records of PARTITION from every task of the parent STAGES (default:
        all of them) of this job (or of an earlier JOB), sorted by key."""
        job = job or self.job
        sources = []
        for sid in self.parents if stages is None else stages:
            sources += self.reader.sources(job, sid, partition)
        return merge_segments(sources)

    # -- cached partitions (the worker's block store) ---------------------------------

    def prefetch_blocks(self, wanted: dict[str, list[str]]) -> None:
        """Fetch the cached partitions WANTED ({id: addresses of the workers
        holding it}) in one request per worker, this worker's own first."""
        own = self.info["worker_address"]
        by_worker: dict[str, list[str]] = {}
        for bid, where in wanted.items():
            if bid not in self._got:
                by_worker.setdefault(own if own in where or not where else where[0],
                                     []).append(bid)
        for address, ids in by_worker.items():
            got = self._get_blocks(address, ids)
            self._got.update(got)
            self.incr("cache_hits" if address == own else "cache_remote_hits", len(got))

    def _get_blocks(self, address: str, ids: list[str]) -> dict[str, bytes]:
        """The blocks IDS that ADDRESS holds; {} when it cannot be reached."""
        out: dict[str, bytes] = {}
        try:
            resp = self.pool.request(address, "POST", "/blocks/get", body=msgpack.packb(ids))
            if resp.status != 200:
                resp.read()
                return out
            for bid in ids:
                n = read_u64(resp)
                if n != MISSING:
                    out[bid] = read_exactly(resp, n)
            resp.read()
        except (errors.StackyardError, OSError, EOFError, http.client.HTTPException):
            self.pool.drop(address)
            return {}            # what did arrive may be cut short: none of it counts
        return out

    def get_block(self, bid: str, where: list[str] = ()) -> bytes | None:
        """Block BID from this worker, else from one of the worker addresses
        WHERE; None when nobody has it (it must be recomputed)."""
        data = self._got.pop(bid, None)
        if data is None:
            data = self._puts.get(bid, (None, None))[1]
        if data is not None:
            return data
        own = self.info["worker_address"]
        for address in dict.fromkeys([own, *where]):
            data = self._get_blocks(address, [bid]).get(bid)
            if data is not None:
                self.incr("cache_hits" if address == own else "cache_remote_hits")
                return data
        self.incr("cache_misses")
        return None

    def put_block(self, bid: str, data: bytes, level: str) -> None:
        """Cache BID on this worker; losing it only costs a recomputation. Puts
        go out together, when enough are held and when the attempt ends."""
        self._puts[bid] = (level, data)
        self._put_bytes += len(data)
        if self._put_bytes >= PUT_BATCH:
            self.flush_blocks()

    def flush_blocks(self) -> None:
        if not self._puts:
            return
        items = [[bid, level, data] for bid, (level, data) in self._puts.items()]
        self._puts, self._put_bytes = {}, 0
        try:
            resp = self.pool.request(self.info["worker_address"], "POST", "/blocks/put",
                                     body=msgpack.packb(items))
            resp.read()
        except (errors.StackyardError, OSError):
            self.pool.drop(self.info["worker_address"])

    def commit(self) -> bool:
        """May this attempt publish its output? Only one attempt of a task may."""
        return bool(self.pool.call(self.info["scheduler"], "commit", attempt=self.attempt,
                                   task=self.task))

    def publish(self, output: str, name: str, write, replication: int | None = None) -> None:
        """Write OUTPUT/NAME as Hadoop's FileOutputCommitter does: WRITE(file)
        fills OUTPUT/_temporary/ATTEMPT/NAME; then, with the scheduler's
        permission (one attempt per task gets it), it is renamed into place.
        A reader never sees a half-written file; a speculative pair never
        both publish."""
        fs = self.fs
        tmpdir = posixpath.join(output, "_temporary", f"{self.attempt}_{self.task}")
        tmp = posixpath.join(tmpdir, name)
        with fs.open(tmp, "wb", replication=replication) as f:
            write(f)
            self.counters["bytes_written"] = self.counters.get("bytes_written", 0) + f.tell()
        if not self.commit():
            fs.rm(tmpdir, recursive=True)
            raise CommitDenied(f"{self.attempt}: another attempt commits this task's output")
        final = posixpath.join(output, name)
        if fs.exists(final):       # a committer that died after its rename, before reporting
            fs.rm(final)
        fs.mv(tmp, final)
        fs.rm(tmpdir, recursive=True)

    def close(self) -> None:
        self.reader.close()
        shutil.rmtree(self.dir / "in", ignore_errors=True)
        if self._fs is not None:
            self._fs.close()
        self.pool.close()

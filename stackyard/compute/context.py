"""What a task sees while it runs (in the runner process): who it is, the
DFS, its counters, its map-output buffer, its shuffle input, and the
permission to commit its output."""

from __future__ import annotations

import posixpath
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stackyard import errors
from stackyard.compute.shuffle import MapOutputBuffer, merge_segments
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool

FETCHERS = 4          # parallel copies per reducer (Hadoop's parallelcopies is 5)


class FetchFailed(Exception):
    """A map output could not be fetched: the scheduler re-runs that map task."""

    def __init__(self, stage: int, task: int, why: str):
        super().__init__(f"could not fetch the output of task {task} of stage {stage}: {why}")
        self.stage, self.task = stage, task


class CommitDenied(Exception):
    """Another attempt of this task was allowed to commit its output."""


class TaskContext:
    def __init__(self, task: dict, directory: Path):
        self.info = task
        self.job, self.stage, self.task = task["job"], task["stage"], task["task"]
        self.attempt, self.number = task["attempt"], task["number"]
        self.partitions, self.parents = task["partitions"], task["parents"]
        self.user = task.get("user") or None
        self.dir = Path(directory)
        self.counters: dict[str, int] = {}
        self.secret = Secret.load(task["secret_file"], task.get("ca_file"))
        self.pool = HttpPool(self.secret, timeout=120)
        self.split = None          # a map task's input split, set by the program
        self.output = b""          # what the task returns to the driver (a result task's value)
        self._fs = None

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
        return MapOutputBuffer(self.dir, self.partitions, partitioner, limit, combiner,
                               self.counters)

    def shuffle_input(self, partition: int, stages: list[int] | None = None,
                      job: str | None = None):
        """The records of PARTITION from every task of the parent STAGES (default:
        all of them) of this job (or of an earlier JOB), sorted by key."""
        return merge_segments(self.fetch(partition, stages, job))

    def fetch(self, partition: int, stages: list[int] | None = None,
              job: str | None = None) -> list[Path]:
        indir = self.dir / "in"
        indir.mkdir(exist_ok=True)
        job = job or self.job
        wanted = []
        for sid in self.parents if stages is None else stages:
            where = self.pool.call(self.info["scheduler"], "map_outputs", job=job, stage=sid)
            for t in range(where["tasks"]):
                out = where["outputs"][t]
                if out is None or not out["address"]:
                    raise FetchFailed(sid, t, "its output is being recomputed")
                wanted.append((sid, t, out))
        with ThreadPoolExecutor(FETCHERS) as ex:
            paths = list(ex.map(lambda w: self._fetch_one(job, partition, indir, *w), wanted))
        return paths

    def _fetch_one(self, job: str, partition: int, indir: Path, sid: int, t: int,
                   out: dict) -> Path:
        path = indir / f"{job}_s{sid}_t{t}.seg"
        query = {"job": job, "attempt": out["attempt"], "partition": partition}
        try:
            resp = self.pool.request(out["address"], "GET", "/shuffle", query)
            if resp.status != 200:
                body = resp.read()
                raise errors.RemoteError(f"HTTP {resp.status}: {body[:200]!r}")
            n = 0
            with open(path, "wb") as f:
                while piece := resp.read(1 << 20):
                    f.write(piece)
                    n += len(piece)
            expected = int(resp.headers.get("Content-Length", n))
            if n != expected:
                raise errors.ClusterUnavailable(f"got {n} of {expected} bytes")
        except (errors.StackyardError, OSError, ValueError) as exc:
            self.pool.drop(out["address"])
            raise FetchFailed(sid, t, f"{out['worker']} ({out['address']}): {exc}") from None
        self.incr("shuffle_bytes", n)
        return path

    # -- cached partitions (the worker's block store) ---------------------------------

    def get_block(self, bid: str, where: list[str] = ()) -> bytes | None:
        """Block BID from this worker, else from one of the worker addresses
        WHERE; None when nobody has it (it must be recomputed)."""
        for address in [self.info["worker_address"], *where]:
            try:
                resp = self.pool.request(address, "GET", "/block", {"id": bid})
                data = resp.read()
            except (errors.StackyardError, OSError):
                continue
            if resp.status == 200:
                self.incr("cache_hits" if address == self.info["worker_address"]
                          else "cache_remote_hits")
                return data
        self.incr("cache_misses")
        return None

    def put_block(self, bid: str, data: bytes, level: str) -> None:
        """Cache BID on this worker; losing it only costs a recomputation."""
        try:
            resp = self.pool.request(self.info["worker_address"], "PUT", "/block",
                                     {"id": bid, "level": level}, body=data)
            resp.read()
        except (errors.StackyardError, OSError):
            pass

    def commit(self) -> bool:
        """May this attempt publish its output? Only one attempt of a task may."""
        return bool(self.pool.call(self.info["scheduler"], "commit", attempt=self.attempt))

    def publish(self, output: str, name: str, write, replication: int | None = None) -> None:
        """Write OUTPUT/NAME as Hadoop's FileOutputCommitter does: WRITE(file)
        fills OUTPUT/_temporary/ATTEMPT/NAME; then, with the scheduler's
        permission (one attempt per task gets it), it is renamed into place.
        A reader never sees a half-written file; a speculative pair never
        both publish."""
        fs = self.fs
        tmpdir = posixpath.join(output, "_temporary", self.attempt)
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
        shutil.rmtree(self.dir / "in", ignore_errors=True)
        if self._fs is not None:
            self._fs.close()
        self.pool.close()

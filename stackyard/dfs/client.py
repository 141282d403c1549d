"""The DFS from Python: `sy.connect().fs`.

    fs = sy.connect().fs
    with fs.open("/data/x.txt", "wb") as f:
        f.write(b"hello\\n")
    for line in fs.open("/data/x.txt"):
        ...

Paths are absolute DFS paths ("/a/b"); "yard://" and "yard:///" prefixes are
accepted. Errors are OSError subclasses (FileNotFoundError, ...), as fsspec
raises them; see stackyard/errors.py.
"""

from __future__ import annotations

import fnmatch
import getpass
import grp
import hashlib
import io
import os
import posixpath
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from stackyard import errors
from stackyard.cluster.config import master_list
from stackyard.dfs.namespace import normalize
from stackyard.dfs.streams import DfsReader, DfsWriter
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool, raise_refusal

Progress = Callable[[int], None]
COPY_PIECE = 8 << 20


@dataclass(frozen=True)
class ChunkLocation:
    """Where a byte range of a file lives: what the scheduler places map tasks by."""
    index: int
    offset: int
    length: int
    handle: str
    hosts: list[str]        # "host:port" of the chunkservers with a good replica
    racks: list[str]


def dfs_path(path: str) -> str:
    if path.startswith("yard://"):
        path = path[len("yard://"):]
        if not path.startswith("/"):
            path = "/" + path.split("/", 1)[1] if "/" in path else "/"
    return normalize(path)


MASTER_TIMEOUT = 12.0   # seconds: longer than a master's wait for its quorum (journal.WAIT)
SHADOW_READS = {"stat", "list", "locations", "du", "fsck"}
RETRIED = {"create", "delete", "rename", "mkdir", "append", "close", "commit", "begin_write",
           "truncate"}    # a retry after a lost reply says so: the master may have done it


class FileSystem:
    def __init__(self, master: str, secret: Secret, user: str | None = None,
                 retry_seconds: float = 15.0):
        self.masters = master_list(master) if isinstance(master, str) else list(master)
        self.master = self.masters[0]       # the active master, as far as we know
        self.pool = HttpPool(secret)
        # with standbys to turn to, a master that accepts but does not answer
        # (paused, partitioned) is given up on after MASTER_TIMEOUT
        self.rpc_pool = HttpPool(secret, timeout=MASTER_TIMEOUT) if len(self.masters) > 1 \
            else self.pool
        self.user = user or os.environ.get("STACKYARD_USER") or getpass.getuser()
        try:
            self.groups = [grp.getgrgid(g).gr_name for g in os.getgroups()]
        except KeyError:
            self.groups = []
        self.client_id = f"{self.user}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.retry_seconds = retry_seconds
        self.sleep = time.sleep

    # -- RPC --------------------------------------------------------------------

    def call(self, name: str, **args):
        """Call the active master: follow it when it moves (a standby names it;
        an unreachable one sends us to the next), and wait out a restart or
        safe mode. When no master is active, a read (SHADOW_READS) is served
        by a standby and marked `stale`, as GFS's shadow masters serve them."""
        args.setdefault("user", self.user)
        args.setdefault("groups", self.groups)
        deadline = time.monotonic() + self.retry_seconds
        delay, tried, retry = 0.1, 0, False
        while True:
            moved, rotate = None, True
            try:
                return self.rpc_pool.call(self.master, name, **args,
                                          **({"retry": True} if retry else {}))
            except errors.StandbyError as exc:
                failure: BaseException = exc
                moved = exc.active if exc.active in self.masters else None
                retry = retry or name in RETRIED     # a deposed master may have applied it
            except errors.SafeModeError as exc:
                failure, rotate = exc, False
            except errors.ClusterUnavailable as exc:
                unsent = "cannot reach" in str(exc) and "timed out" not in str(exc)
                if not unsent and len(self.masters) == 1:
                    raise errors.ClusterUnavailable(f"master unreachable: {exc}") from None
                failure = exc
                retry = retry or (not unsent and name in RETRIED)
            if moved and moved != self.master:
                self.master = moved
                continue
            tried += 1
            if tried % len(self.masters) == 0 and name in SHADOW_READS and len(self.masters) > 1:
                stale = self._from_a_standby(name, args)
                if stale is not None:
                    return stale
            if time.monotonic() > deadline and tried >= len(self.masters):
                if isinstance(failure, errors.ClusterUnavailable):
                    raise errors.ClusterUnavailable(f"master unreachable: {failure}") from None
                raise failure
            if rotate:
                self.master = self.masters[(self.masters.index(self.master) + 1)
                                           % len(self.masters)]
            if not rotate or tried % len(self.masters) == 0:
                self.sleep(delay)
                delay = min(delay * 2, 1.0)

    def active_master(self) -> str:
        """The active master's address (asked of each master in turn), or the
        best guess when none says it is active."""
        if len(self.masters) == 1:
            return self.master
        for address in [self.master, *self.masters]:
            try:
                if self.rpc_pool.call(address, "cluster").get("role") == "active":
                    self.master = address
                    break
            except (errors.StackyardError, OSError):
                continue
        return self.master

    def _from_a_standby(self, name: str, args: dict):
        for address in self.masters:
            try:
                return self.rpc_pool.call(address, name, **args, stale=True)
            except (errors.StandbyError, errors.ClusterUnavailable, errors.SafeModeError):
                continue
        return None

    # -- namespace --------------------------------------------------------------

    def stat(self, path: str) -> dict:
        return self.call("stat", path=dfs_path(path))

    def info(self, path: str) -> dict:
        return self.stat(path)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
            return True
        except FileNotFoundError:
            return False

    def isdir(self, path: str) -> bool:
        try:
            return self.stat(path)["type"] == "directory"
        except FileNotFoundError:
            return False

    def isfile(self, path: str) -> bool:
        try:
            return self.stat(path)["type"] == "file"
        except FileNotFoundError:
            return False

    def ls(self, path: str = "/", detail: bool = True, recursive: bool = False) -> list:
        entries = self.call("list", path=dfs_path(path))
        if recursive:                   # depth first, without recursion: trees run 1000 deep
            out, stack = [], [iter(entries)]
            while stack:
                e = next(stack[-1], None)
                if e is None:
                    stack.pop()
                    continue
                out.append(e)
                if e["type"] == "directory":
                    stack.append(iter(self.call("list", path=e["path"])))
            entries = out
        return entries if detail else [e["path"] for e in entries]

    def glob(self, pattern: str) -> list[str]:
        """The existing paths PATTERN matches (*, ?, [...] within a name), sorted."""
        paths = ["/"]
        for part in dfs_path(pattern).strip("/").split("/"):
            if not part:
                continue
            matched = []
            for base in paths:
                if any(c in part for c in "*?["):
                    try:
                        entries = self.ls(base)
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    matched += [e["path"] for e in entries
                                if e["path"] != base and fnmatch.fnmatchcase(e["name"], part)]
                else:
                    matched.append(posixpath.join(base, part))
            paths = matched
        return sorted(p for p in paths if self.exists(p))

    def mkdir(self, path: str, parents: bool = True, mode: int = 0o755) -> bool:
        return self.call("mkdir", path=dfs_path(path), parents=parents, mode=mode)

    def rm(self, path: str, recursive: bool = False) -> None:
        self.call("delete", path=dfs_path(path), recursive=recursive)

    def mv(self, src: str, dst: str) -> str:
        return self.call("rename", src=dfs_path(src), dst=dfs_path(dst))

    def server_defaults(self) -> dict:
        """The master's defaults: replication, chunk_size, trash_interval (minutes)."""
        return self.call("server_defaults")

    def truncate(self, path: str, length: int) -> bool:
        """Cut a closed file to LENGTH bytes (HDFS's truncate); at once
        readable and appendable at the new length."""
        return self.call("truncate", path=dfs_path(path), length=length)

    def setrep(self, path: str, replication: int, wait: bool = False,
               timeout: float = 300.0) -> int:
        n = self.call("setrep", path=dfs_path(path), replication=replication)
        if wait:
            self.wait_replication(path, timeout)
        return n

    def wait_replication(self, path: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            report = self.fsck(path)
            if all(len(c["live"]) == min(c["expected"], report["live_servers"])
                   for f in report["files"] for c in f["chunks"]):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replication of {path} not reached within {timeout} s")
            self.sleep(0.5)

    def chmod(self, path: str, mode: int) -> None:
        self.call("chmod", path=dfs_path(path), mode=mode)

    def chown(self, path: str, owner: str | None = None, group: str | None = None) -> None:
        self.call("chown", path=dfs_path(path), owner=owner or "", group=group or "")

    def du(self, path: str) -> dict:
        return self.call("du", path=dfs_path(path))

    def fsck(self, path: str = "/") -> dict:
        return self.call("fsck", path=dfs_path(path))

    def cluster(self) -> dict:
        return self.call("cluster")

    # -- data -------------------------------------------------------------------

    def open(self, path: str, mode: str = "rb", replication: int | None = None,
             chunk_size: int | None = None, buffer_size: int = 1 << 20):
        """A real file object: "rb" (seekable, buffered), "wb" (overwrites), "ab".
        Text modes ("r", "w", "a") wrap it in io.TextIOWrapper (UTF-8)."""
        text = "b" not in mode
        kind = mode.replace("b", "").replace("t", "")
        path = dfs_path(path)
        if kind == "r":
            f = io.BufferedReader(DfsReader(self, path), buffer_size)
        elif kind in ("w", "a", "x"):
            if kind == "a":
                info = self.call("append", path=path, client=self.client_id)
            else:
                info = self.call("create", path=path, client=self.client_id,
                                 overwrite=(kind == "w"), replication=replication,
                                 chunk_size=chunk_size)
            f = DfsWriter(self, path, info, append=(kind == "a"))
        else:
            raise ValueError(f"mode: must be one of rb, wb, ab, xb (or text r, w, a), got {mode!r}")
        return io.TextIOWrapper(f, encoding="utf-8") if text else f

    def cat(self, path: str) -> bytes:
        with self.open(path, "rb") as f:
            return f.read()

    def put(self, local: str, remote: str, overwrite: bool = False,
            replication: int | None = None, chunk_size: int | None = None,
            progress: Progress | None = None) -> dict:
        """Copy a local file into the DFS. An existing directory REMOTE receives it."""
        remote = dfs_path(remote)
        if os.path.isdir(local):
            raise IsADirectoryError(21, "Is a directory", local)
        if self.isdir(remote):
            remote = remote.rstrip("/") + "/" + os.path.basename(local)
        with open(local, "rb") as src:
            dst = self.open(remote, "wb" if overwrite else "xb", replication, chunk_size)
            try:
                with dst:
                    _copy(src, dst, progress)
            except BaseException:
                try:                # as Hadoop's put: a failed copy leaves no partial file
                    self.rm(remote)
                except (OSError, errors.StackyardError):
                    pass
                raise
        return self.stat(remote)

    def get(self, remote: str, local: str, progress: Progress | None = None) -> str:
        """Copy a DFS file to local disk (written aside, renamed when complete)."""
        st = self.stat(remote)
        if st["type"] == "directory":
            raise IsADirectoryError(21, "Is a directory", dfs_path(remote))
        if os.path.isdir(local):
            local = os.path.join(local, st["name"])
        if os.path.exists(local):
            raise FileExistsError(17, "File exists", local)
        tmp = f"{local}._COPYING_"
        try:
            with self.open(remote, "rb") as src, open(tmp, "wb") as dst:
                _copy(src, dst, progress)
            os.replace(tmp, local)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return local

    def cp(self, src: str, dst: str, overwrite: bool = False) -> None:
        if self.isdir(dst):
            dst = dfs_path(dst).rstrip("/") + "/" + os.path.basename(dfs_path(src))
        st = self.stat(src)
        if st["type"] == "directory":
            raise IsADirectoryError(21, "Is a directory", dfs_path(src))
        with self.open(src, "rb") as fin, self.open(dst, "wb" if overwrite else "xb",
                                                    st["replication"], st["chunk_size"]) as fout:
            _copy(fin, fout, None)

    def chunk_locations(self, path: str, offset: int = 0, length: int | None = None
                        ) -> list[ChunkLocation]:
        info = self.call("locations", path=dfs_path(path), offset=offset,
                         length=length if length is not None else 1 << 62)
        return [ChunkLocation(c["index"], c["offset"], c["length"], c["handle"],
                              [loc["address"] for loc in c["locations"]],
                              [loc["rack"] for loc in c["locations"]])
                for c in info["chunks"] if c["length"]]

    def checksum(self, path: str) -> tuple[str, str]:
        """(algorithm, hex): an MD5 over each chunk's MD5 of its block CRC32Cs, as
        HDFS's MD5-of-MD5-of-CRC checksum; equal contents with equal chunk sizes
        give equal checksums, and no data is read, only CRCs."""
        info = self.call("locations", path=dfs_path(path))
        outer = hashlib.md5()
        for c in info["chunks"]:
            if not c["length"]:
                continue
            last = None
            for loc in c["locations"]:
                query = {"handle": c["handle"], "version": c["version"], "token": c["token"],
                         "length": c["length"]}
                try:
                    resp = self.pool.request(loc["address"], "GET", "/chunk/checksum", query)
                    body = resp.read()
                    if resp.status != 200:
                        raise_refusal(resp.status, body, loc["address"])
                    outer.update(body)
                    break
                except (errors.StackyardError, OSError) as exc:
                    last = exc
            else:
                raise errors.CorruptDataError(5, f"no replica of chunk {c['handle']} answered: {last}",
                                              dfs_path(path))
        return f"MD5-of-MD5-of-{64 * 1024}CRC32C", outer.hexdigest()

    def close(self) -> None:
        self.pool.close()
        if self.rpc_pool is not self.pool:
            self.rpc_pool.close()


def _copy(src, dst, progress: Progress | None) -> None:
    if progress is None:
        shutil.copyfileobj(src, dst, COPY_PIECE)
        return
    buf = bytearray(COPY_PIECE)
    view = memoryview(buf)
    while True:
        n = src.readinto(view)
        if not n:
            break
        dst.write(view[:n])
        progress(n)

"""The DFS as an fsspec file system, protocol "yard".

Registered through the `fsspec.specs` entry point, so every fsspec user
(pandas, pyarrow, polars, dask, duckdb via `register_filesystem`) can open
"yard:///data/x.parquet" without importing stackyard first:

    yard:///path              the cluster under STACKYARD_HOME (~/.stackyard)
    yard://host:port/path     the master at host:port; the secret comes from
                              storage_options["secret"], $STACKYARD_SECRET or
                              the secret file under STACKYARD_HOME

Reads ask the chunkservers for just the byte range fsspec's cache wants
(DfsReader.pread), so a Parquet footer read costs a footer's transfer, and
consecutive ranges ride one kept-alive connection per chunkserver. Writes go
through the DFS's own pipelined writer; with autocommit=False (fsspec
transactions) a file is written aside and renamed into place on commit.
"""

from __future__ import annotations

import os
import posixpath
import uuid

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from fsspec.utils import stringify_path

from stackyard.dfs.client import FileSystem
from stackyard.dfs.streams import DfsReader

READ_BLOCK = 8 << 20    # fsspec read-ahead unit: a few round trips per 64 MiB chunk


def _info(entry: dict) -> dict:
    return {"name": entry["path"], "size": entry["length"], "type": entry["type"],
            "mode": entry["mode"], "owner": entry["owner"], "group": entry["group"],
            "mtime": entry["mtime"], "replication": entry["replication"],
            "chunk_size": entry["chunk_size"]}


class YardFileSystem(AbstractFileSystem):
    protocol = ("yard",)
    root_marker = "/"
    # One instance per call: a cached one would outlive `yard cluster down`/`up`
    # (new ports) or a changed STACKYARD_HOME, and making one costs two file reads.
    cachable = False

    def __init__(self, master: str | None = None, secret=None, home: str | None = None,
                 user: str | None = None, **kwargs):
        super().__init__(**kwargs)
        from stackyard.connect import connect, home_secret
        if master is not None and secret is None:
            secret = os.environ.get("STACKYARD_SECRET") or home_secret(home)
        self._connection = connect(home=home, master=master, secret=secret, user=user,
                                   embedded=False)
        self.client: FileSystem = self._connection.fs

    # -- paths ----------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        if path.startswith("yard://"):
            rest = path[len("yard://"):]
            if not rest.startswith("/"):
                rest = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
            path = rest
        if not path.startswith("/"):
            path = "/" + path
        return posixpath.normpath(path).replace("//", "/") if path != "/" else "/"

    @staticmethod
    def _get_kwargs_from_urls(path):
        if path.startswith("yard://"):
            netloc = path[len("yard://"):].split("/", 1)[0]
            if netloc:
                return {"master": netloc}
        return {}

    # -- metadata -------------------------------------------------------------

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        entries = [_info(e) for e in self.client.ls(path)]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path, **kwargs):
        return _info(self.client.stat(self._strip_protocol(path)))

    def exists(self, path, **kwargs):
        return self.client.exists(self._strip_protocol(path))

    def modified(self, path):
        import datetime
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], datetime.UTC)

    created = modified   # the DFS keeps one time per inode, as HDFS's mtime

    def checksum(self, path):
        return int(self.client.checksum(self._strip_protocol(path))[1][:16], 16)

    def ukey(self, path):
        return self.client.checksum(self._strip_protocol(path))[1]

    # -- namespace changes ----------------------------------------------------

    def mkdir(self, path, create_parents=True, **kwargs):
        path = self._strip_protocol(path)
        if self.client.exists(path):
            raise FileExistsError(17, "File exists", path)
        self.client.mkdir(path, parents=create_parents)

    def makedirs(self, path, exist_ok=False):
        path = self._strip_protocol(path)
        if self.client.isdir(path) and not exist_ok:
            raise FileExistsError(17, "File exists", path)
        self.client.mkdir(path, parents=True)

    def rmdir(self, path):
        path = self._strip_protocol(path)
        if not self.client.isdir(path):
            raise NotADirectoryError(20, "Not a directory", path)
        self.client.rm(path, recursive=False)

    def rm_file(self, path):
        path = self._strip_protocol(path)
        if self.client.isdir(path):
            raise IsADirectoryError(21, "Is a directory", path)
        self.client.rm(path)

    def _rm(self, path):
        self.client.rm(self._strip_protocol(path), recursive=False)

    def rm(self, path, recursive=False, maxdepth=None):
        if isinstance(path, str) and maxdepth is None and not any(c in path for c in "*?["):
            self.client.rm(self._strip_protocol(path), recursive=recursive)
        else:
            for p in reversed(self.expand_path(path, recursive=recursive, maxdepth=maxdepth)):
                self._rm(p)
        self.invalidate_cache()

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        """A rename on the master when one path moves (no data copied);
        otherwise fsspec's copy-then-delete."""
        single = (isinstance(path1, str) and isinstance(path2, str) and maxdepth is None
                  and not any(c in path1 for c in "*?["))
        if not single:
            return super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.client.isdir(src) and not recursive and self.client.ls(src, detail=False):
            raise IsADirectoryError(21, "Is a directory (use recursive=True)", src)
        if path2.endswith("/") and not self.client.exists(dst):
            self.client.mkdir(dst)
        self.client.mv(src, dst)
        self.invalidate_cache()

    def cp_file(self, path1, path2, **kwargs):
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        st = self.client.stat(src)
        if st["type"] == "directory":
            self.makedirs(dst, exist_ok=True)
            return
        with self.client.open(src, "rb") as fin, \
                self.client.open(dst, "wb", st["replication"], st["chunk_size"]) as fout:
            while piece := fin.read(8 << 20):
                fout.write(piece)

    def chmod(self, path, mode):
        self.client.chmod(self._strip_protocol(path), mode)

    def chown(self, path, owner=None, group=None):
        self.client.chown(self._strip_protocol(path), owner, group)

    def setrep(self, path, replication):
        return self.client.setrep(self._strip_protocol(path), replication)

    # -- data -----------------------------------------------------------------

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None,
              replication=None, chunk_size=None, **kwargs):
        return YardFile(self, self._strip_protocol(path), mode, block_size or READ_BLOCK,
                        autocommit, cache_options=cache_options, replication=replication,
                        chunk_size=chunk_size, **kwargs)

    def cat_file(self, path, start=None, end=None, **kwargs):
        path = self._strip_protocol(path)
        reader = DfsReader(self.client, path)
        try:
            size = reader.length
            start = 0 if start is None else (max(0, size + start) if start < 0 else start)
            end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
            return reader.pread(start, max(0, end - start))
        finally:
            reader.close()

    def close(self):
        self._connection.close()


class YardFile(AbstractBufferedFile):
    def __init__(self, fs: YardFileSystem, path: str, mode: str, block_size: int,
                 autocommit: bool, replication=None, chunk_size=None, **kwargs):
        self._reader = self._writer = None
        self._replication, self._chunk_size = replication, chunk_size
        size = None
        if mode == "rb":
            self._reader = DfsReader(fs.client, path)
            size = self._reader.length
            kwargs.setdefault("cache_type", "readahead")
        elif mode == "xb" and fs.client.exists(path):
            raise FileExistsError(17, "File exists", path)
        super().__init__(fs, path, mode, block_size, autocommit, size=size, **kwargs)
        self._temp = None if autocommit or mode == "rb" else \
            f"{posixpath.dirname(path)}/._{posixpath.basename(path)}.{uuid.uuid4().hex[:8]}"

    def _fetch_range(self, start, end):
        return self._reader.pread(start, end - start)

    def _initiate_upload(self):
        target = self._temp or self.path
        kind = self.mode if self._temp is None else "wb"
        self._writer = self.fs.client.open(target, kind, self._replication, self._chunk_size)

    def _upload_chunk(self, final=False):
        self._writer.write(self.buffer.getbuffer())
        if final:
            self._writer.close()
        return True

    def commit(self):
        if self._temp is not None:
            if self.fs.client.exists(self.path):
                self.fs.client.rm(self.path)
            self.fs.client.mv(self._temp, self.path)

    def discard(self):
        if self._temp is not None:
            try:
                self.fs.client.rm(self._temp)
            except FileNotFoundError:
                pass

    def close(self):
        try:
            super().close()
        finally:
            if self._reader is not None:
                self._reader.close()
            if self._writer is not None and not self._writer.closed:
                self._writer.abort()


"""The few DFS calls the table store makes, kept in memory: the stand-in
that lets the tablet server's logic be stepped in one process (unit and
property tests), as LevelDB's memenv stands in for its Env. A write is
visible to readers at flush or close, as an hflush makes it in the DFS."""

from __future__ import annotations

import io
import threading


class _Writer(io.RawIOBase):
    def __init__(self, fs: MemFS, path: str, keep: bytes = b""):
        super().__init__()
        self.fs, self.path, self.buf = fs, path, bytearray(keep)

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if self.path not in self.fs.files:
            raise FileNotFoundError(2, "No such file or directory (renamed away?)", self.path)
        self.buf += bytes(b)
        return len(b)

    def flush(self) -> None:
        if self.closed:
            return
        if self.path not in self.fs.files:
            raise FileNotFoundError(2, "No such file or directory (renamed away?)", self.path)
        self.fs.files[self.path] = bytes(self.buf)

    def close(self) -> None:
        if not self.closed:
            self.flush()
        super().close()


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.length = data, len(data)

    def pread(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]

    def close(self) -> None:
        pass


class _Opened:
    def __init__(self, data: bytes):
        self.raw = _Reader(data)


class MemFS:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}
        self.lock = threading.Lock()

    def _parents(self, path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dirs.add("/" + "/".join(parts[:i]))

    def open(self, path: str, mode: str = "rb", replication=None):
        if mode == "rb":
            if path not in self.files:
                raise FileNotFoundError(2, "No such file or directory", path)
            return _Opened(self.files[path])
        self._parents(path)
        self.files[path] = b""
        return _Writer(self, path)

    def cat(self, path: str) -> bytes:
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.files[path]

    def mkdir(self, path: str) -> None:
        self._parents(path + "/x")

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def ls(self, path: str) -> list[dict]:
        path = path.rstrip("/")
        if path not in self.dirs:
            raise FileNotFoundError(2, "No such file or directory", path)
        out = {}
        for p in list(self.files) + list(self.dirs):
            if p.startswith(path + "/"):
                head = p[len(path) + 1:].split("/", 1)
                kind = "file" if len(head) == 1 and p in self.files else "directory"
                out[f"{path}/{head[0]}"] = kind
        return [{"path": p, "type": t} for p, t in sorted(out.items())]

    def rm(self, path: str, recursive: bool = False) -> None:
        if path in self.files:
            del self.files[path]
            return
        if path not in self.dirs:
            raise FileNotFoundError(2, "No such file or directory", path)
        for p in [p for p in self.files if p.startswith(path + "/")]:
            del self.files[p]
        self.dirs = {d for d in self.dirs if d != path and not d.startswith(path + "/")}

    def mv(self, src: str, dst: str) -> None:
        for table in (self.files,):
            for p in [p for p in table if p == src or p.startswith(src + "/")]:
                table[dst + p[len(src):]] = table.pop(p)
        self.dirs = {dst + d[len(src):] if d == src or d.startswith(src + "/") else d
                     for d in self.dirs}

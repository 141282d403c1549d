"""file:// paths: the local disks of the driver and the workers (as Spark
reads them: the file must be at the same path wherever a task runs)."""

from __future__ import annotations

import os


class LocalFiles:
    def open(self, path: str, mode: str = "rb", buffer_size: int = -1):
        return open(path, mode, buffering=buffer_size)

    def stat(self, path: str) -> dict:
        st = os.stat(path)
        kind = "directory" if os.path.isdir(path) else "file"
        return {"name": os.path.basename(path), "path": path, "type": kind,
                "length": st.st_size if kind == "file" else 0}

    def ls(self, path: str) -> list[dict]:
        return [self.stat(os.path.join(path, n)) for n in sorted(os.listdir(path))]


def local_path(path: str) -> str | None:
    """The local path a file:// URL names, or None for a DFS path."""
    if path.startswith("file://"):
        return path[len("file://"):] or "/"
    if path.startswith("file:"):
        return path[len("file:"):]
    return None

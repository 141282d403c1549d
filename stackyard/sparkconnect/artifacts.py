"""What a client ships with AddArtifacts: Python files and zips (made
importable where its UDFs run), plain files, and cached local relations
(`cache/<sha256>`: createDataFrame's large data, sent once). Kept on the
server's disk under one directory per session, bounded in size."""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib
from pathlib import Path

from stackyard.sparkconnect.errors import ConnectError

MAX_SESSION_BYTES = 2 << 30


class Artifacts:
    def __init__(self, root: Path, session_id: str):
        self.dir = Path(root) / hashlib.sha256(session_id.encode()).hexdigest()[:32]
        self.bytes = 0

    def _path(self, name: str) -> Path:
        parts = Path(name).parts
        if not parts or name.startswith("/") or ".." in parts or parts[0] not in (
                "pyfiles", "archives", "files", "cache", "jars", "classes"):
            raise ConnectError("", f"artifact name not allowed: {name!r}", "42000",
                               kind="java.lang.IllegalArgumentException")
        return self.dir.joinpath(*parts)

    def put(self, name: str, data: bytes, crc: int | None = None, append: bool = False) -> bool:
        if crc is not None and zlib.crc32(data) & 0xFFFFFFFF != crc:
            return False
        self.bytes += len(data)
        if self.bytes > MAX_SESSION_BYTES:
            raise ConnectError("", "artifacts of this session exceed 2 GiB", "54000")
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if append else "wb") as f:
            f.write(data)
        return True

    def exists(self, name: str) -> bool:
        try:
            return self._path(name).exists()
        except ConnectError:
            return False

    def cached(self, sha: str) -> bytes | None:
        path = self._path(f"cache/{sha}")
        return path.read_bytes() if path.exists() else None

    def python_files(self) -> dict[str, bytes]:
        root = self.dir / "pyfiles"
        if not root.exists():
            return {}
        return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}

    def remove(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)


def ensure_root(path: str | os.PathLike) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p

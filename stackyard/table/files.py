"""Where the table store keeps its bytes in the DFS, and the tablet manifest.

    /stackyard/table/wal/<server>/log.<n>                 a tablet server's logs
    /stackyard/table/wal/<server>-splitting/              ... while the master splits them
    /stackyard/table/data/<table>/<tablet>/manifest.<gen>  the tablet's files and flush marks
    /stackyard/table/data/<table>/<tablet>/<family>/<id>.sst
    /stackyard/table/data/<table>/<tablet>/recovered/<server>.<n>.edits

A manifest is written whole under a new generation and the older ones
removed after, so a crash leaves the newest complete one (a manifest that
does not parse is skipped). It names the tablet's SSTables per family
(newest first, each clipped to a key range) and, per tablet server, the
last log sequence number whose edits those files hold.
"""

from __future__ import annotations

import logging
import threading
import uuid

import msgpack

from stackyard.table import sstable
from stackyard.table.tablet import Clipped, FileRef

log = logging.getLogger("stackyard.table.files")
ROOT = "/stackyard/table"
WAL = f"{ROOT}/wal"
DATA = f"{ROOT}/data"


def tablet_dir(table: str, tablet_id: str) -> str:
    return f"{DATA}/{table}/{tablet_id}"


def wal_dir(server: str) -> str:
    return f"{WAL}/{server}"


class LockedReader:
    """A DFS file's pread, one caller at a time (the DFS reader keeps a position)."""

    def __init__(self, fs, path: str):
        self.fs, self.path = fs, path
        self.f = fs.open(path, "rb").raw
        self.lock = threading.Lock()

    def pread(self, offset: int, length: int) -> bytes:
        with self.lock:
            return self.f.pread(offset, length)

    def close(self) -> None:
        self.f.close()


def open_sstable(fs, ref: FileRef, cache: sstable.BlockCache) -> Clipped:
    f = LockedReader(fs, ref.path)
    return Clipped(ref, sstable.Reader(ref.path, f.pread, f.f.length, cache))


def write_sstable(fs, table: str, tablet_id: str, family: str, cells, codec: str,
                  bloom: bool, replication: int | None = None) -> FileRef | None:
    """Write CELLS as a new SSTable; its ref, or None when there were none."""
    path = f"{tablet_dir(table, tablet_id)}/{family}/{uuid.uuid4().hex}.sst"
    with fs.open(path, "wb", replication=replication) as out:
        meta = sstable.write(out, cells, codec=codec, bloom=bloom)
    if meta["cells"] == 0:
        fs.rm(path)
        return None
    return FileRef(path, meta["size"])


def read_manifest(fs, table: str, tablet_id: str) -> dict:
    base = tablet_dir(table, tablet_id)
    try:
        names = [e["path"].rsplit("/", 1)[-1] for e in fs.ls(base)]
    except FileNotFoundError:
        return {"gen": 0, "files": {}, "flushed": {}}
    gens = sorted((int(n.split(".", 1)[1]) for n in names
                   if n.startswith("manifest.") and n.split(".", 1)[1].isdigit()), reverse=True)
    for gen in gens:
        try:
            m = msgpack.unpackb(fs.cat(f"{base}/manifest.{gen}"), raw=False)
            m["files"] = {f: [FileRef.from_list(r) for r in refs] for f, refs in m["files"].items()}
            return m
        except (ValueError, msgpack.UnpackException, KeyError) as exc:
            log.warning("%s/manifest.%d unreadable (%s); trying an older one", base, gen, exc)
    return {"gen": 0, "files": {}, "flushed": {}}


def write_manifest(fs, table: str, tablet_id: str, gen: int, files: dict[str, list[FileRef]],
                   flushed: dict[str, int]) -> int:
    base = tablet_dir(table, tablet_id)
    gen += 1
    body = msgpack.packb({"gen": gen, "files": {f: [r.to_list() for r in refs]
                                                for f, refs in files.items()},
                          "flushed": flushed}, use_bin_type=True)
    with fs.open(f"{base}/manifest.{gen}", "wb") as out:
        out.write(body)
    for e in fs.ls(base):
        name = e["path"].rsplit("/", 1)[-1]
        if name.startswith("manifest.") and name != f"manifest.{gen}":
            try:
                fs.rm(f"{base}/{name}")
            except FileNotFoundError:
                pass
    return gen

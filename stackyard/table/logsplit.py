"""Splitting a dead tablet server's write-ahead log by tablet (HBase's log
splitting), done by the master before the dead server's tablets open
elsewhere.

The log directory is first renamed to `<server>-splitting`: from then on
the old server, if it is in fact alive, cannot sync another record (its
files are no longer where it writes), so nothing it acknowledges later can
be missed. Each tablet's records are then written to its `recovered/`
directory, named by the dead server, and the splitting directory removed.
A master that dies half way leaves the `-splitting` directory, and the
next one splits it again (the recovered files are rewritten whole).
"""

from __future__ import annotations

import logging

from stackyard.table import files, wal

log = logging.getLogger("stackyard.table.logsplit")
SUFFIX = "-splitting"


def fence(fs, server: str) -> str:
    """Rename SERVER's log directory out of its reach; the new path."""
    src, dst = files.wal_dir(server), files.wal_dir(server) + SUFFIX
    if fs.exists(src):
        fs.mv(src, dst)
    return dst


def split(fs, server: str, tablet_dirs: dict[str, str]) -> dict[str, int]:
    """Split SERVER's fenced logs into the recovered edits of each tablet in
    TABLET_DIRS (tablet id -> its directory); edits per tablet. Records of
    tablets no longer known (dropped tables) are discarded."""
    base = fence(fs, server)
    try:
        logs = sorted(e["path"] for e in fs.ls(base) if e["type"] == "file")
    except FileNotFoundError:
        return {}
    counts: dict[str, int] = {}
    for path in logs:
        number = path.rsplit(".", 1)[-1]
        by_tablet: dict[str, list[bytes]] = {}
        for seq, tablet, cells in wal.records(fs.cat(path)):
            if tablet in tablet_dirs:
                by_tablet.setdefault(tablet, []).append(wal.encode(seq, tablet, cells))
        for tablet, recs in by_tablet.items():
            out = f"{tablet_dirs[tablet]}/recovered/{server}.{number}.edits"
            with fs.open(out, "wb") as f:
                f.write(b"".join(recs))
            counts[tablet] = counts.get(tablet, 0) + len(recs)
    fs.rm(base, recursive=True)
    log.info("split the log of dead tablet server %s: %s", server,
             ", ".join(f"{t}: {n} edits" for t, n in sorted(counts.items())) or "no edits")
    return counts

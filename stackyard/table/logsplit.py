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


def split(fs, server: str, keep_table=lambda table: True) -> dict[str, int]:
    """Split SERVER's fenced logs into the recovered edits of each tablet
    they name (a record names its table and tablet, so the METADATA tablet,
    which may itself need these edits, is not asked); edits per tablet.
    Records of tables KEEP_TABLE refuses (dropped ones) are discarded."""
    base = fence(fs, server)
    try:
        logs = sorted(e["path"] for e in fs.ls(base) if e["type"] == "file")
    except FileNotFoundError:
        return {}
    counts: dict[str, int] = {}
    for path in logs:
        number = path.rsplit(".", 1)[-1]
        by_tablet: dict[tuple[str, str], list[bytes]] = {}
        for seq, tablet, cells, table in wal.records(fs.cat(path), with_table=True):
            if keep_table(table):
                by_tablet.setdefault((table, tablet), []).append(
                    wal.encode(seq, tablet, cells, table))
        for (table, tablet), recs in by_tablet.items():
            out = f"{files.tablet_dir(table, tablet)}/recovered/{server}.{number}.edits"
            with fs.open(out, "wb") as f:
                f.write(b"".join(recs))
            counts[tablet] = counts.get(tablet, 0) + len(recs)
    fs.rm(base, recursive=True)
    log.info("split the log of dead tablet server %s: %s", server,
             ", ".join(f"{t}: {n} edits" for t, n in sorted(counts.items())) or "no edits")
    return counts

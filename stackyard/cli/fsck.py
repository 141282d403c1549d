"""`yard fsck PATH`: HDFS's fsck report."""

from __future__ import annotations

import datetime

import click

from stackyard.cli.common import connect_fs


def run_fsck(home: str | None, path: str, files: bool, blocks: bool, locations: bool) -> int:
    fs = connect_fs(home)
    now = datetime.datetime.now().strftime("%a %b %d %H:%M:%S %Y")
    click.echo(f"Connecting to master at {fs.master}")
    click.echo(f"FSCK started by {fs.user} for path {path} at {now}")
    report = fs.fsck(path)
    total_size = 0
    nchunks = 0
    for f in report["files"]:
        total_size += f["length"]
        nchunks += len(f["chunks"])
        bad = [c for c in f["chunks"] if c["state"] != "healthy"]
        if files or bad:
            status = "OK" if not bad else ", ".join(sorted({c["state"].upper() for c in bad}))
            uc = " (OPENFORWRITE)" if f["under_construction"] else ""
            click.echo(f"{f['path']} {f['length']} bytes, replicated: replication="
                       f"{f['replication']}, {len(f['chunks'])} chunk(s){uc}:  {status}")
        for i, c in enumerate(f["chunks"]):
            if blocks or c["state"] != "healthy":
                line = (f"{i}. {c['handle']} len={c['length']} Live_repl={len(c['live'])}"
                        f" [{c['state']}]")
                if locations or c["state"] != "healthy":
                    line += f" live={c['live']}"
                    if c["corrupt"]:
                        line += f" corrupt={c['corrupt']}"
                click.echo(line)
    t = report["totals"]

    def pct(n: int) -> str:
        return f"{100.0 * n / nchunks:.1f} %" if nchunks else "0.0 %"

    click.echo("")
    click.echo(f"Status: {report['status']}")
    click.echo(f" Number of chunkservers:\t{report['live_servers']}")
    click.echo(f" Total size:\t{total_size} B")
    click.echo(f" Total files:\t{len(report['files'])}")
    click.echo(f" Total chunks (validated):\t{nchunks}")
    click.echo(f" Healthy chunks:\t{t['healthy']} ({pct(t['healthy'])})")
    click.echo(f" Under-replicated chunks:\t{t['under-replicated']} ({pct(t['under-replicated'])})")
    click.echo(f" Corrupt chunks:\t{t['corrupt']}")
    click.echo(f" Missing chunks:\t{t['missing']}")
    if report["safemode"]:
        click.echo(" The master is in safe mode: replica counts may still be coming in.")
    click.echo("")
    click.echo(f"The filesystem under path '{path}' is {report['status']}")
    return 0 if report["status"] == "HEALTHY" else 1

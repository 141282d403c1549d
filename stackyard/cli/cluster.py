"""`yard cluster up | add | down | status`."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from stackyard.cluster.home import Home
from stackyard.cluster.local import LocalCluster, saved_settings
from stackyard.errors import ClusterUnavailable


def add(home: str | None, role: str, count: int) -> int:
    """COUNT more chunkservers or workers in the running cluster under HOME."""
    h = Home.at(home)
    saved = saved_settings(h)
    state = h.read_state()
    if saved is None or not state:
        raise ClusterUnavailable(f"no cluster under {h.root} (start one with `yard cluster up`)")
    if count < 1:
        raise ValueError(f"--count: at least 1, got {count}")
    field = f"{role}s"
    return up(home, {field: getattr(saved, field) + count})


def up(home: str | None, given: dict) -> int:
    """Start the cluster under HOME; GIVEN holds the flags the user typed."""
    h = Home.at(home)
    before = saved_settings(h)
    cluster = LocalCluster.with_flags(h, given)
    state = cluster.up()
    console = Console()
    if state.get("restarted"):
        console.print(f"[green]Started {', '.join(state['restarted'])} again in the running "
                      f"cluster under {h.root}[/]")
    if state.get("added"):
        console.print(f"[green]Added {', '.join(state['added'])} to the running cluster under "
                      f"{h.root}.[/]")
    elif before is not None and not state.get("restarted"):
        grown = [f"{name} {getattr(before, name)} -> {getattr(cluster.settings, name)}"
                 for name in ("chunkservers", "workers", "replication", "chunk_size")
                 if getattr(before, name) != getattr(cluster.settings, name)]
        console.print(f"[yellow]Restarted the cluster configured under {h.root} with its saved "
                      "shape" + (f", changed: {', '.join(grown)}" if grown else "")
                      + " (remove that folder for a new cluster).[/]")
    table = Table(title=f"Stackyard cluster under {h.root}")
    for col in ("name", "role", "address", "pid"):
        table.add_column(col)
    for d in state["daemons"]:
        table.add_row(d["name"], d["role"], d["address"], str(d["pid"]))
    console.print(table)
    scheme = "https" if cluster.settings.tls else "http"
    if cluster.settings.tls:
        console.print(f"TLS: every daemon's certificate is signed by {h.root / 'tls' / 'ca.pem'} "
                      "(give it to browsers and other clients to trust)")
    pages = ", ".join(f"{scheme}://{a}/status" for a in state["master"].split(","))
    console.print(f"Master status page{'s' if ',' in state['master'] else ''}: {pages} "
                  f"(log in with any user name and the secret in {h.secret_file})")
    sched = [d["address"] for d in state["daemons"] if d["role"] == "scheduler"]
    if sched:
        console.print(f"Scheduler (jobs, stages, tasks): {scheme}://{sched[0]}/status")
    conn = [d["address"] for d in state["daemons"] if d["role"] == "connect"]
    if conn:
        host = "localhost" if not cluster.settings.tls else conn[0].rsplit(":", 1)[0]
        tls = ";use_ssl=true" if cluster.settings.tls else ""
        console.print(f"Spark Connect (PySpark DataFrames): sc://{host}:"
                      f"{conn[0].rsplit(':', 1)[1]}/;token=SECRET{tls} (SECRET: the contents of "
                      f"{h.secret_file}, or a token from `yard token`)")
    elif cluster.settings.connect and cluster.settings.workers and cluster.settings.coords:
        console.print("Spark Connect: not started (pip install 'stackyard[connect]' for it, "
                      "then `yard cluster down` and `yard cluster up`)")
    return 0


def down(home: str | None) -> int:
    h = Home.at(home)
    if h.read_state() is None:
        click.echo(f"cluster down: no cluster under {h.root}", err=True)
        return 1
    stopped = LocalCluster(h).down()
    click.echo(f"Stopped {len(stopped)} daemon(s): {', '.join(stopped) or 'none were running'}")
    return 0


def status(home: str | None) -> int:
    h = Home.at(home)
    rows = LocalCluster(h).status()
    if not rows:
        click.echo(f"cluster status: no cluster under {h.root} (start one with `yard cluster up`)",
                   err=True)
        return 1
    table = Table(title=f"Stackyard cluster under {h.root}")
    for col in ("name", "role", "address", "pid", "state"):
        table.add_column(col)
    for r in rows:
        style = "green" if r["state"] == "running" else "red"
        role = f"{r['role']} ({r['ha']})" if r.get("ha") else r["role"]
        table.add_row(r["name"], role, r["address"], str(r["pid"] or "-"),
                      f"[{style}]{r['state']}[/]")
    Console(width=120).print(table)
    return 0 if all(r["state"] == "running" for r in rows) else 1

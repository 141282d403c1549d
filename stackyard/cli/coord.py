"""`yard coord`: the coordination cell from the shell."""

from __future__ import annotations

import subprocess
import sys

import click
from rich.console import Console
from rich.table import Table

from stackyard.cli.common import exit_with
from stackyard.cluster.home import Home
from stackyard.coord.tree import CoordError

_DESCR = {"no_node": "no such node", "node_exists": "node exists",
          "bad_version": "version mismatch", "not_empty": "node has children",
          "no_children_for_ephemerals": "ephemeral nodes cannot have children",
          "session_expired": "session expired", "bad_arguments": "bad argument"}


def _client(home: str | None):
    from stackyard.cluster import process
    from stackyard.coord.client import CoordClient
    from stackyard.errors import ClusterUnavailable
    from stackyard.net.auth import Secret
    h = Home.at(home)
    state = h.read_state()
    coords = [d for d in (state or {}).get("daemons", []) if d["role"] == "coord"]
    if not coords:
        raise ClusterUnavailable(f"no coordination cell under {h.root} "
                                 "(start one with `yard cluster up`)")
    live = [d["address"] for d in coords if process.alive(d["pid"], d["config"])]
    if not live:      # say so at once, rather than wait for a leader that cannot come
        raise ClusterUnavailable(f"no cluster is running under {h.root} (start one with "
                                 "`yard cluster up`)")
    addresses = [d["address"] for d in coords]
    return CoordClient(addresses, Secret.load(h.secret_file), retry_seconds=10)


def _run(verb: str, fn) -> None:
    from stackyard.cli.common import EXPECTED
    try:
        fn()
    except CoordError as exc:
        code = getattr(exc, "code", "error")
        click.echo(f"coord {verb}: {exc}: {_DESCR.get(code, code)}", err=True)
        exit_with(1)
    except EXPECTED as exc:
        from stackyard.errors import describe
        click.echo(f"coord {verb}: {describe(exc)}", err=True)
        exit_with(1)
    except KeyboardInterrupt:
        exit_with(130)


home_option = click.option("--home", envvar="STACKYARD_HOME", default=None)


@click.group("coord")
def coord() -> None:
    """The coordination cell (Chubby / ZooKeeper): nodes, locks, watches."""


@coord.command("ls")
@click.argument("path", default="/")
@home_option
def ls(path, home):
    """List the children of PATH."""
    def go():
        for name in _client(home).children(path):
            click.echo(name)
    _run("ls", go)


@coord.command("get")
@click.argument("path")
@click.option("--stat", "show_stat", is_flag=True, help="Also print the node's stat.")
@home_option
def get(path, show_stat, home):
    """Print the data of PATH."""
    def go():
        data, stat = _client(home).get(path)
        sys.stdout.buffer.write(data + (b"\n" if data and not data.endswith(b"\n") else b""))
        if show_stat:
            for k, v in stat.items():
                click.echo(f"{k} = {v}")
    _run("get", go)


@coord.command("set")
@click.argument("path")
@click.argument("data")
@click.option("--version", type=int, default=-1, help="Only if the node is at this version.")
@home_option
def set_(path, data, version, home):
    """Set the data of PATH (compare-and-set with --version)."""
    _run("set", lambda: click.echo(f"version {_client(home).set(path, data.encode(), version)['version']}"))


@coord.command("create")
@click.argument("path")
@click.argument("data", default="")
@click.option("--sequential", "-s", is_flag=True, help="Append a sequence number to the name.")
@click.option("--ephemeral", "-e", is_flag=True,
              help="Deleted when this command's session ends (i.e. at once): for trying out.")
@home_option
def create(path, data, sequential, ephemeral, home):
    """Create PATH (its parent must exist)."""
    def go():
        client = _client(home)
        click.echo(client.create(path, data.encode(), ephemeral=ephemeral, sequential=sequential))
        client.close()
    _run("create", go)


@coord.command("rm")
@click.argument("path")
@click.option("--version", type=int, default=-1)
@click.option("-r", "recursive", is_flag=True, help="Remove the children first.")
@home_option
def rm(path, version, recursive, home):
    """Delete PATH."""
    def go():
        client = _client(home)

        def remove(p: str, v: int) -> None:
            if recursive:
                for child in client.children(p):
                    remove(f"{p.rstrip('/')}/{child}", -1)
            client.delete(p, v)
        remove(path, version)
    _run("rm", go)


@coord.command("lock", context_settings={"ignore_unknown_options": True})
@click.argument("path")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@home_option
def lock(path, command, timeout, home):
    """Run COMMAND holding the exclusive lock PATH (like flock(1)); the fencing
    token is in $STACKYARD_LOCK_TOKEN."""
    def go():
        import os

        from stackyard.coord.recipes import Lock
        client = _client(home)
        held = Lock(client, path, " ".join(command))
        seq = held.acquire(timeout)
        if seq is None:
            click.echo(f"coord lock: {path}: not acquired within {timeout} s", err=True)
            exit_with(1)
        try:
            env = {**os.environ, "STACKYARD_LOCK_TOKEN": str(seq.token)}
            code = subprocess.call(list(command), env=env)
        finally:
            held.release()
            client.close()
        exit_with(code)
    _run("lock", go)


@coord.command("watch")
@click.argument("path")
@click.option("--count", type=int, default=0, help="Stop after this many events (0: never).")
@home_option
def watch(path, count, home):
    """Print every change to PATH (its data, existence and children) as it happens."""
    def go():
        client = _client(home)
        client.start_session()
        seen, last = 0, None
        while not count or seen < count:
            client.exists(path, watch=True)
            try:
                client.children(path, watch=True)
            except CoordError:
                pass
            for ev in client.events(wait=5.0):
                # a delete fires both the node's watch and its children's: one
                # change, one line (ZooKeeper's one notification per watcher)
                if ev["type"] == "deleted" and last == ("deleted", ev["path"]):
                    continue
                last = (ev["type"], ev["path"])
                click.echo(f"{ev['type']} {ev['path']}")
                seen += 1
                sys.stdout.flush()
                if count and seen >= count:
                    break
        client.close()
    _run("watch", go)


@coord.command("status")
@home_option
def status(home):
    """Each replica: role, term, commit and applied index."""
    def go():
        client = _client(home)
        table = Table(title="Coordination cell")
        for col in ("replica", "address", "role", "term", "commit", "applied", "last index",
                    "snapshot"):
            table.add_column(col)
        down = 0
        for address in client.addresses:
            try:
                s = client.status(address)
                table.add_row(s["id"], address, s["role"], str(s["term"]), str(s["commit"]),
                              str(s["applied"]), str(s["last_index"]), str(s["snapshot_index"]))
            except Exception as exc:
                down += 1
                table.add_row("?", address, f"[red]unreachable[/] ({exc})", "", "", "", "", "")
        Console(width=130).print(table)
        if down:
            exit_with(1)
    _run("status", go)

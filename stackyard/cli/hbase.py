"""`yard hbase`: HBase's shell against the cluster's table store, with -e
for commands on the command line (one a line, or separated by ';' at the
top level), and an interactive prompt otherwise."""

from __future__ import annotations

import sys

import click

from stackyard.cli.common import EXPECTED, History, exit_with

HISTORY = "~/.stackyard_hbase_history"


@click.command("hbase")
@click.option("-e", "execute", default=None, help="Commands to run, then exit.")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def hbase(execute, home) -> None:
    """HBase's shell: create, put, get, scan, delete, ... on the table store."""
    exit_with(run(execute, home))


def run(execute, home) -> int:
    from stackyard.connect import connect
    from stackyard.errors import describe
    from stackyard.table.shell import Shell
    try:
        client = connect(home=home, embedded=False)
        tables = client.tables
    except EXPECTED as exc:
        click.echo(f"hbase: {describe(exc)}", err=True)
        return 1
    shell = Shell(tables, click.echo)
    try:
        if execute is not None:
            return 0 if all(_one(shell, line) for line in execute.splitlines()) else 1
        _interactive(shell)
        return 0
    finally:
        client.close()


def _one(shell, line: str) -> bool:
    from stackyard.errors import describe
    try:
        shell.run(line)
        return True
    except (*EXPECTED, ValueError, TypeError, PermissionError) as exc:
        click.echo(f"ERROR: {describe(exc)}", err=True)
        return False
    except KeyboardInterrupt:
        click.echo("^C", err=True)
        return False


def _interactive(shell) -> None:
    tty = sys.stdin.isatty()
    with History(HISTORY):
        while True:
            try:
                line = input("hbase> " if tty else "")
            except EOFError:
                break
            if line.strip() in ("exit", "quit"):
                break
            _one(shell, line)

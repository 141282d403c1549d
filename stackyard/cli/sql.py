"""`yard sql`: Hive's CLI / spark-sql for the cluster. -e runs statements,
-f a file of them, and with neither an interactive shell reads statements
ending in ';' (history kept between sessions). Ctrl-C cancels the running
statement and its job; the shell carries on."""

from __future__ import annotations

import csv
import json
import sys
import time

import click

from stackyard.cli.common import EXPECTED, History, exit_with

HISTORY = "~/.stackyard_sql_history"


@click.command("sql")
@click.option("-e", "execute", default=None, help="Statements to run (separated by ;).")
@click.option("-f", "file", default=None, type=click.Path(dir_okay=False),
              help="A file of statements to run.")
@click.option("--output", "-o", type=click.Choice(["table", "csv", "tsv", "json"]),
              default="table", show_default=True, help="How results are printed.")
@click.option("--database", "-d", default="default", show_default=True)
@click.option("--dialect", type=click.Choice(["spark", "hive"]), default="spark",
              show_default=True)
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def sql(execute, file, output, database, dialect, home) -> None:
    """Run SQL on the cluster: -e "...", -f FILE, or an interactive shell."""
    exit_with(run(execute, file, output, database, dialect, home))


def run(execute, file, output, database, dialect, home) -> int:
    from stackyard.connect import connect
    from stackyard.errors import describe
    if execute is not None and file is not None:
        click.echo("sql: give -e or -f, not both", err=True)
        return 2
    text = execute
    if file is not None:
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            click.echo(f"sql: {describe(exc)}", err=True)
            return 1
    try:
        client = connect(home=home, embedded=False)
    except EXPECTED as exc:
        click.echo(f"sql: {describe(exc)}", err=True)
        return 1
    try:
        try:
            session = client.sql_session(dialect=dialect)
        except EXPECTED as exc:          # e.g. a cluster made without a coordination cell
            click.echo(f"sql: {describe(exc)}", err=True)
            return 1
        if database != "default":
            err = _run_text(session, f"USE `{database}`", output, file=None)
            if err:
                return err
        if text is not None:
            return _run_text(session, text, output, file)
        return _shell(session, output)
    finally:
        client.close()


def _run_text(session, text: str, output: str, file) -> int:
    """Each statement of TEXT in turn; the first failure stops the run (as hive -f)."""
    from stackyard.sql.errors import SqlError
    from stackyard.sql.parser import parse
    try:
        statements = parse(text, session.dialect)
    except SqlError as exc:
        click.echo(f"sql: {_where(file)}{exc}", err=True)
        return 1
    for stmt in statements:
        code = _one(session, stmt, text, output, file)
        if code:
            return code
    return 0


def _one(session, stmt, text: str, output: str, file) -> int:
    from stackyard.errors import describe
    from stackyard.sql.errors import SqlError
    start = time.monotonic()
    try:
        result = session.execute(stmt, text)
    except SqlError as exc:
        click.echo(f"sql: {_where(file)}{exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("sql: cancelled (the statement's job was killed)", err=True)
        return 130
    except EXPECTED as exc:
        click.echo(f"sql: {describe(exc)}", err=True)
        return 1
    except Exception as exc:          # a job's failure arrives as the engine's error
        click.echo(f"sql: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                   err=True)
        return 1
    took = time.monotonic() - start
    _print(result, output, took)
    return 0


def _where(file) -> str:
    return f"{file}: " if file else ""


def _print(result, output: str, took: float) -> None:
    from stackyard.sql.result import cell, format_table
    table = result.arrow()
    if table.column_names == ["result"] and table.num_rows == 1:
        click.echo(table.column(0)[0].as_py(), err=output != "table")
        return
    out = sys.stdout
    if output == "table":
        if table.num_columns:
            click.echo(format_table(table))
        click.echo(f"Time taken: {took:.3f} seconds, Fetched {table.num_rows} row(s)", err=True)
    elif output in ("csv", "tsv"):
        w = csv.writer(out, delimiter="," if output == "csv" else "\t", lineterminator="\n")
        w.writerow(table.column_names)
        for row in result:
            w.writerow(["" if v is None else cell(v) for v in row])
    else:
        for row in table.to_pylist():
            out.write(json.dumps(row, default=str) + "\n")
    out.flush()


def _shell(session, output: str) -> int:
    from stackyard.sql.errors import SqlError
    from stackyard.sql.parser import parse
    click.echo("yard sql: statements end with ';'. Ctrl-C cancels one, Ctrl-D leaves.",
               err=True)
    buf: list[str] = []
    with History(HISTORY):
        while True:
            try:
                line = input("yard-sql> " if not buf else "        > ")
            except KeyboardInterrupt:
                buf = []
                click.echo("", err=True)
                continue
            except EOFError:
                click.echo("", err=True)
                return 0
            buf.append(line)
            text = "\n".join(buf).strip()
            if not text:
                buf = []
                continue
            if text.lower() in ("quit", "exit", "quit;", "exit;"):
                return 0
            if not text.endswith(";"):
                continue
            buf = []
            try:
                statements = parse(text, session.dialect)
            except SqlError as exc:
                click.echo(f"sql: {exc}", err=True)
                continue
            for stmt in statements:
                if _one(session, stmt, text, output, None):
                    break

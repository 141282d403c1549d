"""`yard`: the command line."""

from __future__ import annotations

import click

from stackyard.cli.common import exit_with, guarded, parse_size


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stackyard", prog_name="yard")
def main() -> None:
    """Stackyard: Google's and Hadoop's big-data stack in Python: a distributed
    file system (GFS / HDFS), MapReduce and datasets on one job engine, SQL,
    Spark Connect for PySpark's DataFrames, a table store (Bigtable / HBase), a
    coordination cell (Chubby / ZooKeeper) and search (Elasticsearch)."""


@main.group()
def cluster() -> None:
    """Start, stop and inspect the local cluster under STACKYARD_HOME."""


@cluster.command("up")
@click.option("--chunkservers", type=int, default=3, show_default=True)
@click.option("--masters", type=int, default=3, show_default=True,
              help="DFS masters (1, 3 or 5): one active, the others standbys.")
@click.option("--coords", type=int, default=3, show_default=True,
              help="Replicas of the coordination cell (0, 1, 3 or 5).")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Job-engine workers (0: no scheduler either).")
@click.option("--chunk-size", default="64m", show_default=True, help="e.g. 1m, 64m",
              callback=lambda _ctx, _param, v: parse_size(v) and v)
@click.option("--replication", type=int, default=3, show_default=True)
@click.option("--dead-after", type=float, default=30.0, show_default=True,
              help="Seconds without a heartbeat before a chunkserver is declared dead.")
@click.option("--heartbeat", type=float, default=3.0, show_default=True,
              help="Chunkserver heartbeat interval in seconds.")
@click.option("--lease-timeout", type=float, default=60.0, show_default=True)
@click.option("--racks", type=int, default=0, help="Spread chunkservers over N racks.")
@click.option("--tls", is_flag=True, default=False,
              help="Make a cluster CA and a certificate per daemon; TLS on every connection.")
@click.option("--home", envvar="STACKYARD_HOME", default=None, help="Default: ~/.stackyard")
def cluster_up(chunkservers, masters, coords, workers, chunk_size, replication, dead_after, heartbeat,
               lease_timeout, racks, tls, home) -> None:
    """Start the local cluster on 127.0.0.1: the DFS masters (one active, the
    others standbys following its replicated log) and chunkservers,
    the coordination cell, the job scheduler and workers, the Spark Connect
    server (with pyspark-client installed), the table master, a tablet server
    beside each chunkserver and the Thrift gateway, and a search server beside
    each chunkserver. Pages and addresses are printed when it is up."""
    from stackyard.cli.cluster import up
    settings = dict(chunkservers=chunkservers, masters=masters, coords=coords, workers=workers,
                    chunk_size=chunk_size, replication=replication, dead_after=dead_after,
                    heartbeat_interval=heartbeat, lease_timeout=lease_timeout, racks=racks,
                    tls=tls)
    ctx = click.get_current_context()
    flag = {"heartbeat_interval": "heartbeat"}
    # only the flags the user typed: an existing cluster keeps its own shape otherwise
    given = {k: v for k, v in settings.items()
             if ctx.get_parameter_source(flag.get(k, k)) != click.core.ParameterSource.DEFAULT}
    if "chunk_size" in given:
        given["chunk_size"] = parse_size(given["chunk_size"])
    exit_with(guarded("cluster up", lambda: up(home, given)))


@cluster.command("add")
@click.argument("role", type=click.Choice(["chunkserver", "worker"]))
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def cluster_add(role, count, home) -> None:
    """Add chunkservers or workers to the running cluster (as HDFS adds
    DataNodes); `yard balancer` then spreads the existing replicas."""
    from stackyard.cli.cluster import add
    exit_with(guarded("cluster add", lambda: add(home, role, count)))


@cluster.command("down")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def cluster_down(home) -> None:
    """Stop every daemon of the local cluster (data stays on disk)."""
    from stackyard.cli.cluster import down
    exit_with(guarded("cluster down", lambda: down(home)))


@cluster.command("status")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def cluster_status(home) -> None:
    """Each daemon with its role, address, pid and state."""
    from stackyard.cli.cluster import status
    exit_with(guarded("cluster status", lambda: status(home)))


@main.command("daemon")
@click.argument("role", type=click.Choice(["master", "chunkserver", "coord", "scheduler",
                                          "worker", "connect", "tablemaster",
                                          "tabletserver", "thrift", "searchserver"]))
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML file with the daemon's settings.")
def daemon(role, config_path) -> None:
    """Run one daemon in the foreground (for a real multi-machine cluster)."""
    from stackyard.cluster.daemon import run
    exit_with(guarded("daemon", lambda: run(role, config_path)))


@main.command("token")
@click.option("--user", default=None, help="Whom the token names (default: you).")
@click.option("--lifetime", type=float, default=24 * 3600.0, show_default=True,
              help="Seconds the token is good for.")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def token(user, lifetime, home) -> None:
    """Print a delegation token for WebHDFS clients (delegation=TOKEN), as
    Hadoop's `hdfs fetchdt`. It is signed with the cluster secret."""
    def show() -> None:
        import getpass
        import os

        from stackyard.cluster.home import Home
        from stackyard.net.auth import TOKEN_MAX_LIFETIME, Secret
        if not 0 < lifetime <= TOKEN_MAX_LIFETIME:
            raise ValueError(f"--lifetime: must be positive and at most {TOKEN_MAX_LIFETIME:.0f} "
                             f"seconds (7 days, HDFS's maximum), got {lifetime}")
        h = Home.at(home)
        who = user or os.environ.get("STACKYARD_USER") or getpass.getuser()
        click.echo(Secret.load(h.secret_file).delegation_token(who, lifetime))
    exit_with(guarded("token", show))


@main.command("fsck")
@click.argument("path", default="/")
@click.option("-files", "--files", "show_files", is_flag=True, help="List every file.")
@click.option("-blocks", "--blocks", "show_blocks", is_flag=True, help="List every chunk.")
@click.option("-locations", "--locations", "show_locations", is_flag=True,
              help="Show the replicas of each chunk.")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def fsck(path, show_files, show_blocks, show_locations, home) -> None:
    """Check the health of every chunk under PATH (exit 1 if corrupt or missing)."""
    from stackyard.cli.fsck import run_fsck
    exit_with(guarded("fsck", lambda: run_fsck(home, path, show_files, show_blocks,
                                               show_locations)))


class _DfsCommand(click.Command):
    """`yard dfs`: its verbs and flags look like options, so completing a word
    that starts with "-" asks the command, not the argument: answer both."""

    def shell_complete(self, ctx, incomplete):
        return _complete_dfs(ctx, incomplete) + [
            c for c in super().shell_complete(ctx, incomplete) if c.value == "--home"]


@main.command("dfs", cls=_DfsCommand, context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False,
                                       "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED,
                shell_complete=lambda ctx, _p, incomplete: _complete_dfs(ctx, incomplete))
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def dfs(args, home) -> None:
    """Hadoop's file-system shell: yard dfs -ls -R /, yard dfs -put f /d, ...

    Run `yard dfs -help` for every verb."""
    from stackyard.cli.dfs import run
    exit_with(run(list(args), home))


def _complete_dfs(ctx, incomplete: str) -> list:
    """Shell completion (click's: eval "$(_YARD_COMPLETE=bash_source yard)"):
    the verb first, then its flags, then DFS paths of a running cluster."""
    from click.shell_completion import CompletionItem

    import stackyard.cli.dfs_summary  # noqa: F401 - its verbs too
    from stackyard.cli.dfs import VERBS
    done = ctx.params.get("args") or ()
    if not done:
        return [CompletionItem(v, help=VERBS[v][2]) for v in sorted(VERBS) if
                v.startswith(incomplete or "-")]
    if incomplete.startswith("-"):
        return [CompletionItem(f"-{f}") for f in VERBS.get(done[0], (None, ""))[1].split()
                if f"-{f}".startswith(incomplete)]
    try:
        from stackyard.connect import connect
        with connect(home=ctx.params.get("home"), embedded=False) as client:
            parent = incomplete.rsplit("/", 1)[0] + "/" if "/" in incomplete else ""
            names = client.fs.ls(parent or "/", detail=True) if parent.startswith("/") else []
    except Exception:  # noqa: BLE001 - no cluster, no path to offer: completion stays quiet
        return []
    return [CompletionItem(e["path"] + ("/" if e["type"] == "directory" else ""))
            for e in names if e["path"].startswith(incomplete)]


@main.command("dfsadmin", context_settings={"ignore_unknown_options": True,
                                            "allow_interspersed_args": False,
                                            "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def dfsadmin(args, home) -> None:
    """Hadoop's dfsadmin quota verbs: -setQuota N DIR, -clrQuota DIR,
    -setSpaceQuota SIZE DIR, -clrSpaceQuota DIR (the superuser's)."""
    from stackyard.cli.dfs import run
    from stackyard.cli.dfs_admin import ADMIN
    if not args:
        click.echo("Usage: yard dfsadmin " + " | ".join(f"[{v} ...]" for v in ADMIN), err=True)
        exit_with(1)
    exit_with(run(list(args), home, only=ADMIN))


@main.command("balancer")
@click.option("-threshold", "--threshold", type=float, default=10.0, show_default=True,
              help="Percentage points a chunkserver's use may differ from the mean.")
@click.option("-bandwidth", "--bandwidth", default="10m", show_default=True,
              help="Bytes moved a second at most, e.g. 1m, 100m.")
@click.option("-iterations", "--iterations", type=int, default=50, show_default=True)
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def balancer(threshold, bandwidth, iterations, home) -> None:
    """Move replicas until every chunkserver's use is within THRESHOLD of
    the mean (HDFS's balancer; the superuser's)."""
    from stackyard.cli.balancer import balance
    from stackyard.cli.common import connect_fs

    def go() -> int:
        if not 0 < threshold <= 100:
            raise ValueError(f"-threshold: a percentage in (0, 100], got {threshold:g}")
        return balance(connect_fs(home), threshold, parse_size(bandwidth), iterations)
    exit_with(guarded("balancer", go))


@main.group("hdfs")
def hdfs() -> None:
    """Hadoop's spelling, for scripts written for it: `yard hdfs dfs -ls /`."""


hdfs.add_command(dfs, "dfs")
hdfs.add_command(dfsadmin, "dfsadmin")


def _add_groups() -> None:
    from stackyard.cli.coord import coord
    from stackyard.cli.hbase import hbase
    from stackyard.cli.mr import mr
    from stackyard.cli.search import search
    from stackyard.cli.sql import sql
    main.add_command(coord)
    main.add_command(mr)
    main.add_command(sql)
    main.add_command(hbase)
    main.add_command(search)


_add_groups()

if __name__ == "__main__":
    main()

"""dfsadmin's verbs (`yard dfsadmin -setQuota 100 /dir`, also spelled `yard
hdfs dfsadmin`), in Hadoop's words: quotas, draining a chunkserver
(decommissioning, which Hadoop does through an exclude file and
-refreshNodes) and -report. The changes are the superuser's, as there."""

from __future__ import annotations

import click

from stackyard.cli.common import parse_size
from stackyard.cli.dfs import Shell, verb

ADMIN = ("-setQuota", "-clrQuota", "-setSpaceQuota", "-clrSpaceQuota", "-decommission",
         "-recommission", "-report")


def _set(sh: Shell, paths: list[str], **quota) -> None:
    sh.each(paths, lambda p: sh.fs.call("setquota", path=sh.path(p), **quota))


@verb("-setQuota", usage="-setQuota <quota> <dirname>...<dirname>")
def set_quota(sh: Shell, _opts: set, args: list[str]) -> None:
    if len(args) < 2:
        raise ValueError(f"wrong number of arguments ({len(args)})")
    n, *paths = args
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"setQuota: \"{n}\" is not a valid value for a quota.")
    _set(sh, paths, names=int(n))


@verb("-clrQuota", usage="-clrQuota <dirname>...<dirname>")
def clr_quota(sh: Shell, _opts: set, args: list[str]) -> None:
    if not args:
        raise ValueError("wrong number of arguments (0)")
    _set(sh, args, names=-1)


@verb("-setSpaceQuota", usage="-setSpaceQuota <quota> <dirname>...<dirname>")
def set_space_quota(sh: Shell, _opts: set, args: list[str]) -> None:
    if len(args) < 2:
        raise ValueError(f"wrong number of arguments ({len(args)})")
    n, *paths = args
    try:
        size = parse_size(n)
    except click.BadParameter:
        raise ValueError(f"setSpaceQuota: \"{n}\" is not a valid value for a quota.") from None
    _set(sh, paths, space=size)


@verb("-clrSpaceQuota", usage="-clrSpaceQuota <dirname>...<dirname>")
def clr_space_quota(sh: Shell, _opts: set, args: list[str]) -> None:
    if not args:
        raise ValueError("wrong number of arguments (0)")
    _set(sh, args, space=-1)


@verb("-decommission", "decommission", usage="-decommission host:port ...")
def decommission(sh: Shell, _opts: set, args: list[str]) -> None:
    """Copy every replica a chunkserver holds elsewhere, then it may stop."""
    if not args:
        raise ValueError("wrong number of arguments (0)")
    for address in args:
        state = sh.fs.call("decommission", address=address, on=True)
        sh.out(f"Decommissioning {address}: {state['admin_state']}"
               + (f" ({state['pending']} chunks to copy)" if state.get("pending") else ""))


@verb("-recommission", usage="-recommission host:port ...")
def recommission(sh: Shell, _opts: set, args: list[str]) -> None:
    if not args:
        raise ValueError("wrong number of arguments (0)")
    for address in args:
        sh.fs.call("decommission", address=address, on=False)
        sh.out(f"{address}: In Service")


@verb("-report", usage="-report")
def report(sh: Shell, _opts: set, args: list[str]) -> None:
    """Hadoop's dfsadmin -report: the cluster, then each chunkserver."""
    c = sh.fs.cluster()
    live = [s for s in c["servers"] if s["alive"]]
    sh.out(f"Configured Capacity: {sum(s['capacity'] for s in live)}")
    sh.out(f"DFS Used: {sum(s['used'] for s in live)}")
    sh.out(f"DFS Remaining: {sum(s['free'] for s in live)}")
    sh.out(f"Under replicated blocks: {c['chunks']['under-replicated']}")
    sh.out(f"Missing blocks: {c['chunks']['missing']}")
    sh.out("")
    sh.out(f"Live datanodes ({len(live)}):")
    for s in c["servers"]:
        sh.out("")
        sh.out(f"Name: {s['address']} ({s['id']})")
        sh.out(f"Rack: {s['rack']}")
        sh.out(f"Decommission Status : {_status(s)}")
        sh.out(f"Configured Capacity: {s['capacity']}")
        sh.out(f"DFS Used: {s['used']}")
        sh.out(f"DFS Remaining: {s['free']}")
        sh.out(f"Num of Blocks: {s['chunks']}")
        sh.out(f"Last contact: {s['last_seen']} s ago" + ("" if s["alive"] else " (dead)"))


def _status(s: dict) -> str:
    state = s.get("admin_state", "In Service")
    return {"In Service": "Normal", "Decommissioned": "Decommissioned"}.get(
        state, f"Decommission in progress ({s.get('pending', 0)} chunks to copy)")

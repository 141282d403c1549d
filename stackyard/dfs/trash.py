"""HDFS's trash: `-rm` moves a path to /user/USER/.Trash/Current/<path>
(the client does it, as Hadoop's TrashPolicyDefault does, when the
master's trash interval is above zero); the active master's emptier turns
Current into a checkpoint named by the time (yyMMddHHmmss, UTC) every
checkpoint interval and deletes checkpoints older than the interval.
`-expunge` makes a checkpoint and deletes the old ones at once.
"""

from __future__ import annotations

import calendar
import posixpath
import re
import time

from stackyard.dfs import ops
from stackyard.dfs.namespace import Namespace

TRASH, CURRENT = ".Trash", "Current"
CHECKPOINT_RE = re.compile(r"^\d{12}$")


def trash_root(user: str) -> str:
    return f"/user/{user}/{TRASH}"


def in_trash(path: str) -> bool:
    return f"/{TRASH}/" in path + "/"


def move_to_trash(fs, path: str) -> str | None:
    """Move PATH into its owner's trash: the new path, or None when the trash
    is off or PATH is in a trash already (then it is deleted for good)."""
    if not fs.server_defaults().get("trash_interval") or in_trash(path):
        return None
    target = trash_root(fs.user) + "/" + CURRENT + path
    fs.mkdir(posixpath.dirname(target), parents=True, mode=0o700)
    if fs.exists(target):                # as Hadoop: the later one gets a time suffix
        target += str(int(time.time() * 1000))
    fs.mv(path, target)
    return target


def checkpoint_name(now: float) -> str:
    return time.strftime("%y%m%d%H%M%S", time.gmtime(now))


def _checkpoint_time(name: str) -> float | None:
    if not CHECKPOINT_RE.match(name):
        return None
    try:
        return float(calendar.timegm(time.strptime(name, "%y%m%d%H%M%S")))
    except ValueError:
        return None


def emptier_ops(ns: Namespace, now: float, interval: float, everything: bool = False
                ) -> list[ops.Op]:
    """What one round of the emptier does, for every user's trash: Current
    becomes a checkpoint, and checkpoints older than INTERVAL seconds (all of
    them if EVERYTHING) are deleted. Pure: the caller applies the ops."""
    out: list[ops.Op] = []
    users = ns.lookup("/user")
    if users is None or not users.is_dir:
        return out
    stamp = checkpoint_name(now)
    for user, home in sorted(users.children.items()):
        trash = home.children.get(TRASH) if home.is_dir else None
        if trash is None or not trash.is_dir:
            continue
        root = trash_root(user)
        for name in sorted(trash.children):
            born = _checkpoint_time(name)
            if born is not None and (everything or born < now - interval):
                out.append(ops.Delete(f"{root}/{name}", True))
        if CURRENT in trash.children and stamp not in trash.children:
            out.append(ops.Rename(f"{root}/{CURRENT}", f"{root}/{stamp}", now))
            if everything:
                out.append(ops.Delete(f"{root}/{stamp}", True))
    return out

"""POSIX-style permission checks on the namespace, as HDFS does them: the
caller's user and groups are taken on trust from the client (HDFS's
"simple" authentication); the cluster secret is what keeps strangers out.
The superuser passes every check."""

from __future__ import annotations

import posixpath

from stackyard.dfs.namespace import Inode, Namespace, normalize
from stackyard.errors import fs_error

READ, WRITE, EXECUTE = 4, 2, 1


class Caller:
    def __init__(self, user: str, groups: list[str], superuser: str):
        self.user = user
        self.groups = set(groups)
        self.is_super = user == superuser

    def allowed(self, node: Inode, want: int) -> bool:
        if self.is_super:
            return True
        if node.owner == self.user:
            bits = (node.mode >> 6) & 7
        elif node.group in self.groups:
            bits = (node.mode >> 3) & 7
        else:
            bits = node.mode & 7
        return bits & want == want


def check(ns: Namespace, caller: Caller, path: str, want: int, parent: bool = False) -> None:
    """Raise Permission denied unless CALLER may reach PATH and has WANT on it
    (on its nearest existing ancestor when PARENT)."""
    if caller.is_super:
        return
    path = normalize(path)
    target = posixpath.dirname(path) if parent else path
    node = ns.root
    walked = "/"
    for part in [p for p in target.split("/") if p]:
        if not node.is_dir:
            break
        if not caller.allowed(node, EXECUTE):
            raise _denied(caller, walked, node, "EXECUTE")
        child = node.children.get(part)
        if child is None:
            break
        node, walked = child, posixpath.join(walked, part)
    if want and not caller.allowed(node, want):
        raise _denied(caller, walked, node, {READ: "READ", WRITE: "WRITE"}.get(want, "ACCESS"))


def check_owner(caller: Caller, node: Inode, path: str) -> None:
    if not caller.is_super and node.owner != caller.user:
        raise fs_error("EACCES", path, f"Permission denied: user={caller.user} is not the owner of inode={path}")


def _denied(caller: Caller, path: str, node: Inode, access: str) -> OSError:
    kind = "d" if node.is_dir else "-"
    return fs_error("EACCES", path,
                    f"Permission denied: user={caller.user}, access={access}, "
                    f"inode=\"{path}\":{node.owner}:{node.group}:{kind}{_rwx(node.mode)}")


def _rwx(mode: int) -> str:
    out = ""
    for shift in (6, 3, 0):
        b = (mode >> shift) & 7
        out += ("r" if b & 4 else "-") + ("w" if b & 2 else "-") + ("x" if b & 1 else "-")
    return out


rwx = _rwx

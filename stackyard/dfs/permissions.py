"""POSIX-style permission checks on the namespace, as HDFS's
FSPermissionChecker makes them: the caller's user and groups are taken on
trust from the client (HDFS's "simple" authentication); the cluster secret
is what keeps strangers out. The superuser passes every check.

What each operation needs (HDFS's rules):
- every operation: EXECUTE on each directory on the way to the path;
- mkdir, create: WRITE on the nearest existing ancestor; create over an
  existing file also WRITE on that file;
- delete: WRITE on the parent, the sticky-bit rule, and for a directory
  READ+WRITE+EXECUTE on every non-empty directory in its subtree;
- rename: WRITE on both parents, the sticky-bit rule on the source (and on
  a destination it replaces);
- list: READ+EXECUTE on the directory; content summary (du): READ+EXECUTE
  on every directory in the subtree;
- the sticky bit (01000) on a directory: only the owner of an entry, or of
  the directory, may delete or rename that entry (/tmp's 1777).
"""

from __future__ import annotations

import posixpath

from stackyard.dfs.namespace import Inode, Namespace, normalize
from stackyard.errors import fs_error

READ, WRITE, EXECUTE = 4, 2, 1
ALL = READ | WRITE | EXECUTE
STICKY = 0o1000
_NAMES = {READ: "READ", WRITE: "WRITE", EXECUTE: "EXECUTE", ALL: "ALL",
          READ | EXECUTE: "READ_EXECUTE"}


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
        raise _denied(caller, walked, node, _NAMES.get(want, "ACCESS"))


def check_sticky(caller: Caller, node: Inode, path: str) -> None:
    """Under a sticky directory only NODE's owner or the directory's may
    delete or rename NODE."""
    parent = node.parent
    if (caller.is_super or parent is None or not parent.mode & STICKY
            or caller.user in (node.owner, parent.owner)):
        return
    raise fs_error("EACCES", path,
                   f"Permission denied by sticky bit: user={caller.user}, "
                   f"path={_inode(path, node)}, parent={_inode(posixpath.dirname(path), parent)}")


def walk_checked(ns: Namespace, caller: Caller, node: Inode, want: int,
                 ignore_empty: bool = False):
    """NODE's subtree, parents first, raising Permission denied at the first
    directory without WANT; with IGNORE_EMPTY, empty directories need
    nothing (HDFS's delete)."""
    for n in ns.walk(node):
        if (n.is_dir and not caller.is_super and not (ignore_empty and not n.children)
                and not caller.allowed(n, want)):
            raise _denied(caller, ns.path_of(n), n, _NAMES.get(want, "ACCESS"))
        yield n


def check_subtree(ns: Namespace, caller: Caller, node: Inode, want: int,
                  ignore_empty: bool = False) -> None:
    """WANT on every directory in NODE's subtree (NODE included)."""
    if not caller.is_super:
        for _ in walk_checked(ns, caller, node, want, ignore_empty):
            pass


def check_owner(caller: Caller, node: Inode, path: str) -> None:
    if not caller.is_super and node.owner != caller.user:
        raise fs_error("EACCES", path, f"Permission denied: user={caller.user} is not the owner of inode={path}")


def _denied(caller: Caller, path: str, node: Inode, access: str) -> OSError:
    return fs_error("EACCES", path,
                    f"Permission denied: user={caller.user}, access={access}, "
                    f"inode={_inode(path, node)}")


def _inode(path: str, node: Inode) -> str:
    """HDFS's picture of an inode in a refusal: "path":owner:group:drwxr-xr-x."""
    return f"\"{path}\":{node.owner}:{node.group}:{'d' if node.is_dir else '-'}{_rwx(node.mode)}"


def _rwx(mode: int) -> str:
    out = ""
    for shift in (6, 3, 0):
        b = (mode >> shift) & 7
        out += ("r" if b & 4 else "-") + ("w" if b & 2 else "-") + ("x" if b & 1 else "-")
    if mode & STICKY:
        out = out[:-1] + ("t" if mode & 1 else "T")
    return out


rwx = _rwx

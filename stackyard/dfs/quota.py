"""HDFS's directory quotas: a name quota (how many files and directories a
tree may hold, the directory itself counted) and a space quota (bytes of
raw storage: length times replication, and for a file being written the
rest of each chunk not yet full, times replication, as HDFS reserves a
block). A mutation that would pass either is refused before it changes
anything; setting a quota below what a tree holds already is allowed, as
in HDFS, and only stops it from growing.

Usage is counted when checked, by walking the tree under each quota'd
ancestor; HDFS keeps running counts instead, which a tree of millions of
names under one quota would need here too.
"""

from __future__ import annotations

from stackyard.errors import fs_error

NO_QUOTA = -1


def usage(node) -> tuple[int, int]:
    """(names, raw bytes) of the tree under NODE, NODE included."""
    names = space = 0
    stack = [node]
    while stack:
        n = stack.pop()
        names += 1
        if n.is_dir:
            stack.extend(n.children.values())
        else:
            space += file_space(n)
    return names, space


def file_space(f) -> int:
    """Raw bytes a file is charged: its length times its replication, and
    while it is being written, the rest of each of its chunks (a full chunk
    is charged exactly its length)."""
    reserved = sum(f.chunk_size - c.length for c in f.chunks) if f.holder else 0
    return (f.length + reserved) * f.replication


def quota_dirs(node):
    """NODE and its ancestors that carry a quota, nearest first."""
    while node is not None:
        if node.is_dir and (node.ns_quota != NO_QUOTA or node.ds_quota != NO_QUOTA):
            yield node
        node = node.parent


def check(path_of, parent, names: int = 0, space: int = 0, skip=()) -> None:
    """Refuse NAMES more names and SPACE more bytes under PARENT, as HDFS's
    NSQuotaExceededException and DSQuotaExceededException word it. SKIP:
    quota'd directories the change does not grow (a rename within them)."""
    if names <= 0 and space <= 0:
        return
    skipped = {id(d) for d in skip}
    for d in quota_dirs(parent):
        if id(d) in skipped:
            continue
        used_names, used_space = usage(d)
        if names > 0 and d.ns_quota != NO_QUOTA and used_names + names > d.ns_quota:
            raise fs_error("EQUOTA", path_of(d),
                           f"The NameSpace quota (directories and files) of directory "
                           f"{path_of(d)} is exceeded: quota={d.ns_quota} file count="
                           f"{used_names + names}")
        if space > 0 and d.ds_quota != NO_QUOTA and used_space + space > d.ds_quota:
            raise fs_error("EQUOTA", path_of(d),
                           f"The DiskSpace quota of {path_of(d)} is exceeded: quota = "
                           f"{d.ds_quota} B = {_human(d.ds_quota)} but diskspace consumed = "
                           f"{used_space + space} B = {_human(used_space + space)}")


def _human(n: int) -> str:
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"

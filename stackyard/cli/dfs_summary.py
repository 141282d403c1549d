"""FsShell's summarizing verbs: -count, -df and -find, in Hadoop's formats
(ContentSummary's columns; `Filesystem Size Used Available Use%`)."""

from __future__ import annotations

import fnmatch
import posixpath

from stackyard.cli.common import human
from stackyard.cli.dfs import Shell, verb


@verb("-count", flags="q h", usage="-count [-q] [-h] path ...")
def count(sh: Shell, opts: set, args: list[str]) -> None:
    """DIR_COUNT FILE_COUNT CONTENT_SIZE PATHNAME; with -q, QUOTA REM_QUOTA
    SPACE_QUOTA REM_SPACE_QUOTA first (none and inf where a directory has none)."""
    size = human if "h" in opts else str

    def one(p: str) -> None:
        d = sh.fs.du(sh.path(p))
        quota = ""
        if "q" in opts:
            names, space = d.get("quota", -1), d.get("space_quota", -1)
            quota = (f"{'none' if names < 0 else names:>12} "
                     f"{'inf' if names < 0 else names - d['quota_used']:>15} "
                     f"{'none' if space < 0 else size(space):>15} "
                     f"{'inf' if space < 0 else size(space - d['space_used']):>15} ")
        sh.out(f"{quota}{d['directories']:>12} {d['files']:>12} {size(d['length']):>18} "
               f"{sh.shown(sh.path(p), p)}")
    sh.each(args or [""], one)


@verb("-df", flags="h", usage="-df [-h] [path ...]")
def df(sh: Shell, opts: set, _args: list[str]) -> None:
    size = human if "h" in opts else str
    c = sh.fs.cluster()
    live = [s for s in c["servers"] if s["alive"]]
    total = sum(s["capacity"] for s in live)
    used = sum(s["used"] for s in live)
    free = sum(s["free"] for s in live)
    pct = f"{100 * used / total:.0f}%" if total else "0%"
    sh.out(f"{'Filesystem':<32} {'Size':>12} {'Used':>12} {'Available':>12} {'Use%':>5}")
    sh.out(f"{'yard://' + sh.fs.master:<32} {size(total):>12} {size(used):>12} "
           f"{size(free):>12} {pct:>5}")


@verb("-find", usage="-find path ... [-name pattern | -iname pattern] [-print]")
def find(sh: Shell, _opts: set, args: list[str]) -> None:
    paths, name, fold = [], None, False
    rest = list(args)
    while rest:
        a = rest.pop(0)
        if a in ("-name", "-iname"):
            if not rest:
                raise ValueError(f"wrong number of arguments: {a} needs a pattern")
            name, fold = rest.pop(0), a == "-iname"
        elif a == "-print":
            continue
        elif a.startswith("-"):
            raise ValueError(f"Unexpected argument: {a}")
        else:
            paths.append(a)

    def matches(path: str) -> bool:
        if name is None:
            return True
        base = posixpath.basename(path.rstrip("/")) or "/"
        return fnmatch.fnmatchcase(base.lower(), name.lower()) if fold else \
            fnmatch.fnmatchcase(base, name)

    def one(p: str) -> None:
        top = sh.path(p)
        found = [top] if sh.fs.stat(top)["type"] == "file" else \
            [top] + sh.fs.ls(top, detail=False, recursive=True)
        for path in found:
            if matches(path):
                sh.out(sh.shown(path, p))
    sh.each(paths or [""], one)

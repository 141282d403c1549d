"""`yard dfs -VERB [flags] args`: Hadoop's FsShell, verb for verb.

Relative paths are under /user/<user>, as in Hadoop. Each failing argument
prints `-verb: `path': reason` on stderr; the exit code is 1 if any failed.
"""

from __future__ import annotations

import datetime
import posixpath
import sys
import time
from collections.abc import Callable

import click

from stackyard.cli.common import EXPECTED, connect_fs, fail, human
from stackyard.cli.progress import transfer_progress
from stackyard.dfs.permissions import rwx
from stackyard.dfs.trash import move_to_trash

VERBS: dict[str, tuple[Callable, str, str]] = {}


def verb(*names: str, flags: str = "", usage: str = ""):
    def register(fn):
        for n in names:
            VERBS[n] = (fn, flags, usage)
        return fn
    return register


class Shell:
    def __init__(self, fs, verb_name: str):
        self.fs, self.verb = fs, verb_name.lstrip("-")
        self.status = 0

    def path(self, p: str) -> str:
        if p.startswith("yard://"):
            return p
        home = f"/user/{self.fs.user}"
        return p if p.startswith("/") else posixpath.join(home, p) if p else home

    def each(self, items: list[str], fn: Callable[[str], None], dfs: bool = True) -> None:
        """FN on each item; a DFS item with *, ? or [...] on each path it matches."""
        for item in items:
            try:
                targets = self.expand(item) if dfs else [item]
            except EXPECTED as exc:
                self.status = fail(self.verb, exc)
                continue
            for target in targets:
                try:
                    fn(target)
                except EXPECTED as exc:
                    self.status = fail(self.verb, self.as_named(exc, target))

    def as_named(self, exc: BaseException, named: str) -> BaseException:
        """EXC naming the path as the user wrote it (Hadoop's shell keeps a
        relative path relative in its errors)."""
        if isinstance(exc, OSError) and exc.filename == self.path(named) != named:
            exc.filename = named
        return exc

    def shown(self, path: str, named: str) -> str:
        """PATH (absolute, under NAMED's absolute form) as the user named it."""
        base = self.path(named)
        if named.startswith("/") or named.startswith("yard://") or base == named:
            return path
        if path == base:
            return named or path
        if path.startswith(base.rstrip("/") + "/"):
            rest = path[len(base.rstrip("/")) + 1:]
            return f"{named.rstrip('/')}/{rest}" if named else rest
        return path

    def expand(self, item: str) -> list[str]:
        if not any(c in item for c in "*?["):
            return [item]
        matches = self.fs.glob(self.path(item))
        if not matches:
            raise FileNotFoundError(2, "No such file or directory", item)
        if item.startswith(("/", "yard://")):
            return matches
        home = self.path("") + "/"       # a relative pattern's matches stay relative
        return [m[len(home):] if m.startswith(home) else m for m in matches]

    def out(self, text: str = "") -> None:
        click.echo(text)


def _time(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _ls_line(e: dict, h: bool, shown: str | None = None) -> str:
    repl = "-" if e["type"] == "directory" else str(e["replication"])
    size = human(e["length"]) if h else str(e["length"])
    return (f"{e['permission']}   {repl:>1} {_safe(e['owner'])} {_safe(e['group'])} "
            f"{size:>10} {_time(e['mtime'])} {_safe(shown or e['path'])}")


def _safe(text: str) -> str:
    """TEXT with control characters escaped: a name must never drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@verb("-ls", flags="R h d", usage="-ls [-R] [-h] [-d] [path ...]")
def ls(sh: Shell, opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        st = sh.fs.stat(sh.path(p))
        if st["type"] == "file" or "d" in opts:
            sh.out(_ls_line(st, "h" in opts, sh.shown(st["path"], p)))
            return
        entries = sh.fs.ls(sh.path(p), recursive="R" in opts)
        if "R" not in opts:
            sh.out(f"Found {len(entries)} items")
        for e in entries:
            sh.out(_ls_line(e, "h" in opts, sh.shown(e["path"], p)))
    # no argument: the home directory, its entries named relative to it (as Hadoop)
    sh.each(args or [""], one)


@verb("-mkdir", flags="p", usage="-mkdir [-p] path ...")
def mkdir(sh: Shell, opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        try:
            sh.fs.mkdir(sh.path(p), parents="p" in opts)
        except FileNotFoundError:
            # a missing parent: Hadoop names the directory asked for
            raise FileNotFoundError(2, "No such file or directory", p) from None
    sh.each(args, one, dfs=False)


@verb("-put", "-copyFromLocal", flags="f", usage="-put [-f] localsrc ... dst")
def put(sh: Shell, opts: set, args: list[str]) -> None:
    *srcs, dst = _need(args, 2)
    dst = sh.path(dst)
    if len(srcs) > 1 and not sh.fs.isdir(dst):
        raise NotADirectoryError(20, "Is not a directory", dst)

    def one(src: str) -> None:
        if src == "-":
            with sh.fs.open(dst, "wb" if "f" in opts else "xb") as f:
                while piece := sys.stdin.buffer.read(1 << 20):
                    f.write(piece)
            return
        import os
        with transfer_progress(f"put {os.path.basename(src)}", os.path.getsize(src)) as tick:
            sh.fs.put(src, dst, overwrite="f" in opts, progress=tick)
    sh.each(srcs, one, dfs=False)


@verb("-get", "-copyToLocal", flags="f", usage="-get [-f] src ... localdst")
def get(sh: Shell, opts: set, args: list[str]) -> None:
    *srcs, dst = _need(args, 2)

    def one(src: str) -> None:
        import os
        st = sh.fs.stat(sh.path(src))
        target = os.path.join(dst, st["name"]) if os.path.isdir(dst) else dst
        if "f" in opts and os.path.isfile(target):
            os.unlink(target)
        with transfer_progress(f"get {st['name']}", st["length"]) as tick:
            sh.fs.get(sh.path(src), target, progress=tick)
    sh.each(srcs, one)


@verb("-cat", usage="-cat path ...")
def cat(sh: Shell, _opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        with sh.fs.open(sh.path(p), "rb") as f:
            while piece := f.read(1 << 20):
                sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
    sh.each(_need(args, 1), one)


@verb("-tail", flags="f", usage="-tail [-f] path")
def tail(sh: Shell, opts: set, args: list[str]) -> None:
    (p,) = _need(args, 1, 1)
    path = sh.path(p)
    size = sh.fs.stat(path)["length"]
    pos = max(0, size - 1024)
    while True:
        if size > pos:
            with sh.fs.open(path, "rb") as f:
                f.seek(pos)
                data = f.read(size - pos)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            pos += len(data)
        if "f" not in opts:
            return
        time.sleep(1.0)
        size = sh.fs.stat(path)["length"]


@verb("-rm", flags="r R f skipTrash", usage="-rm [-f] [-r|-R] [-skipTrash] path ...")
def rm(sh: Shell, opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        path = sh.path(p)
        try:
            st = sh.fs.stat(path)
        except FileNotFoundError:
            if "f" in opts:
                return
            raise
        if st["type"] == "directory" and not opts & {"r", "R"}:
            raise IsADirectoryError(21, "Is a directory", path)
        moved = None if "skipTrash" in opts else move_to_trash(sh.fs, path)
        if moved:
            where = f"yard://{sh.fs.master}"
            sh.out(f"Moved: '{where}{path}' to trash at: {where}{moved}")
            return
        sh.fs.rm(path, recursive=bool(opts & {"r", "R"}))
        sh.out(f"Deleted {path}")
    sh.each(_need(args, 1), one)


@verb("-expunge", flags="immediate", usage="-expunge [-immediate]")
def expunge(sh: Shell, opts: set, args: list[str]) -> None:
    _need(args, 0, 0)
    sh.fs.call("expunge", immediate="immediate" in opts)


@verb("-rmdir", usage="-rmdir path ...")
def rmdir(sh: Shell, _opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        if not sh.fs.isdir(sh.path(p)):
            raise NotADirectoryError(20, "Is not a directory", sh.path(p))
        sh.fs.rm(sh.path(p), recursive=False)
    sh.each(_need(args, 1), one)


@verb("-mv", usage="-mv src ... dst")
def mv(sh: Shell, _opts: set, args: list[str]) -> None:
    *srcs, dst = _need(args, 2)
    if len(srcs) > 1 and not sh.fs.isdir(sh.path(dst)):
        raise NotADirectoryError(20, "Is not a directory", sh.path(dst))
    sh.each(srcs, lambda s: sh.fs.mv(sh.path(s), sh.path(dst)))


@verb("-cp", flags="f", usage="-cp [-f] src ... dst")
def cp(sh: Shell, opts: set, args: list[str]) -> None:
    *srcs, dst = _need(args, 2)
    sh.each(srcs, lambda s: sh.fs.cp(sh.path(s), sh.path(dst), overwrite="f" in opts))


@verb("-du", flags="s h", usage="-du [-s] [-h] path ...")
def du(sh: Shell, opts: set, args: list[str]) -> None:
    fmt = human if "h" in opts else str

    def one(p: str) -> None:
        path = sh.path(p)
        if "s" in opts or sh.fs.stat(path)["type"] == "file":
            d = sh.fs.du(path)
            sh.out(f"{fmt(d['length']):<10} {fmt(d['space']):<10} {path}")
            return
        for e in sh.fs.ls(path):
            d = sh.fs.du(e["path"])
            sh.out(f"{fmt(d['length']):<10} {fmt(d['space']):<10} {e['path']}")
    sh.each(args or [f"/user/{sh.fs.user}"], one)


@verb("-stat", usage="-stat [format] path ...")
def stat(sh: Shell, _opts: set, args: list[str]) -> None:
    fmt = "%y"
    if len(args) > 1 and "%" in args[0]:
        fmt, args = args[0], args[1:]

    def one(p: str) -> None:
        st = sh.fs.stat(sh.path(p))
        utc = datetime.datetime.fromtimestamp(st["mtime"], datetime.UTC)
        fields = {"b": str(st["length"]), "F": "directory" if st["type"] == "directory"
                  else ("regular file" if st["length"] else "regular empty file"),
                  "g": st["group"], "u": st["owner"], "n": st["name"] or "/",
                  "o": str(st["chunk_size"]), "r": str(st["replication"]),
                  "y": utc.strftime("%Y-%m-%d %H:%M:%S"), "Y": str(int(st["mtime"] * 1000)),
                  "a": f"{st['mode']:o}", "A": rwx(st["mode"]), "%": "%"}
        out, i = "", 0
        while i < len(fmt):
            if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in fields:
                out += fields[fmt[i + 1]]
                i += 2
            else:
                out += fmt[i]
                i += 1
        sh.out(out)
    sh.each(_need(args, 1), one)


@verb("-setrep", flags="w R", usage="-setrep [-w] replication path ...")
def setrep(sh: Shell, opts: set, args: list[str]) -> None:
    n, *paths = _need(args, 2)
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"Illegal replication, a positive integer expected: {n}")

    def one(p: str) -> None:
        sh.fs.setrep(sh.path(p), int(n))
        sh.out(f"Replication {n} set: {sh.path(p)}")
        if "w" in opts:
            sh.out(f"Waiting for {sh.path(p)} ...", )
            sh.fs.wait_replication(sh.path(p))
            sh.out("done")
    sh.each(paths, one)


@verb("-truncate", flags="w", usage="-truncate [-w] length path ...")
def truncate(sh: Shell, opts: set, args: list[str]) -> None:
    n, *paths = _need(args, 2)
    if not n.isdigit():
        raise ValueError(f"Illegal length, a non-negative integer expected: {n}")

    def one(p: str) -> None:
        st = sh.fs.stat(sh.path(p))
        if st["type"] == "directory":
            raise IsADirectoryError(21, "Is a directory", p)
        if int(n) > st["length"]:
            raise ValueError(f"Cannot truncate to a larger file size. Current size: "
                             f"{st['length']}, truncate size: {n}.")
        sh.fs.truncate(sh.path(p), int(n))     # never waits: no block recovery here
        sh.out(f"Truncated {p} to length: {n}")
    sh.each(paths, one)


@verb("-chmod", flags="R", usage="-chmod [-R] MODE path ...")
def chmod(sh: Shell, opts: set, args: list[str]) -> None:
    mode, *paths = _need(args, 2)

    def one(p: str) -> None:
        for path in _tree(sh, sh.path(p), "R" in opts):
            sh.fs.chmod(path, _mode(mode, sh.fs.stat(path)["mode"]))
    sh.each(paths, one)


@verb("-chown", flags="R", usage="-chown [-R] OWNER[:GROUP] path ...")
def chown(sh: Shell, opts: set, args: list[str]) -> None:
    spec, *paths = _need(args, 2)
    owner, _, group = spec.partition(":")

    def one(p: str) -> None:
        for path in _tree(sh, sh.path(p), "R" in opts):
            sh.fs.chown(path, owner or None, group or None)
    sh.each(paths, one)


@verb("-chgrp", flags="R", usage="-chgrp [-R] GROUP path ...")
def chgrp(sh: Shell, opts: set, args: list[str]) -> None:
    group, *paths = _need(args, 2)
    sh.each(paths, lambda p: [sh.fs.chown(x, None, group)
                              for x in _tree(sh, sh.path(p), "R" in opts)])


@verb("-appendToFile", usage="-appendToFile localsrc ... dst")
def append_to_file(sh: Shell, _opts: set, args: list[str]) -> None:
    *srcs, dst = _need(args, 2)
    dst = sh.path(dst)
    mode = "ab" if sh.fs.exists(dst) else "xb"
    with sh.fs.open(dst, mode) as out:
        for src in srcs:
            f = sys.stdin.buffer if src == "-" else open(src, "rb")
            try:
                while piece := f.read(1 << 20):
                    out.write(piece)
            finally:
                if f is not sys.stdin.buffer:
                    f.close()


@verb("-checksum", usage="-checksum path ...")
def checksum(sh: Shell, _opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        algo, digest = sh.fs.checksum(sh.path(p))
        sh.out(f"{sh.path(p)}\t{algo}\t{digest}")
    sh.each(_need(args, 1), one)


@verb("-touchz", usage="-touchz path ...")
def touchz(sh: Shell, _opts: set, args: list[str]) -> None:
    def one(p: str) -> None:
        path = sh.path(p)
        if sh.fs.exists(path) and sh.fs.stat(path)["length"]:
            raise FileExistsError(17, "Not a zero-length file", path)
        sh.fs.open(path, "wb").close()
    sh.each(_need(args, 1), one, dfs=False)


@verb("-test", flags="e d f s z", usage="-test -[defsz] path")
def test(sh: Shell, opts: set, args: list[str]) -> None:
    (p,) = _need(args, 1, 1)
    if len(opts) != 1:
        raise ValueError("exactly one of -e -d -f -s -z")
    try:
        st = sh.fs.stat(sh.path(p))
    except FileNotFoundError:
        sh.status = 1
        return
    ok = {"e": True, "d": st["type"] == "directory", "f": st["type"] == "file",
          "s": st["length"] > 0, "z": st["length"] == 0}[next(iter(opts))]
    sh.status = 0 if ok else 1


@verb("-text", usage="-text path ...")
def text(sh: Shell, _opts: set, args: list[str]) -> None:
    """Files as text: gzip and zstd decompressed, our pickle record files
    (PickleOutput, saveAsPickleFile) as `key<TAB>value` lines, as Hadoop's
    -text prints a SequenceFile."""
    from stackyard.cli.dfs_text import text_of

    def one(p: str) -> None:
        with sh.fs.open(sh.path(p), "rb") as f:
            for piece in text_of(f):
                sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
    sh.each(_need(args, 1), one)


@verb("-getmerge", flags="nl", usage="-getmerge [-nl] src localdst")
def getmerge(sh: Shell, opts: set, args: list[str]) -> None:
    src, dst = _need(args, 2, 2)
    path = sh.path(src)
    files = [path] if sh.fs.stat(path)["type"] == "file" else sorted(
        e["path"] for e in sh.fs.ls(path) if e["type"] == "file")
    with open(dst, "wb") as out:
        for f in files:
            with sh.fs.open(f, "rb") as inp:
                while piece := inp.read(1 << 20):
                    out.write(piece)
            if "nl" in opts:
                out.write(b"\n")


@verb("-moveFromLocal", usage="-moveFromLocal localsrc ... dst")
def move_from_local(sh: Shell, _opts: set, args: list[str]) -> None:
    import os
    *srcs, dst = _need(args, 2)

    def one(src: str) -> None:
        sh.fs.put(src, sh.path(dst))
        os.unlink(src)               # only once the copy is whole in the DFS
    sh.each(srcs, one, dfs=False)


@verb("-usage", usage="-usage [cmd ...]")
def usage_(sh: Shell, _opts: set, args: list[str]) -> None:
    for name in args or sorted(n for n, v in VERBS.items() if v[2].startswith(n)):
        name = name if name.startswith("-") else f"-{name}"
        if name not in VERBS:
            raise ValueError(f"{name}: Unknown command")
        sh.out(f"Usage: yard dfs [{VERBS[name][2]}]")


@verb("-help", usage="-help")
def help_(sh: Shell, _opts: set, _args: list[str]) -> None:
    sh.out("Usage: yard dfs [--home DIR] -VERB [flags] args")
    for name, (_fn, _flags, usage) in sorted(VERBS.items()):
        if usage.startswith(name):
            sh.out(f"    [{usage}]")


def _need(args: list[str], least: int, most: int | None = None) -> list[str]:
    if len(args) < least or (most is not None and len(args) > most):
        raise ValueError(f"wrong number of arguments ({len(args)})")
    return args


def _tree(sh: Shell, path: str, recursive: bool) -> list[str]:
    paths = [path]
    if recursive and sh.fs.isdir(path):
        paths += sh.fs.ls(path, detail=False, recursive=True)
    return paths


def _mode(spec: str, current: int) -> int:
    """Octal (755) or symbolic (u+x, go-w, a=r) mode."""
    if spec.isdigit():
        if any(c not in "01234567" for c in spec):
            raise ValueError(f"invalid mode: {spec}")
        return int(spec, 8)
    mode = current
    for clause in spec.split(","):
        who, op, perms = "", "", ""
        for i, ch in enumerate(clause):
            if ch in "+-=":
                who, op, perms = clause[:i], ch, clause[i + 1:]
                break
        if not op or set(who) - set("ugoa") or set(perms) - set("rwxX"):
            raise ValueError(f"invalid mode: {spec}")
        bits = sum({"r": 4, "w": 2, "x": 1, "X": 1}[p] for p in set(perms))
        shifts = [s for w, s in (("u", 6), ("g", 3), ("o", 0)) if not who or "a" in who or w in who]
        for s in shifts:
            if op == "+":
                mode |= bits << s
            elif op == "-":
                mode &= ~(bits << s)
            else:
                mode = (mode & ~(7 << s)) | (bits << s)
    return mode


def run(argv: list[str], home: str | None, only: tuple[str, ...] = ()) -> int:
    """`yard dfs ARGV`; ONLY: the verbs a narrower command (dfsadmin) takes."""
    import stackyard.cli.dfs_admin  # noqa: F401 - registers the quota verbs
    import stackyard.cli.dfs_summary  # noqa: F401 - registers -count, -df, -find
    if argv and argv[0] == "-usage":
        try:
            usage_(Shell(None, "usage"), set(), argv[1:])
            return 0
        except ValueError as exc:
            return fail("usage", exc)
    if not argv or argv[0] in ("-help", "--help", "-h"):
        help_(Shell(None, "help"), set(), [])
        return 0 if argv else 1
    name, rest = argv[0], argv[1:]
    if name not in VERBS or (only and name not in only):
        click.echo(f"{name}: Unknown command (yard dfs -help lists them)", err=True)
        return 1
    fn, flags, usage = VERBS[name]
    allowed = set(flags.split())
    opts: set[str] = set()
    while rest and rest[0].startswith("-") and rest[0] != "-":
        flag = rest[0][1:]
        if flag not in allowed:
            click.echo(f"{name}: Illegal option {rest[0]}\nUsage: yard dfs [{usage}]", err=True)
            return 1
        opts.add(flag)
        rest = rest[1:]
    try:
        sh = Shell(connect_fs(home), name)
        fn(sh, opts, rest)
    except EXPECTED as exc:
        if isinstance(exc, ValueError) and "arguments" in str(exc):
            click.echo(f"{name}: {exc}\nUsage: yard dfs [{usage}]", err=True)
            return 1
        return fail(name.lstrip("-"), exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return sh.status

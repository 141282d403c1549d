"""HBase's shell commands on the table store: `yard hbase`. A line is a
command and its arguments in the shell's (Ruby) syntax, e.g.

    create 't', 'cf1', {NAME => 'cf2', VERSIONS => 3}, {SPLITS => ['g', 'p']}
    scan 't', {STARTROW => 'a', LIMIT => 10, FILTER => "PrefixFilter ('a')"}

and the output is laid out as HBase's shell lays it out."""

from __future__ import annotations

import ast
import re
import time

from stackyard.table.model import LATEST, now_ms

_TOKEN = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|=>|[A-Za-z_]\w*|\s+|.)""", re.S)
_WORDS = {"true": "True", "false": "False", "nil": "None"}


class ShellError(ValueError):
    pass


def parse(line: str) -> tuple[str, list]:
    """'put 't', 'r', 'cf:a', 'v'' -> ("put", ["t", "r", "cf:a", "v"])."""
    line = line.strip()
    name, _, rest = line.partition(" ")
    if not re.fullmatch(r"[a-z_]+", name):
        raise ShellError(f"not a command: {name!r} (try `help`)")
    out = []
    for tok in _TOKEN.findall(rest):
        if tok == "=>":
            out.append(":")
        elif re.fullmatch(r"[A-Za-z_]\w*", tok):
            out.append(_WORDS.get(tok, repr(tok)))
        else:
            out.append(tok)
    text = "".join(out).strip()
    if ":" in text and "{" not in text and "=>" in rest:
        first, sep, tail = text.partition(",")
        text = f"{first}, {{{tail}}}" if sep else f"{{{first}}}"
    try:
        args = ast.literal_eval(f"[{text}]") if text else []
    except (ValueError, SyntaxError) as exc:
        raise ShellError(f"could not read the arguments of {name}: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    return name, args


def show(b: bytes) -> str:
    return "".join(chr(c) if 32 <= c < 127 and c != 92 else f"\\x{c:02X}" for c in b)


def _b(x) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)


class Shell:
    def __init__(self, client, echo):
        self.tc, self.echo = client, echo

    def run(self, line: str) -> None:
        if not line.strip() or line.strip().startswith("#"):
            return
        name, args = parse(line)
        fn = getattr(self, f"cmd_{name}", None)
        if fn is None:
            raise ShellError(f"unknown command {name!r} (try `help`)")
        start = time.monotonic()
        fn(*args)
        self.echo(f"Took {time.monotonic() - start:.4f} seconds")

    def _table(self, name):
        if not isinstance(name, str):
            raise ShellError("the first argument is a table name, in quotes")
        return self.tc.table(name)

    # -- DDL --------------------------------------------------------------------------

    def cmd_create(self, table, *specs):
        families, splits, merge = {}, [], True
        for s in specs:
            if isinstance(s, str):
                families[s] = {}
            elif isinstance(s, dict) and ("SPLITS" in s or "NORMALIZATION_ENABLED" in s):
                splits = [_b(x) for x in s.get("SPLITS", splits)]
                merge = str(s.get("NORMALIZATION_ENABLED", merge)).lower() == "true"
            elif isinstance(s, dict) and "NAME" in s:
                families[s["NAME"]] = _family_opts(s)
            else:
                raise ShellError(f"create: cannot read {s!r} (a family name, "
                                 "{NAME => ...} or {SPLITS => [...]})")
        if not families:
            raise ShellError("create: name at least one column family")
        self.tc.create_table(table, families, splits=splits, merge=merge)
        self.echo(f"Created table {table}")

    def cmd_list(self, *_):
        names = self.tc.tables()
        self.echo("TABLE")
        for n in names:
            self.echo(n)
        self.echo(f"{len(names)} row(s)")

    def cmd_exists(self, table):
        there = table in self.tc.tables()
        self.echo(f"Table {table} {'does' if there else 'does not'} exist")

    def cmd_describe(self, table):
        s = self.tc.describe(table)
        self.echo(f"Table {table} is {'ENABLED' if s.enabled else 'DISABLED'}")
        self.echo("COLUMN FAMILIES DESCRIPTION")
        for f in s.families.values():
            ttl = "FOREVER" if not f.ttl else f"{f.ttl} SECONDS"
            self.echo(f"{{NAME => '{f.name}', VERSIONS => '{f.max_versions}', TTL => '{ttl}', "
                      f"COMPRESSION => '{f.compression.upper()}', BLOOMFILTER => "
                      f"'{'ROW' if f.bloom else 'NONE'}', IN_MEMORY => '{str(f.in_memory).lower()}'}}")
        self.echo(f"{len(s.families)} row(s)")

    cmd_desc = cmd_describe

    def cmd_disable(self, table):
        self.tc.disable_table(table)

    def cmd_enable(self, table):
        self.tc.enable_table(table)

    def cmd_is_enabled(self, table):
        self.echo(str(self.tc.is_enabled(table)).lower())

    def cmd_drop(self, table):
        self.tc.delete_table(table)

    def cmd_truncate(self, table):
        self.echo("Truncating 'table' table (it may take a while):".replace("table", table, 1))
        self.tc.admin("truncate", table=table)

    def cmd_alter(self, table, *specs):
        fams, drop = [], []
        for s in specs:
            if not isinstance(s, dict):
                raise ShellError(f"alter: cannot read {s!r}")
            if s.get("METHOD") == "delete" or "delete" in s:
                drop.append(s.get("NAME") or s.get("delete"))
            elif "NAME" in s:
                fams.append({"name": s["NAME"], **_family_opts(s)})
        self.tc.admin("alter", table=table, families=fams, drop=drop)
        self.echo("Updating all regions with the new schema...\nDone.")

    def cmd_flush(self, table):
        self.tc.admin("flush", table=table)

    def cmd_compact(self, table):
        self.tc.admin("compact", table=table, major=False)

    def cmd_major_compact(self, table):
        self.tc.admin("compact", table=table, major=True)

    def cmd_split(self, table, row=None):
        self.tc.admin("split", table=table, row=_b(row) if row is not None else None)

    def cmd_merge_region(self, left, right, *_force):
        self.tc.admin("merge", left=left, right=right)

    def cmd_grant(self, user, rights, table, family=None):
        names = {"R": "read", "W": "write", "A": "admin", "C": "admin", "X": "read"}
        self.tc.admin("grant", table=table, to=user, family=family,
                      rights=sorted({names[c] for c in rights.upper() if c in names}))

    def cmd_revoke(self, user, table, family=None):
        self.tc.admin("revoke", table=table, to=user, family=family)

    def cmd_status(self, *_):
        st = self.tc.admin("status")
        servers = st["servers"]
        tablets = sum(len(s.get("tablets", [])) for s in servers.values())
        self.echo(f"1 active master, {len(servers)} servers, 0 dead, "
                  f"{tablets / max(1, len(servers)):.4f} average load")

    # -- data ---------------------------------------------------------------------------

    def cmd_put(self, table, row, column, value, ts=None):
        self._table(table).put(_b(row), {_b(column): _b(value)}, timestamp=ts)

    def cmd_get(self, table, row, *opts):
        columns, versions, lo, hi, filt = None, 1, 0, LATEST, None
        for o in opts:
            if isinstance(o, str):
                columns = [o]
            elif isinstance(o, list):
                columns = o
            elif isinstance(o, dict):
                c = o.get("COLUMN", o.get("COLUMNS"))
                columns = [c] if isinstance(c, str) else c
                versions = int(o.get("VERSIONS", 1))
                if "TIMERANGE" in o:
                    lo, hi = o["TIMERANGE"]
                if "TIMESTAMP" in o:
                    lo, hi = o["TIMESTAMP"], o["TIMESTAMP"] + 1
                filt = o.get("FILTER")
        cells = self._table(table).cells(_b(row), [_b(c) for c in columns] if columns else None,
                                         min_ts=lo, max_ts=hi, versions=versions, filter=filt)
        self.echo(f"{'COLUMN':<30}CELL")
        for col, value, ts in cells:
            self.echo(f" {show(col):<29}timestamp={ts}, value={show(value)}")
        self.echo(f"{len(cells)} row(s)")

    def cmd_scan(self, table, opts=None):
        opts = opts or {}
        if not isinstance(opts, dict):
            raise ShellError("scan: options go in {...}")
        cols = opts.get("COLUMNS", opts.get("COLUMN"))
        cols = [cols] if isinstance(cols, str) else cols
        n = 0
        self.echo(f"{'ROW':<30}COLUMN+CELL")
        lo, hi = opts.get("TIMERANGE", (0, LATEST))
        for row, cells in self._table(table).scan_cells(
                start=opts.get("STARTROW"), stop=opts.get("STOPROW", opts.get("ENDROW")),
                prefix=opts.get("ROWPREFIXFILTER"), columns=[_b(c) for c in cols] if cols else None,
                filter=opts.get("FILTER"), limit=opts.get("LIMIT"),
                reverse=bool(opts.get("REVERSED")), versions=int(opts.get("VERSIONS", 1)),
                min_ts=lo, max_ts=hi):
            n += 1
            for f, q, ts, v in cells:
                self.echo(f" {show(row):<29}column={f}:{show(bytes(q))}, timestamp={ts}, "
                          f"value={show(bytes(v))}")
        self.echo(f"{n} row(s)")

    def cmd_count(self, table, opts=None):
        n = sum(1 for _ in self._table(table).scan_cells(filter="FirstKeyOnlyFilter () AND "
                                                                "KeyOnlyFilter ()"))
        self.echo(f"{n} row(s)")
        self.echo(str(n))

    def cmd_delete(self, table, row, column, ts=None):
        t = self._table(table)
        if ts is None:
            t.delete(_b(row), [_b(column)], timestamp=now_ms())
        else:
            t.delete(_b(row), [_b(column)], timestamp=ts)

    def cmd_deleteall(self, table, row, column=None, ts=None):
        t = self._table(table)
        t.delete(_b(row), [_b(column)] if column else None, timestamp=ts)

    def cmd_incr(self, table, row, column, n=1):
        value = self._table(table).increment(_b(row), _b(column), int(n))
        self.echo(f"COUNTER VALUE = {value}")

    def cmd_get_counter(self, table, row, column):
        self.echo(f"COUNTER VALUE = {self._table(table).counter(_b(row), _b(column))}")

    def cmd_help(self, *_):
        names = sorted(n[4:] for n in dir(self) if n.startswith("cmd_"))
        self.echo("Commands: " + ", ".join(names))


def _family_opts(s: dict) -> dict:
    out = {}
    if "VERSIONS" in s:
        out["max_versions"] = int(s["VERSIONS"])
    if "TTL" in s:
        ttl = s["TTL"]
        out["ttl"] = 0 if str(ttl).upper() == "FOREVER" else int(ttl)
    if "COMPRESSION" in s:
        out["compression"] = str(s["COMPRESSION"]).lower()
    if "BLOOMFILTER" in s:
        out["bloom"] = str(s["BLOOMFILTER"]).upper() != "NONE"
    if "IN_MEMORY" in s:
        out["in_memory"] = str(s["IN_MEMORY"]).lower() == "true"
    unknown = set(s) - {"NAME", "VERSIONS", "TTL", "COMPRESSION", "BLOOMFILTER", "IN_MEMORY",
                        "METHOD", "BLOCKCACHE"}
    if unknown:
        raise ShellError(f"unknown family attribute(s): {', '.join(sorted(unknown))}")
    return out

"""A table's data as the planner sees it (on the driver): its schema, the
partitions that survive pruning (decided from the metastore before any file
is listed), its files, and splits of them (Parquet row groups whose
statistics may match the pushed predicates; line-aligned pieces of text),
with the chunkservers that hold each one and size estimates."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp

from stackyard.sql.errors import AnalysisError
from stackyard.sql.fragments import run_sql
from stackyard.sql.readers import FileSplit, ScanSpec
from stackyard.sql.types import schema_of

SPLIT_BYTES = 128 << 20           # row groups are grouped into splits up to this many bytes
MIN_SPLIT = 1 << 20
TEXT_FORMATS = ("textfile", "csv", "jsonfile")
PATH_FORMATS = {"parquet": "parquet", "orc": "orc", "csv": "csv", "json": "jsonfile",
                "text": "textfile"}


@dataclass
class ScanPlan:
    splits: list[FileSplit]
    spec: ScanSpec
    bytes: int                    # bytes of the columns read, before filters
    rows: int
    partitions: tuple[int, int] = (0, 0)   # (kept, all), for EXPLAIN
    row_groups: tuple[int, int] = (0, 0)
    files: int = 0
    notes: list[str] = field(default_factory=list)
    ranges: dict[str, tuple] = field(default_factory=dict)   # column -> (min, max) seen

    def distinct(self, column: str) -> float:
        """An upper bound on COLUMN's distinct values: the rows, or for an
        integer or date column the width of its range (the join orderer's
        statistic: a foreign key into a 25-row table has at most 25)."""
        lo, hi = self.ranges.get(column, (None, None))
        width = None
        try:
            if isinstance(lo, int) and isinstance(hi, int):
                width = hi - lo + 1
            elif hasattr(lo, "toordinal") and hasattr(hi, "toordinal"):
                width = hi.toordinal() - lo.toordinal() + 1
        except TypeError:
            width = None
        rows = max(1, self.rows)
        return float(min(rows, width)) if width else float(rows)


def table_schema(fs, table: dict) -> tuple[pa.Schema, pa.Schema]:
    """(file columns, partition columns) of a metastore table."""
    parts = [c["name"] for c in table["partition_cols"]]
    cols = [c for c in table["columns"] if c["name"] not in parts]
    return schema_of(cols), schema_of(table["partition_cols"])


def path_table(fs, fmt: str, path: str) -> dict:
    """A table over a directory of files (``parquet.`/data/x` ``), its schema
    read from the first file (text formats: one string column `value`)."""
    from stackyard.sql.types import hive_type
    fmt = PATH_FORMATS.get(fmt.lower())
    if fmt is None:
        raise AnalysisError(f"unsupported file format {fmt!r} "
                            f"(one of {', '.join(PATH_FORMATS)})")
    files = data_files(fs, path)
    if fmt in ("parquet", "orc") and files:
        schema = _file_schema(fs, fmt, files[0]["path"])
        cols = [{"name": f.name, "type": hive_type(f.type)} for f in schema]
    elif fmt == "csv":
        cols = [{"name": "value", "type": "string"}]
    else:
        cols = [{"name": "value", "type": "string"}]
    return {"db": fmt, "name": path, "columns": cols, "partition_cols": [], "format": fmt,
            "location": path, "external": True, "delimiter": "\n" if fmt == "textfile" else ",",
            "properties": {}, "view": None, "stats": {}}


def infer_columns(fs, fmt: str, location: str) -> list[dict]:
    from stackyard.sql.types import hive_type
    files = data_files(fs, location)
    if not files or fmt not in ("parquet", "orc"):
        raise AnalysisError(f"cannot infer the columns of a {fmt} table at {location!r}: "
                            "name them, or point LOCATION at Parquet files")
    return [{"name": f.name, "type": hive_type(f.type)}
            for f in _file_schema(fs, fmt, files[0]["path"])]


def _file_schema(fs, fmt: str, path: str) -> pa.Schema:
    with fs.open(path, "rb") as f:
        if fmt == "orc":
            import pyarrow.orc as orc
            return orc.ORCFile(f).schema
        import pyarrow.parquet as pq
        return pq.ParquetFile(f).schema_arrow


def data_files(fs, path: str) -> list[dict]:
    """The data files under PATH, recursively, skipping _ and . names (Hive's
    hidden files: _SUCCESS, _temporary, .staging)."""
    try:
        st = fs.stat(path)
    except FileNotFoundError:
        return []
    if st["type"] == "file":
        return [st]
    out, stack = [], [path]
    while stack:
        d = stack.pop()
        for e in fs.ls(d):
            if e["name"].startswith(("_", ".")):
                continue
            if e["type"] == "directory":
                stack.append(e["path"])
            elif e["length"]:
                out.append(e)
    return sorted(out, key=lambda e: e["path"])


def plan_scan(fs, table: dict, partitions: list[dict] | None, columns: list[str],
              conjuncts: list[exp.Expression], parallelism: int = 2) -> ScanPlan:
    """The splits of TABLE to read for COLUMNS, given CONJUNCTS over its own
    column names (all must hold; any may be used to prune)."""
    file_schema, part_schema = table_schema(fs, table)
    fmt = table["format"]
    spec = ScanSpec(fmt, file_schema, tuple(columns), part_schema,
                    table.get("delimiter") or "\x01",
                    str(table["properties"].get("header", "false")).lower() == "true"
                    or (fmt == "csv" and table["properties"].get("skip.header.line.count") == "1"),
                    "\\N" if fmt == "textfile" else table["properties"].get("null.value", ""))
    plan = ScanPlan([], spec, 0, 0)
    if part_schema.names:
        every = partitions or []
        kept = prune_partitions(every, part_schema, conjuncts)
        plan.partitions = (len(kept), len(every))
        places = [(p["location"], tuple((f.name, p["values"].get(f.name)) for f in part_schema))
                  for p in kept]
    else:
        places = [(table["location"], ())]
    fraction = _column_fraction(file_schema, columns)
    stats = [_simple_predicate(c) for c in conjuncts]
    stats = [s for s in stats if s is not None and s[0] in file_schema.names]
    groups_kept = groups_all = 0
    pieces, texts = [], []
    for location, values in places:
        for f in data_files(fs, location):
            plan.files += 1
            if fmt == "parquet":
                groups, total = _row_groups(fs, f, values, stats, plan.ranges)
                pieces += groups
                groups_kept += len(groups)
                groups_all += total
                plan.rows += sum(g[3] for g in groups)
                plan.bytes += int(sum(g[2] for g in groups) * fraction)
            else:
                texts.append((f, values))
                plan.bytes += int(f["length"] * fraction)
                plan.rows += f["length"] // 100
    plan.row_groups = (groups_kept, groups_all)
    goal = split_goal(sum(f["length"] for f, _ in texts), parallelism)
    for f, values in texts:
        plan.splits += _text_splits(fs, f, values, goal)
    if pieces:
        plan.splits = _group_splits(fs, pieces, split_goal(sum(p[2] for p in pieces),
                                                           parallelism))
    return plan


def split_goal(total: int, parallelism: int) -> int:
    """Bytes a split aims at: the data spread over twice the cluster's task
    slots, within [MIN_SPLIT, SPLIT_BYTES] (Spark's maxPartitionBytes and
    its spread over defaultParallelism)."""
    return max(MIN_SPLIT, min(SPLIT_BYTES, total // max(1, 2 * parallelism)))


def prune_partitions(parts: list[dict], schema: pa.Schema,
                     conjuncts: list[exp.Expression]) -> list[dict]:
    """The partitions whose values satisfy the conjuncts that name partition
    columns only (evaluated by DuckDB over a table of the values)."""
    names = set(schema.names)
    mine = [c for c in conjuncts if not c.find(exp.Subquery, exp.Select)
            and {col.name for col in c.find_all(exp.Column)} <= names
            and any(True for _ in c.find_all(exp.Column))]
    if not mine or not parts:
        return parts
    cols = {}
    for f in schema:
        raw = [p["values"].get(f.name) for p in parts]
        raw = [None if v == "__HIVE_DEFAULT_PARTITION__" else v for v in raw]
        cols[f.name] = pa.array(raw, pa.string()).cast(f.type)
    cols["__i"] = pa.array(range(len(parts)), pa.int64())
    where = " AND ".join(f"({c.sql(dialect='duckdb')})" for c in mine)
    keep = run_sql(f"SELECT __i FROM __parts WHERE {where}", {"__parts": pa.table(cols)})
    return [parts[i] for i in sorted(keep.column(0).to_pylist())]


def _column_fraction(schema: pa.Schema, columns: list[str]) -> float:
    if not schema.names:
        return 1.0
    return max(0.05, len([c for c in columns if c in schema.names]) / len(schema.names))


def _hosts(fs, path: str, offset: int) -> tuple[str, ...]:
    try:
        locs = fs.chunk_locations(path, offset, 1)
    except (FileNotFoundError, OSError):
        return ()
    return tuple(locs[0].hosts) if locs else ()


def _row_groups(fs, f: dict, values: tuple, stats: list, ranges: dict):
    """(path, group, bytes, rows, first offset, values) for each row group of
    file F whose statistics may match; and how many the file has."""
    import pyarrow.parquet as pq
    path = f["path"]
    try:
        with fs.open(path, "rb") as h:
            meta = pq.ParquetFile(h).metadata
    except Exception as e:
        raise AnalysisError(f"{path}: not a readable Parquet file ({e})") from None
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    out = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        if not _may_match(rg, names, stats):
            continue
        for i, name in enumerate(names):
            st = rg.column(i).statistics
            if st is not None and st.has_min_max:
                lo, hi = ranges.get(name, (st.min, st.max))
                try:
                    ranges[name] = (min(lo, st.min), max(hi, st.max))
                except TypeError:
                    pass
        offset = rg.column(0).file_offset if rg.num_columns else 0
        out.append((path, g, rg.total_byte_size, rg.num_rows, offset, values))
    return out, meta.num_row_groups


def _group_splits(fs, pieces: list, goal: int) -> list[FileSplit]:
    """Consecutive row groups of one file joined into splits of about GOAL bytes."""
    out, group, size = [], [], 0
    for piece in pieces + [None]:
        if group and (piece is None or piece[0] != group[0][0] or size >= goal):
            first = group[0]
            out.append(FileSplit(first[0], 0, size, tuple(p[1] for p in group),
                                 _hosts(fs, first[0], first[4]), first[5]))
            group, size = [], 0
        if piece is not None:
            group.append(piece)
            size += piece[2]
    return out


def _text_splits(fs, f: dict, values: tuple, goal: int) -> list[FileSplit]:
    path, length = f["path"], f["length"]
    if path.endswith((".gz", ".bz2", ".zst")):
        return [FileSplit(path, 0, length, None, _hosts(fs, path, 0), values)]
    try:
        chunks = fs.chunk_locations(path)
    except (FileNotFoundError, OSError):
        chunks = []
    # Spark's file scans size splits by bytes (maxPartitionBytes spread over
    # the slots), not by the DFS block; the hosts are those of the start
    block = goal
    out, offset = [], 0
    while offset < length:
        n = min(block, length - offset)
        if (length - offset - n) < block * 0.1:
            n = length - offset
        hosts = next((tuple(c.hosts) for c in chunks
                      if c.offset <= offset < c.offset + c.length), ())
        out.append(FileSplit(path, offset, n, None, hosts, values))
        offset += n
    return out


# -- row-group statistics --------------------------------------------------------------

_OPS = {exp.EQ: "=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _simple_predicate(c: exp.Expression):
    """(column, op, value) for COLUMN op CONSTANT (or BETWEEN), else None."""
    if isinstance(c, exp.Between) and isinstance(c.this, exp.Column):
        lo, hi = _constant(c.args["low"]), _constant(c.args["high"])
        if lo is not _NONE and hi is not _NONE:
            return (c.this.name, "between", (lo, hi))
        return None
    op = _OPS.get(type(c))
    if op is None:
        return None
    left, right = c.this, c.expression
    if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
        left, right, op = right, left, _FLIP[op]
    if not isinstance(left, exp.Column):
        return None
    value = _constant(right)
    return None if value is _NONE else (left.name, op, value)


_NONE = object()


def _constant(e: exp.Expression):
    if any(True for _ in e.find_all(exp.Column)):
        return _NONE
    try:
        t = run_sql(f"SELECT {e.sql(dialect='duckdb')} AS v", {})
        return t.column(0)[0].as_py()
    except Exception:
        return _NONE


def _may_match(rg, names: list[str], preds: list) -> bool:
    for col, op, value in preds:
        if col not in names:
            continue
        st = rg.column(names.index(col)).statistics
        if st is None or not st.has_min_max or value is None:
            continue
        lo, hi = st.min, st.max
        try:
            if op == "=" and (value < lo or value > hi):
                return False
            if op == "<" and not lo < value:
                return False
            if op == "<=" and not lo <= value:
                return False
            if op == ">" and not hi > value:
                return False
            if op == ">=" and not hi >= value:
                return False
            if op == "between" and (value[1] < lo or value[0] > hi):
                return False
        except TypeError:
            continue
    return True


def managed_location(db: dict, name: str) -> str:
    return posixpath.join(db["location"], name)

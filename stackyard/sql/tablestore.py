"""SQL over the table store: Hive's HBase storage handler.

    CREATE EXTERNAL TABLE events (id STRING, kind STRING, n INT)
    STORED BY 'org.apache.hadoop.hive.hbase.HBaseStorageHandler'
    WITH SERDEPROPERTIES ('hbase.columns.mapping' = ':key,cf:kind,cf:n')
    TBLPROPERTIES ('hbase.table.name' = 'events')

(or Spark's `USING hbase OPTIONS (...)`). Each column maps, in order, to
an entry of the mapping: `:key` is the row key, `family:qualifier` a cell.
Values are read as Hive's handler stores them by default, as UTF-8 text,
and cast to the column's type (NULL where the text is not one); a missing
cell is NULL. A scan is a split per tablet, beside its server; conditions
on the key column narrow the rows scanned. INSERT INTO writes a row per
result row (a NULL is no cell), at one timestamp per statement.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from stackyard.sql.errors import AnalysisError

HANDLERS = ("hbase", "org.apache.hadoop.hive.hbase.hbasestoragehandler", "stackyard.table")
MAPPING = "hbase.columns.mapping"
TABLE_NAME = "hbase.table.name"
KEY = ":key"


def is_handler(name: str) -> bool:
    return name.lower() in HANDLERS or name.lower().endswith("hbasestoragehandler")


def mapping(table: dict) -> list[tuple[str, str]]:
    """(column, ":key" or "family:qualifier") for every column, in order."""
    props = table["properties"]
    raw = props.get(MAPPING)
    if not raw:
        raise AnalysisError(f"table {table['name']}: STORED BY the table store needs "
                            f"'{MAPPING}' (e.g. ':key,cf:a')")
    entries = [e.strip() for e in raw.split(",")]
    cols = [c["name"] for c in table["columns"]]
    if len(entries) != len(cols):
        raise AnalysisError(f"{MAPPING}: {len(entries)} entries for {len(cols)} columns")
    if entries.count(KEY) != 1:
        raise AnalysisError(f"{MAPPING}: needs exactly one {KEY} entry (the row key)")
    for e in entries:
        fam, sep, qual = e.partition(":")
        if e != KEY and (not sep or not fam or not qual or "#" in e):
            raise AnalysisError(f"{MAPPING}: {e!r} is not :key or family:qualifier "
                                "(whole families and binary storage are not supported)")
    return list(zip(cols, entries, strict=True))


def store_table(table: dict) -> str:
    return table["properties"].get(TABLE_NAME) or table["name"]


def check_spec(spec: dict, tables) -> None:
    """At CREATE: the mapping is well formed and the table and families exist."""
    from stackyard.table.jobs import check_table
    if not spec["external"]:
        raise AnalysisError("a table STORED BY the table store must be EXTERNAL: create the "
                            "table with `yard hbase` (create 't', 'cf') and map it")
    families = {e.partition(":")[0] for _c, e in mapping(spec) if e != KEY}
    try:
        check_table(tables, store_table(spec), families)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    except Exception as exc:
        if type(exc).__name__ == "TableNotFoundError":
            raise AnalysisError(f"table-store table {store_table(spec)!r} does not exist") \
                from None
        raise


def key_range(conjuncts, key: str) -> tuple[bytes, bytes]:
    """[start, stop) of row keys that can satisfy CONJUNCTS on the key column."""
    from stackyard.sql.tables import _simple_predicate
    start, stop = b"", b""
    for c in conjuncts:
        p = _simple_predicate(c)
        if p is None or p[0] != key or not isinstance(p[2], str | tuple):
            continue
        col, op, value = p
        if op == "between":
            lo, hi = value
            if isinstance(lo, str) and isinstance(hi, str):
                start, stop = max(start, lo.encode()), _tighter(stop, hi.encode() + b"\x00")
            continue
        v = value.encode()
        if op == "=":
            start, stop = max(start, v), _tighter(stop, v + b"\x00")
        elif op == ">=":
            start = max(start, v)
        elif op == ">":
            start = max(start, v + b"\x00")
        elif op == "<":
            stop = _tighter(stop, v)
        elif op == "<=":
            stop = _tighter(stop, v + b"\x00")
    return start, stop


def _tighter(stop: bytes, new: bytes) -> bytes:
    return new if not stop else min(stop, new)


def plan(tables, table: dict, columns: list[str], conjuncts, parallelism: int):
    from stackyard.sql.readers import ScanSpec
    from stackyard.sql.tables import ScanPlan, table_schema
    from stackyard.table.jobs import table_splits
    maps = mapping(table)
    key = next(c for c, e in maps if e == KEY)
    start, stop = key_range(conjuncts, key)
    file_schema, part_schema = table_schema(None, table)
    spec = ScanSpec("hbase", file_schema, tuple(columns), part_schema, mapping=tuple(maps))
    splits = table_splits(tables, store_table(table), start, stop) \
        if not stop or start < stop else []
    out = ScanPlan(list(splits), spec, 0, 0)
    out.notes.append(f"table store {store_table(table)}: {len(splits)} tablets"
                     + (f", rows [{start!r}, {stop!r})" if start or stop else ""))
    # no statistics kept: guess a tablet's worth of rows, for the join orderer
    out.rows = max(1, len(splits)) * 100_000
    out.bytes = out.rows * 100 * max(1, len(columns))
    out.files = len(splits)
    return out


def read(ctx, split, spec) -> pa.Table:
    """SPLIT's rows as an Arrow table of SPEC's columns."""
    from stackyard.table.jobs import read_split
    wanted = list(spec.columns)
    where = dict(spec.mapping)
    cells = sorted({where[c].encode() for c in wanted if where[c] != KEY})
    values: dict[str, list] = {c: [] for c in wanted}
    # no column of the row is wanted (count(*)): still one row per key
    rows = read_split(ctx, split, columns=cells or None,
                      filter=None if cells else "KeyOnlyFilter()")
    for row, got in rows:
        for c in wanted:
            e = where[c]
            v = row if e == KEY else got.get(e.encode())
            values[c].append(None if v is None else v.decode("utf-8", "replace"))
    return pa.table([_typed(pa.array(values[c], pa.string()), spec.file_schema.field(c).type)
                     for c in wanted], names=wanted)


def _typed(text: pa.Array, t: pa.DataType) -> pa.Array:
    if t == pa.string():
        return text
    if pa.types.is_boolean(t):
        low = pc.utf8_lower(text)
        return pc.if_else(pc.equal(low, "true"), True,
                          pc.if_else(pc.equal(low, "false"), False, None))
    try:
        return pc.cast(text, t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Hive reads text that is not of the column's type as NULL
        return pa.array([_one(v, t) for v in text.to_pylist()], t)


def _one(v, t):
    try:
        return pc.cast(pa.array([v], pa.string()), t)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def rows_of(batch: pa.Table, maps: list[tuple[str, str]]) -> Iterator[tuple[bytes, dict]]:
    """Result rows as (row key, {b"family:qualifier": value}) puts."""
    key = next(c for c, e in maps if e == KEY)
    cols = {c: batch.column(c).to_pylist() for c, _e in maps}
    for i, k in enumerate(cols[key]):
        if k is None:
            raise AnalysisError(f"INSERT: the row key column {key!r} is NULL")
        row = k if isinstance(k, bytes) else str(k).encode()
        yield row, {e.encode(): cols[c][i] for c, e in maps if e != KEY}


def insert(session, table: dict, root, overwrite: bool) -> int:
    """INSERT INTO a mapped table: a put per result row, from the tasks."""
    from stackyard.sql.executor import Executor
    from stackyard.table.jobs import coords_of, job_timestamp, write_rows
    if overwrite:
        raise AnalysisError("INSERT OVERWRITE: a table-store table is written row by row; "
                            "use INSERT INTO")
    maps = mapping(table)
    if len(root.names) != len(maps):
        raise AnalysisError(f"{table['db']}.{table['name']} has {len(maps)} columns, the data "
                            f"has {len(root.names)}")
    names, name = [c for c, _e in maps], store_table(table)
    tables = session.client.tables
    coords, ts = coords_of(tables), job_timestamp()

    def task(_split, batches, rt):
        return sum(write_rows(rt.ctx, coords, name, rows_of(b.rename_columns(names), maps), ts)
                   for b in batches)

    ctx = session.ctx
    ctx.setJobDescription(f"SQL: INSERT INTO {table['db']}.{table['name']} (table store)")
    ex = Executor(ctx)
    try:
        return sum(ctx._run_job(ex.node(root), task, None, "insert"))
    finally:
        ex.close()

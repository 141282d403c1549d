"""Where rows come from: metastore tables and temporary views, files read
with a data source's options, the client's own rows (createDataFrame),
spark.range, and spark.sql."""

from __future__ import annotations

import io
import re

import pyarrow as pa
from pyspark.sql.connect.proto import relations_pb2 as R
from sqlglot import exp

from stackyard.sparkconnect import types
from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.expressions import Col, literal, split_identifier
from stackyard.sparkconnect.rel import Namer, Rel, project
from stackyard.sql.catalog import LOCAL_DB

MAX_LOCAL_BYTES = 1 << 30


def table_ref(name: str, db: str | None = None) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True),
                     db=exp.to_identifier(db, quoted=True) if db else None)


def over_table(t: exp.Table, columns: list[str], qualifiers: frozenset, alias: str) -> Rel:
    namer = Namer()
    t = t.copy()
    t.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    items = [(exp.column(c, alias, quoted=True), Col(c, namer(c), frozenset(), qualifiers))
             for c in columns]
    return project(t, items)


def read(planner, r: R.Read) -> Rel:
    if r.is_streaming:
        raise ConnectError("UNSUPPORTED_FEATURE", "streaming reads are not supported yet",
                           "0A000")
    if r.HasField("named_table"):
        return named_table(planner.session, r.named_table.unparsed_identifier)
    return data_source(planner.session, r.data_source)


def named_table(session, ident: str) -> Rel:
    parts = split_identifier(ident)
    if len(parts) == 1 and parts[0].lower() in session.sql.local_tables:
        name = parts[0].lower()
        cols = session.sql.local_tables[name]["columns"]
        return over_table(table_ref(name, LOCAL_DB), [c["name"] for c in cols],
                          frozenset({parts[0]}), session.next_alias())
    if len(parts) == 2 and parts[0].lower() == "global_temp":
        found = session.sql.global_tables.get(parts[1].lower())
        if found is None:
            raise _not_found(ident)
        return over_table(table_ref(parts[1].lower(), "global_temp"),
                          [c["name"] for c in found["columns"]], frozenset({parts[1]}),
                          session.next_alias())
    if len(parts) > 2:
        parts = parts[-2:]
    db = parts[0].lower() if len(parts) == 2 else session.sql.database
    table = session.sql.metastore.table(db, parts[-1].lower())
    if table is None:
        raise _not_found(ident)
    return over_table(table_ref(parts[-1].lower(), db), [c["name"] for c in table["columns"]],
                      frozenset({parts[-1], f"{db}.{parts[-1]}"}), session.next_alias())


def _not_found(ident: str) -> ConnectError:
    return ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                        f"The table or view `{ident}` cannot be found. Verify the spelling and "
                        "correctness of the schema and catalog.", "42P01",
                        params={"relationName": f"`{ident}`"})


# -- files --------------------------------------------------------------------------------

FORMATS = {"parquet": "parquet", "orc": "orc", "csv": "csv", "json": "jsonfile",
           "text": "textfile"}


def dfs_path(path: str) -> str:
    """A DFS path from what a user wrote: /p, yard://host:port/p, hdfs:///p."""
    m = re.match(r"^(?:yard|hdfs|webhdfs)://[^/]*(/.*)?$", path)
    if m:
        return m.group(1) or "/"
    if path.startswith("file:"):
        raise ConnectError("PATH_NOT_FOUND", f"{path}: only DFS paths are read on Stackyard",
                           "42K03")
    return path


def data_source(session, ds: R.Read.DataSource) -> Rel:
    fmt = (ds.format or "parquet").lower()
    if fmt not in FORMATS:
        raise ConnectError("", f"[DATA_SOURCE_NOT_FOUND] Failed to find the data source: "
                               f"{fmt}.", "42K02")
    opts = {k.lower(): v for k, v in ds.options.items()}
    paths = [dfs_path(p) for p in ds.paths] or ([dfs_path(opts["path"])] if "path" in opts
                                                else [])
    if not paths:
        raise ConnectError("", "a path is needed to read files", "42000")
    rels = [file_table(session, fmt, p, opts, ds.schema if ds.HasField("schema") else "")
            for p in paths]
    if len(rels) == 1:
        return rels[0]
    q = rels[0].query
    for other in rels[1:]:
        q = exp.Union(this=q, expression=other.query, distinct=False)
    return Rel(exp.select("*").from_(exp.Subquery(this=q, alias=exp.TableAlias(
        this=exp.to_identifier("u")))), rels[0].cols)


def file_table(session, fmt: str, path: str, opts: dict, schema_text: str) -> Rel:
    from stackyard.sql.tables import data_files, path_table
    from stackyard.sql.types import hive_type
    fs = session.sql.client.fs
    try:
        files = data_files(fs, path)
    except Exception:
        files = []
    if not files:
        try:
            fs.stat(path)
        except Exception:
            raise ConnectError("PATH_NOT_FOUND", f"Path does not exist: {path}.",
                               "42K03") from None
    table = path_table(fs, fmt if fmt != "json" else "json", path)
    table = dict(table)
    if schema_text:
        st = types.from_ddl(schema_text) if not schema_text.startswith("{") else \
            _json_schema(schema_text)
        table["columns"] = [{"name": f.name, "type": hive_type(f.type)} for f in st]
    elif fmt in ("csv", "json") and files:
        table["columns"] = _infer(fs, fmt, files[0]["path"], opts)
    table["format"] = FORMATS[fmt]
    found = discover_partitions(fs, path)
    if found:
        names, parts = found
        kinds = {n: _partition_type([p["values"][n] for p in parts]) for n in names}
        table["columns"] = [c for c in table["columns"] if c["name"] not in kinds] + \
            [{"name": n, "type": kinds[n]} for n in names]
        table["partition_cols"] = [{"name": n, "type": kinds[n]} for n in names]
        table["partitions"] = parts
    props = {}
    if fmt == "csv":
        table["delimiter"] = opts.get("sep", opts.get("delimiter", ","))
        if opts.get("header", "false").lower() == "true":
            props["header"] = "true"
        if "nullvalue" in opts:
            props["null.value"] = opts["nullvalue"]
    elif fmt == "text":
        table["delimiter"] = "\x01"     # a line is one value (Hive's \x01 splits it)
    table["properties"] = props
    name = session.register_table(table)
    return over_table(table_ref(name, LOCAL_DB), [c["name"] for c in table["columns"]],
                      frozenset(), session.next_alias())


def discover_partitions(fs, path: str):
    """Hive-style partition directories under PATH (k=v/k2=v2/...), as Spark
    discovers them: (the partition column names, [{values, location}])."""
    from urllib.parse import unquote
    try:
        if fs.stat(path)["type"] != "directory":
            return None
    except Exception:
        return None
    names: list[str] | None = None
    out = []

    def walk(d: str, values: dict, depth: int) -> None:
        nonlocal names
        subs = [e for e in fs.ls(d) if e["type"] == "directory"
                and not e["name"].startswith(("_", ".")) and "=" in e["name"]]
        if not subs or depth > 8:
            if values:
                out.append({"values": dict(values), "location": d})
            return
        for e in subs:
            k, _, v = e["name"].partition("=")
            walk(e["path"], {**values, unquote(k): unquote(v)}, depth + 1)
    walk(path, {}, 0)
    if not out:
        return None
    names = list(out[0]["values"])
    if any(list(p["values"]) != names for p in out):
        return None
    return names, out


def _partition_type(values: list[str]) -> str:
    real = [v for v in values if v != "__HIVE_DEFAULT_PARTITION__"]
    try:
        if real and all(-(2 ** 31) <= int(v) < 2 ** 31 for v in real):
            return "int"
    except ValueError:
        pass
    return "string"


def _json_schema(text: str) -> pa.Schema:
    import json

    from pyspark.sql.types import StructType
    st = StructType.fromJson(json.loads(text))
    return pa.schema([(f.name, types.from_ddl(f.dataType.simpleString())) for f in st.fields])


def _infer(fs, fmt: str, path: str, opts: dict) -> list[dict]:
    """Column names and types from the first MiB of a file, as Spark's
    inferSchema (without it every CSV column is a string, as in Spark)."""
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    from stackyard.sql.types import hive_type
    with fs.open(path, "rb") as f:
        head = f.read(1 << 20)
    if b"\n" in head and len(head) == 1 << 20:
        head = head[:head.rindex(b"\n") + 1]
    if fmt == "json":
        t = pjson.read_json(io.BytesIO(head))
        return [{"name": c.name, "type": hive_type(_widen(c.type))} for c in t.schema]
    sep = opts.get("sep", opts.get("delimiter", ","))
    header = opts.get("header", "false").lower() == "true"
    infer = opts.get("inferschema", "false").lower() == "true"
    read = pcsv.ReadOptions(autogenerate_column_names=not header)
    t = pcsv.read_csv(io.BytesIO(head), read_options=read,
                      parse_options=pcsv.ParseOptions(delimiter=sep))
    names = t.column_names if header else [f"_c{i}" for i in range(t.num_columns)]
    if not infer:
        return [{"name": n, "type": "string"} for n in names]
    return [{"name": n, "type": hive_type(_widen(c.type))} for n, c in zip(names, t.columns,
                                                                              strict=True)]


def _widen(t: pa.DataType) -> pa.DataType:
    if pa.types.is_integer(t):
        return pa.int32() if t.bit_width <= 32 else pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us")
    if pa.types.is_boolean(t) or pa.types.is_date(t):
        return t
    return pa.string()


# -- the client's rows --------------------------------------------------------------------

def local_relation(planner, r: R.LocalRelation) -> Rel:
    session = planner.session
    if r.HasField("data"):
        if len(r.data) > MAX_LOCAL_BYTES:
            raise ConnectError("", "local data over 1 GiB: write it to the DFS instead",
                               "54000")
        table = pa.ipc.open_stream(r.data).read_all()
        if r.HasField("schema") and r.schema:
            table = _apply_schema(table, r.schema)
    elif r.HasField("schema"):
        schema = _schema_of(r.schema)
        table = schema.empty_table()
    else:
        table = pa.table({})
    import hashlib
    key = ("local", hashlib.sha256(r.SerializeToString()).hexdigest())
    return session.table_rel(table, key=key)


def cached_local_relation(planner, r: R.CachedLocalRelation) -> Rel:
    data = planner.session.artifacts.cached(r.hash)
    if data is None:
        raise ConnectError("", f"no cached local relation with hash {r.hash}", "42000")
    rel = R.LocalRelation()
    rel.ParseFromString(data)
    return local_relation(planner, rel)


def _schema_of(text: str) -> pa.Schema:
    if text.startswith("{"):
        return _json_schema(text)
    st = types.from_ddl(text)
    if not pa.types.is_struct(st):
        return pa.schema([("value", st)])
    return pa.schema(list(st))


def _apply_schema(table: pa.Table, text: str) -> pa.Table:
    try:
        schema = _schema_of(text)
    except Exception:
        return table
    if len(schema) != table.num_columns:
        return table
    cols = []
    for col, f in zip(table.columns, schema, strict=True):
        try:
            cols.append(col.cast(f.type) if col.type != f.type else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cols.append(col)
    return pa.Table.from_arrays(cols, names=schema.names)


def range_rel(planner, r: R.Range) -> Rel:
    import numpy as np
    step = r.step or 1
    start = r.start
    if step == 0:
        raise ConnectError("", "step must not be 0", "22003")
    count = max(0, (r.end - start + (step - (1 if step > 0 else -1))) // step)
    if count > 50_000_000:
        raise ConnectError("", f"spark.range of {count:,} rows: at most 50,000,000 here",
                           "54000")
    key = ("range", start, r.end, step)
    if key in planner.session.by_key:
        return planner.session.table_rel(pa.table({"id": pa.array([], pa.int64())}), key=key)
    ids = np.arange(start, start + count * step, step, dtype=np.int64)[:count]
    return planner.session.table_rel(pa.table({"id": pa.array(ids, pa.int64())}), key=key)


# -- spark.sql ------------------------------------------------------------------------------

def bind_sql(s: R.SQL) -> str:
    text = s.query
    named = {k: literal(v).sql(dialect="spark") for k, v in s.args.items()}
    for k, v in s.named_arguments.items():
        if v.WhichOneof("expr_type") == "literal":
            named[k] = literal(v.literal).sql(dialect="spark")
    if named:
        def sub(m):
            key = m.group(1)
            if key not in named:
                raise ConnectError("UNBOUND_SQL_PARAMETER",
                                   f"Found the unbound parameter: {key}.", "42P02")
            return named[key]
        text = re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", sub, text)
    pos = [literal(v).sql(dialect="spark") for v in s.pos_args] + \
        [literal(v.literal).sql(dialect="spark") for v in s.pos_arguments
         if v.WhichOneof("expr_type") == "literal"]
    if pos:
        from stackyard.sql.session import bind
        text = bind(text, pos, render=str)
    return text


def sql_rel(planner, s: R.SQL) -> Rel:
    return planner.session.sql_query_rel(bind_sql(s))

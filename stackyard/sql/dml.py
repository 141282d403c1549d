"""Writes: INSERT INTO / OVERWRITE (static and dynamic partitions), CREATE
TABLE AS SELECT and LOAD DATA. The query's tasks write their files through
the engine's output committer (one attempt per task publishes) into a
hidden staging directory under the table; only when the whole job has
succeeded does the driver move them into place, partition by partition, so
a failed or cancelled insert leaves the table as it was."""

from __future__ import annotations

import posixpath
import uuid

import pyarrow as pa
from sqlglot import exp

from stackyard.sql import ddl
from stackyard.sql.errors import AnalysisError
from stackyard.sql.fragments import concat
from stackyard.sql.metastore import partition_dir
from stackyard.sql.result import message
from stackyard.sql.tables import data_files
from stackyard.sql.types import schema_of


def run(session, stmt, catalog):
    if isinstance(stmt, exp.LoadData):
        return load_data(session, stmt, catalog)
    target = stmt.this
    if isinstance(target, exp.Schema):
        raise AnalysisError("INSERT with a column list is not supported; "
                            "select the columns in the table's order")
    table, _ = catalog.resolve(target)
    if table.get("view"):
        raise AnalysisError(f"{table['db']}.{table['name']} is a view; it cannot be inserted into")
    spec = target.args.get("partition")
    values = ddl.partition_values(spec, table, allow_dynamic=True) if spec is not None else {}
    if table["partition_cols"] and not spec:
        values = {c["name"]: None for c in table["partition_cols"]}
    rows = insert(session, table, stmt.expression, catalog, values,
                  bool(stmt.args.get("overwrite")))
    return message(f"{rows} rows written")


def create_table_as(session, stmt: exp.Create, catalog):
    from stackyard.sql.types import hive_type
    root, _ = session.plan(stmt.args["expression"].copy(), catalog)
    columns = [{"name": f.name.lower(), "type": hive_type(f.type)} for f in root.schema]
    spec = ddl.table_spec(session, stmt, columns)
    if spec["external"]:
        raise AnalysisError("CREATE EXTERNAL TABLE ... AS SELECT is not allowed (as in Hive)")
    if not session.metastore.create_table(spec, bool(stmt.args.get("exists"))):
        return message("OK")
    try:
        values = {c["name"]: None for c in spec["partition_cols"]}
        insert(session, spec, stmt.args["expression"], catalog, values, True, plan=root)
    except BaseException:
        session.metastore.drop_table(spec["db"], spec["name"])
        ddl._rm(session.client.fs, spec["location"])
        raise
    return message("OK")


def insert(session, table: dict, query: exp.Expression, catalog, values: dict,
           overwrite: bool, plan=None) -> int:
    fs = session.client.fs
    root = plan if plan is not None else session.plan(query, catalog)[0]
    if table["format"] == "hbase":
        from stackyard.sql import tablestore
        return tablestore.insert(session, table, root, overwrite)
    part_names = [c["name"] for c in table["partition_cols"]]
    static = {k: v for k, v in values.items() if v is not None}
    dynamic = [k for k in part_names if k not in static]
    data_cols = [c for c in table["columns"] if c["name"] not in part_names]
    want = len(data_cols) + len(dynamic)
    if len(root.names) != want:
        raise AnalysisError(
            f"{table['db']}.{table['name']} requires that the data to be inserted have the "
            f"same number of columns as the target table: the target has {want} column(s) "
            f"({', '.join([c['name'] for c in data_cols] + dynamic)}), the data has "
            f"{len(root.names)}")
    schema = schema_of(data_cols + [c for c in table["columns"] if c["name"] in dynamic])
    staging = posixpath.join(table["location"], f".staging-{uuid.uuid4().hex[:12]}")
    fmt, props = table["format"], table["properties"]
    writer = PartitionWriter(staging, fmt, schema, dynamic, table["delimiter"],
                             props.get("compression"),
                             header=str(props.get("header", "")).lower() == "true")
    from stackyard.sql.executor import Executor
    ctx = session.ctx
    ctx.setJobDescription(f"SQL: INSERT {'OVERWRITE' if overwrite else 'INTO'} "
                          f"{table['db']}.{table['name']}")
    ex = Executor(ctx)
    try:
        written = ctx._run_job(ex.node(root), writer, None, "insert")
        files = [f for part in written for f in part]
        _commit(session, table, staging, files, static, overwrite)
    finally:
        ex.close()
        ddl._rm(fs, staging)
    return sum(f[2] for f in files)


class PartitionWriter:
    """The task side of an insert: a partition's rows, cast to the table's
    types, split by the dynamic partition columns, one file each."""

    def __init__(self, staging, fmt, schema, dynamic, delimiter, compression,
                 header: bool = False):
        self.staging, self.fmt, self.schema = staging, fmt, schema
        self.dynamic, self.delimiter, self.compression = dynamic, delimiter, compression
        self.header = header          # a CSV file's first line names its columns

    def __call__(self, split, tables, rt):
        data = concat(list(tables), self.schema)
        if not data.num_rows:
            return []
        data = pa.table([data.column(i).cast(self.schema.field(i).type)
                         for i in range(len(self.schema))], schema=self.schema)
        groups = [((), data)]
        if self.dynamic:
            groups = _split_by(data, self.dynamic)
        out = []
        for n, (vals, part) in enumerate(groups):
            body = part.drop_columns(self.dynamic) if self.dynamic else part
            name = f"part-{split:05d}-{n:04d}-{uuid.uuid4().hex[:8]}{_suffix(self.fmt, self)}"
            rt.ctx.publish(self.staging, name, lambda f, body=body: self.write(f, body))
            out.append((name, vals, body.num_rows))
        rt.counters["output_records"] = rt.counters.get("output_records", 0) + data.num_rows
        return out

    def write(self, f, table: pa.Table) -> None:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq
            pq.write_table(table, f, compression=self.compression or "snappy")
        elif self.fmt == "orc":
            import pyarrow.orc as orc
            orc.write_table(table, f, compression=self.compression or "zstd")
        elif self.fmt == "jsonfile":
            import json
            for row in table.to_pylist():
                f.write((json.dumps(row, default=str) + "\n").encode())
        elif self.fmt == "csv":
            # quoted where a value needs it, nulls empty: what Spark writes and reads
            import pyarrow.csv as pcsv
            sink = pa.BufferOutputStream()
            pcsv.write_csv(table, sink, pcsv.WriteOptions(
                include_header=self.header, delimiter=self.delimiter, quoting_style="needed"))
            f.write(self._compress(sink.getvalue().to_pybytes()))
        else:
            sep = self.delimiter
            lines = [sep.join(table.column_names)] if self.header else []
            for row in zip(*[c.to_pylist() for c in table.columns], strict=True):
                lines.append(sep.join("\\N" if v is None else str(v) for v in row))
            data = ("\n".join(lines) + "\n").encode() if lines else b""
            f.write(self._compress(data))

    def _compress(self, data: bytes) -> bytes:
        if self.compression == "gzip":
            import gzip
            return gzip.compress(data)
        if self.compression == "zstd":
            sink = pa.BufferOutputStream()
            with pa.CompressedOutputStream(sink, "zstd") as z:
                z.write(data)
            return sink.getvalue().to_pybytes()
        return data


def _suffix(fmt: str, w: PartitionWriter) -> str:
    base = {"parquet": ".parquet", "orc": ".orc", "jsonfile": ".json"}.get(fmt, "")
    if fmt in ("textfile", "csv") and w.compression in ("gzip", "zstd"):
        return base + {"gzip": ".gz", "zstd": ".zst"}[w.compression]
    if fmt == "parquet" and w.compression:
        return f".{w.compression}.parquet"
    return base


def _split_by(data: pa.Table, cols: list[str]) -> list[tuple[tuple, pa.Table]]:
    import pyarrow.compute as pc
    keys = data.select(cols).to_pylist()
    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(tuple(str(k[c]) if k[c] is not None else None for c in cols),
                          []).append(i)
    out = []
    for vals, idx in groups.items():
        out.append((tuple(zip(cols, vals, strict=True)),
                    data.take(pc.cast(pa.array(idx), pa.int64()))))
    return out


def _commit(session, table, staging, files, static, overwrite) -> None:
    """Move the staged files into their partitions; OVERWRITE swaps each
    partition's directory (or the table's) for the new one."""
    fs, ms = session.client.fs, session.metastore
    by_place: dict[tuple, list[str]] = {}
    for name, vals, _ in files:
        values = {**static, **{k: v for k, v in vals}}
        key = tuple(values.get(c["name"]) for c in table["partition_cols"])
        by_place.setdefault(key, []).append(name)
    names = [c["name"] for c in table["partition_cols"]]
    if not names:
        places = [((), table["location"])]
    else:
        keys = set(by_place) | ({tuple(static.get(n) for n in names)}
                                if overwrite and len(static) == len(names) else set())
        places = []
        for key in keys:
            values = dict(zip(names, key, strict=True))
            values = {k: ("__HIVE_DEFAULT_PARTITION__" if v is None else v)
                      for k, v in values.items()}
            existing = [p for p in (ms.partitions(table["db"], table["name"])
                                    if not table.get("path_only") else [])
                        if p["values"] == values]
            loc = existing[0]["location"] if existing else \
                posixpath.join(table["location"], partition_dir(values))
            places.append((key, loc, values, bool(existing)))
    for place in places:
        key, loc = place[0], place[1]
        new = by_place.get(key, [])
        fresh = posixpath.join(staging, f"_place-{uuid.uuid4().hex[:8]}")
        fs.mkdir(fresh)
        for name in new:
            fs.mv(posixpath.join(staging, name), posixpath.join(fresh, name))
        if overwrite and loc == table["location"]:
            # the staging directory lives in the table's own: the old files
            # move out into it, then the new ones in
            old = posixpath.join(staging, f"_old-{uuid.uuid4().hex[:8]}")
            fs.mkdir(old)
            for e in fs.ls(loc) if fs.exists(loc) else []:
                if e["path"] != staging:
                    fs.mv(e["path"], posixpath.join(old, e["name"]))
            for name in new:
                fs.mv(posixpath.join(fresh, name), posixpath.join(loc, name))
        elif overwrite:
            if fs.exists(loc):
                old = posixpath.join(staging, f"_old-{uuid.uuid4().hex[:8]}")
                fs.mv(loc, old)
            fs.mkdir(posixpath.dirname(loc))
            fs.mv(fresh, loc)
        else:
            fs.mkdir(loc)
            for name in new:
                fs.mv(posixpath.join(fresh, name), posixpath.join(loc, name))
        if names and not place[3] and not table.get("path_only"):
            ms.add_partition(table["db"], table["name"], place[2], loc)


def load_data(session, stmt: exp.LoadData, catalog):
    """LOAD DATA INPATH 'p' [OVERWRITE] INTO TABLE t [PARTITION (...)]: the files
    move into the table (Hive moves, it does not copy)."""
    if stmt.args.get("local"):
        raise AnalysisError("LOAD DATA LOCAL is not supported: put the files into the DFS "
                            "first (yard dfs -put)")
    fs = session.client.fs
    table, _ = catalog.resolve(stmt.this)
    src = stmt.args["inpath"].name
    files = data_files(fs, src)
    if not files:
        raise AnalysisError(f"LOAD DATA: no files at {src!r}")
    spec = stmt.args.get("partition")
    loc = table["location"]
    values = None
    if table["partition_cols"]:
        if spec is None:
            raise AnalysisError("LOAD DATA into a partitioned table needs PARTITION (k='v')")
        values = ddl.partition_values(spec, table)
        loc = posixpath.join(table["location"], partition_dir(values))
    if stmt.args.get("overwrite") and fs.exists(loc):
        for e in fs.ls(loc):
            fs.rm(e["path"], recursive=True)
    fs.mkdir(loc)
    for f in files:
        name = posixpath.basename(f["path"])
        dst = posixpath.join(loc, name)
        if fs.exists(dst):
            dst = posixpath.join(loc, f"{uuid.uuid4().hex[:8]}_{name}")
        fs.mv(f["path"], dst)
    if values is not None:
        session.metastore.add_partition(table["db"], table["name"], values, loc)
    return message(f"Loaded {len(files)} files")

"""df.write and df.writeTo: a DataFrame's rows into DFS paths (as a
directory of files, partitioned by directory) or into metastore tables,
through the SQL layer's insert (tasks stage their files through the
engine's committer; the driver moves them into place only when the whole
job has succeeded)."""

from __future__ import annotations

import posixpath

from pyspark.sql.connect.proto import commands_pb2 as C
from sqlglot import exp

from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.relations import RelationPlanner
from stackyard.sparkconnect.sources import FORMATS, dfs_path
from stackyard.sql.metastore import new_table
from stackyard.sql.types import hive_type

W = C.WriteOperation
APPEND, OVERWRITE, ERROR, IGNORE = (W.SaveMode.SAVE_MODE_APPEND, W.SaveMode.SAVE_MODE_OVERWRITE,
                                    W.SaveMode.SAVE_MODE_ERROR_IF_EXISTS,
                                    W.SaveMode.SAVE_MODE_IGNORE)


def _ordered(session, rel, partition_cols: list[str]):
    """REL's query with the partition columns last (Hive's layout), and
    the table columns it writes."""
    schema = session.schema(rel)
    by_name = {c.name.lower(): (c, f) for c, f in zip(rel.cols, schema, strict=True)}
    for p in partition_cols:
        if p.lower() not in by_name:
            raise ConnectError("UNRESOLVED_COLUMN.WITH_SUGGESTION",
                               f"partition column `{p}` is not a column of the DataFrame",
                               "42703")
    parts = [p.lower() for p in partition_cols]
    order = [c for c in rel.cols if c.name.lower() not in parts] + \
        [by_name[p][0] for p in parts]
    q = exp.select(*[exp.alias_(exp.column(c.internal, "w", quoted=True), c.name.lower(),
                                quoted=True) for c in order]).from_(
        exp.Subquery(this=rel.query, alias=exp.TableAlias(this=exp.to_identifier("w"))))
    columns = [{"name": c.name.lower(), "type": hive_type(by_name[c.name.lower()][1].type)}
               for c in order]
    return q, columns


def _format(source: str) -> str:
    fmt = (source or "parquet").lower()
    if fmt not in FORMATS:
        raise ConnectError("", f"[DATA_SOURCE_NOT_FOUND] Failed to find the data source: "
                               f"{fmt}.", "42K02")
    return FORMATS[fmt]


def _props(fmt: str, options: dict) -> tuple[dict, str]:
    opts = {k.lower(): v for k, v in options.items()}
    props = {}
    if opts.get("compression"):
        props["compression"] = opts["compression"]
    delimiter = "\x01"
    if fmt == "csv":
        delimiter = opts.get("sep", opts.get("delimiter", ","))
        if opts.get("header", "false").lower() == "true":
            props["header"] = "true"
    elif fmt == "textfile":
        delimiter = "\x01"
    return props, delimiter


def write(session, w: C.WriteOperation) -> None:
    rel = RelationPlanner(session).plan(w.input)
    parts = list(w.partitioning_columns)
    q, columns = _ordered(session, rel, parts)
    fmt = _format(w.source if w.HasField("source") else "")
    props, delimiter = _props(fmt, dict(w.options))
    fs = session.sql.client.fs
    kind = w.WhichOneof("save_type")
    if kind == "path" or (kind is None and "path" in w.options):
        path = dfs_path(w.path if kind == "path" else w.options["path"])
        exists = fs.exists(path) and bool(fs.ls(path))
        if exists and w.mode in (ERROR, W.SaveMode.SAVE_MODE_UNSPECIFIED):
            raise ConnectError("PATH_ALREADY_EXISTS",
                               f"Path {path} already exists. Set mode as \"overwrite\" to "
                               "overwrite the existing path.", "42K04")
        if exists and w.mode == IGNORE:
            return
        fs.mkdir(path)
        table = new_table("", posixpath.basename(path) or "root",
                          columns, partition_cols=[c for c in columns if c["name"] in
                                                   {p.lower() for p in parts}],
                          fmt=fmt, location=path, external=True, properties=props,
                          delimiter=delimiter)
        table["path_only"] = True
        _insert(session, table, q, w.mode == OVERWRITE)
        return
    if kind != "table":
        raise ConnectError("", "df.write needs a path or a table", "42000")
    save_table(session, w.table.table_name, q, columns, parts, fmt, props, delimiter, w.mode,
               w.table.save_method == W.SaveTable.TableSaveMethod.TABLE_SAVE_METHOD_INSERT_INTO)


def _insert(session, table: dict, q, overwrite: bool) -> None:
    from stackyard.sql import dml
    catalog = session.catalog()
    dml.insert(session.sql, table, q, catalog, {c["name"]: None for c in
                                               table["partition_cols"]}, overwrite)


def _split_name(session, name: str) -> tuple[str, str]:
    from stackyard.sparkconnect.expressions import split_identifier
    parts = split_identifier(name)
    db = parts[-2].lower() if len(parts) >= 2 else session.sql.database
    return db, parts[-1].lower()


def save_table(session, name, q, columns, parts, fmt, props, delimiter, mode,
               insert_into: bool) -> None:
    ms = session.sql.metastore
    db, tname = _split_name(session, name)
    existing = ms.table(db, tname)
    if insert_into:
        if existing is None:
            raise ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                               f"The table or view `{name}` cannot be found.", "42P01")
        _insert(session, existing, q, mode == OVERWRITE)
        return
    if existing is not None:
        if mode == IGNORE:
            return
        if mode in (ERROR, W.SaveMode.SAVE_MODE_UNSPECIFIED):
            raise ConnectError("TABLE_OR_VIEW_ALREADY_EXISTS",
                               f"Cannot create table or view `{db}`.`{tname}` because it "
                               "already exists.", "42P07")
        if mode == APPEND:
            _insert(session, existing, q, False)
            return
        session.sql.sql(f"DROP TABLE `{db}`.`{tname}`")
    location = posixpath.join(ms.database(db)["location"], tname)
    lower = {p.lower() for p in parts}
    spec = new_table(db, tname, columns, partition_cols=[c for c in columns
                                                         if c["name"] in lower],
                     fmt=fmt, location=location, properties=props, delimiter=delimiter,
                     owner=session.sql.client.fs.user)
    ms.create_table(spec)
    session.sql.client.fs.mkdir(location)
    try:
        _insert(session, spec, q, True)
    except BaseException:
        session.sql.sql(f"DROP TABLE IF EXISTS `{db}`.`{tname}`")
        raise


def write_v2(session, w: C.WriteOperationV2) -> None:
    M = C.WriteOperationV2.Mode
    rel = RelationPlanner(session).plan(w.input)
    parts = []
    for e in w.partitioning_columns:
        if e.WhichOneof("expr_type") == "unresolved_attribute":
            parts.append(e.unresolved_attribute.unparsed_identifier)
        else:
            raise ConnectError("UNSUPPORTED_FEATURE", "partition transforms", "0A000")
    q, columns = _ordered(session, rel, parts)
    fmt = _format(w.provider if w.HasField("provider") else "")
    props, delimiter = _props(fmt, dict(w.options))
    db, tname = _split_name(session, w.table_name)
    exists = session.sql.metastore.table(db, tname) is not None
    if w.mode == M.MODE_CREATE:
        save_table(session, w.table_name, q, columns, parts, fmt, props, delimiter, ERROR,
                   False)
    elif w.mode in (M.MODE_CREATE_OR_REPLACE, M.MODE_REPLACE):
        if w.mode == M.MODE_REPLACE and not exists:
            raise ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                               f"The table or view `{w.table_name}` cannot be found.", "42P01")
        save_table(session, w.table_name, q, columns, parts, fmt, props, delimiter, OVERWRITE,
                   False)
    elif w.mode == M.MODE_APPEND:
        save_table(session, w.table_name, q, columns, parts, fmt, props, delimiter, APPEND,
                   True)
    elif w.mode in (M.MODE_OVERWRITE, M.MODE_OVERWRITE_PARTITIONS):
        save_table(session, w.table_name, q, columns, parts, fmt, props, delimiter, OVERWRITE,
                   True)
    else:
        raise ConnectError("UNSUPPORTED_FEATURE", f"writeTo mode {w.mode}", "0A000")


def create_table(session, op):
    """spark.catalog.createTable(name, path, source, schema)."""
    from stackyard.sparkconnect import types
    fmt = _format(op.source if op.HasField("source") else "")
    db, tname = _split_name(session, op.table_name)
    cols = []
    if op.HasField("schema"):
        for f in types.to_arrow(op.schema):
            cols.append({"name": f.name.lower(), "type": hive_type(f.type)})
    path = dfs_path(op.path) if op.HasField("path") else None
    if not cols and path:
        from stackyard.sql.tables import infer_columns
        cols = infer_columns(session.sql.client.fs, fmt, path)
    props, delimiter = _props(fmt, dict(op.options))
    location = path or posixpath.join(session.sql.metastore.database(db)["location"], tname)
    spec = new_table(db, tname, cols, fmt=fmt, location=location, external=bool(path),
                     properties=props, delimiter=delimiter, owner=session.sql.client.fs.user)
    session.sql.metastore.create_table(spec)
    session.sql.client.fs.mkdir(location)
    from stackyard.sparkconnect.catalog import _table_row, _tables
    return _tables([_table_row(session, db, tname)])


def checkpoint(session, c, new) -> None:
    raise ConnectError("UNSUPPORTED_FEATURE", "checkpoint is not supported yet", "0A000")

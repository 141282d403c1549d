"""Data definition: databases, tables, views and partitions in the
metastore, with their directories in the DFS (Hive's rules: dropping a
managed table removes its data, an EXTERNAL one keeps it)."""

from __future__ import annotations

import posixpath
import re

import pyarrow as pa
from sqlglot import exp

from stackyard.sql.catalog import LOCAL_DB
from stackyard.sql.errors import AnalysisError, ParseError
from stackyard.sql.metastore import FORMATS, new_table, parse_partition_dir, partition_dir
from stackyard.sql.result import Result, message
from stackyard.sql.types import arrow_type

FORMAT_NAMES = {"parquet": "parquet", "textfile": "textfile", "text": "textfile",
                "orc": "orc", "jsonfile": "jsonfile", "json": "jsonfile", "csv": "csv",
                "hbase": "hbase"}


def run(session, stmt: exp.Expression, catalog) -> Result:
    if isinstance(stmt, exp.Create):
        kind = (stmt.args.get("kind") or "").upper()
        if kind in ("DATABASE", "SCHEMA"):
            return create_database(session, stmt)
        if kind == "TABLE":
            return create_table(session, stmt, catalog)
        if kind == "VIEW":
            return create_view(session, stmt, catalog)
        raise AnalysisError(f"CREATE {kind} is not supported")
    if isinstance(stmt, exp.Drop):
        return drop(session, stmt, catalog)
    if isinstance(stmt, exp.Alter):
        return alter(session, stmt, catalog)
    if isinstance(stmt, exp.Describe):
        return describe(session, stmt, catalog)
    if isinstance(stmt, exp.Analyze):
        return analyze(session, stmt, catalog)
    if isinstance(stmt, exp.TruncateTable):
        for t in stmt.expressions:
            table = _managed(session, catalog, t, "TRUNCATE TABLE")
            for f in session.client.fs.ls(table["location"]) if session.client.fs.exists(
                    table["location"]) else []:
                session.client.fs.rm(f["path"], recursive=True)
        return message("OK")
    if isinstance(stmt, exp.Refresh | exp.Cache | exp.Uncache):
        return message("OK")
    raise AnalysisError(f"unsupported statement: {stmt.key.upper()}")


# -- databases ------------------------------------------------------------------------


def create_database(session, stmt: exp.Create) -> Result:
    props = _props(stmt)
    name = stmt.this.name
    made = session.metastore.create_database(name, props.get("location"),
                                             props.get("comment", ""),
                                             bool(stmt.args.get("exists")))
    if made:
        db = session.metastore.database(name)
        session.client.fs.mkdir(db["location"])
    return message("OK")


# -- tables ---------------------------------------------------------------------------


def table_spec(session, stmt: exp.Create, columns: list[dict] | None) -> dict:
    target = stmt.this.this if isinstance(stmt.this, exp.Schema) else stmt.this
    db = (target.db or session.database).lower()
    name = target.name.lower()
    props = _props(stmt)
    fmt = FORMAT_NAMES.get(props.get("format", "parquet"))
    if fmt is None or fmt not in FORMATS:
        raise AnalysisError(f"unsupported table format {props.get('format')!r} "
                            f"(STORED AS PARQUET | TEXTFILE | ORC | JSONFILE, USING csv)")
    external = props.get("external", False)
    location = props.get("location")
    if fmt == "hbase":
        location = location or ""           # its rows are in the table store, not files
    elif external and not location:
        raise AnalysisError("CREATE EXTERNAL TABLE needs a LOCATION")
    if location is None:
        location = posixpath.join(session.metastore.database(db)["location"], name)
    if columns is None:
        columns = _columns(stmt)
    part_cols = props.get("partitioned", [])
    declared = {c["name"] for c in columns}
    parts = []
    for p in part_cols:
        if isinstance(p, dict):              # Hive: PARTITIONED BY (k type), not a column
            if p["name"] in declared:
                raise AnalysisError(f"partition column {p['name']!r} is also a table column")
            parts.append(p)
            columns = columns + [p]
        else:                                # Spark: PARTITIONED BY (k), one of the columns
            match = [c for c in columns if c["name"] == p]
            if not match:
                raise AnalysisError(f"partition column {p!r} is not a column of the table")
            parts.append(match[0])
    if parts:                                 # partition columns last, as Hive shows them
        names = {p["name"] for p in parts}
        columns = [c for c in columns if c["name"] not in names] + parts
    delimiter = props.get("delimiter") or ("," if fmt == "csv" else "\x01")
    properties = dict(props.get("properties", {}))
    if props.get("compression"):
        properties["compression"] = props["compression"]
    return new_table(db, name, columns, partition_cols=parts, fmt=fmt, location=location,
                     external=external, properties=properties, delimiter=delimiter,
                     owner=session.client.fs.user)


def create_table(session, stmt: exp.Create, catalog) -> Result:
    props = _props(stmt)
    columns = _columns(stmt) if isinstance(stmt.this, exp.Schema) else None
    if columns is None:
        from stackyard.sql.tables import infer_columns
        fmt = FORMAT_NAMES.get(props.get("format", "parquet"), "parquet")
        if not props.get("location"):
            raise AnalysisError("CREATE TABLE without columns needs a LOCATION to read them from")
        columns = infer_columns(session.client.fs, fmt, props["location"])
    spec = table_spec(session, stmt, columns)
    if spec["format"] == "hbase":
        from stackyard.sql import tablestore
        tablestore.check_spec(spec, session.client.tables)
    if session.metastore.create_table(spec, bool(stmt.args.get("exists"))) and spec["location"]:
        session.client.fs.mkdir(spec["location"])
    return message("OK")


def create_view(session, stmt: exp.Create, catalog) -> Result:
    target = stmt.this.this if isinstance(stmt.this, exp.Schema) else stmt.this
    db = (target.db or session.database).lower()
    body = stmt.args["expression"]
    from stackyard.sql.physical import PNode
    root, _ = session.plan(body.copy(), catalog)      # the view must compile today
    assert isinstance(root, PNode)
    from stackyard.sql.types import hive_type
    cols = [{"name": f.name, "type": hive_type(f.type)} for f in root.schema]
    spec = new_table(db, target.name.lower(), cols, fmt="view", location="",
                     view=body.sql(dialect="spark"), owner=session.client.fs.user)
    replace = bool(stmt.args.get("replace"))
    if replace and session.metastore.table(db, spec["name"]) is not None:
        session.metastore.alter_table(db, spec["name"], lambda t: {**t, **{
            "columns": cols, "view": spec["view"]}})
        return message("OK")
    session.metastore.create_table(spec, bool(stmt.args.get("exists")))
    return message("OK")


def drop(session, stmt: exp.Drop, catalog) -> Result:
    kind = (stmt.args.get("kind") or "").upper()
    if_exists = bool(stmt.args.get("exists"))
    fs = session.client.fs
    if kind in ("DATABASE", "SCHEMA"):
        name = stmt.this.name if stmt.this is not None else stmt.args["tables"][0].name
        cascade = bool(stmt.args.get("cascade"))
        if cascade:
            for t in session.metastore.tables(name) if _db_exists(session, name) else []:
                table = session.metastore.drop_table(name, t)
                if table and not table["external"] and table.get("location"):
                    _rm(fs, table["location"])
        db = session.metastore.drop_database(name, if_exists, cascade)
        if db and session.database == name.lower():
            session.database = "default"
        if db:
            _rm(fs, db["location"])
        return message("OK")
    for t in stmt.args.get("tables") or [stmt.this]:
        db, name = catalog.qualified(t)
        if db == LOCAL_DB:               # a temporary view of the session (Spark drops it)
            session.local_tables.pop(name, None)
            continue
        table = session.metastore.table(db, name)
        if table is None:
            if if_exists:
                continue
            raise AnalysisError(f"Table or view not found: {db}.{name}")
        if kind == "VIEW" and not table.get("view"):
            raise AnalysisError(f"{db}.{name} is a table; use DROP TABLE")
        if kind == "TABLE" and table.get("view"):
            raise AnalysisError(f"{db}.{name} is a view; use DROP VIEW")
        session.metastore.drop_table(db, name)
        if not table["external"] and not table.get("view"):
            _rm(fs, table["location"])
    return message("OK")


def alter(session, stmt: exp.Alter, catalog) -> Result:
    t = stmt.this
    db, name = catalog.qualified(t)
    table = session.metastore.table(db, name)
    if table is None:
        raise AnalysisError(f"Table or view not found: {db}.{name}")
    fs = session.client.fs
    for action in stmt.args.get("actions") or []:
        if isinstance(action, exp.AlterRename):
            new = action.this
            new_db = (new.db or db).lower()
            location = None
            if not table["external"] and not table.get("view"):
                location = posixpath.join(session.metastore.database(new_db)["location"],
                                          new.name.lower())
            session.metastore.rename_table(db, name, new_db, new.name.lower(), location)
            if location and fs.exists(table["location"]):
                fs.mkdir(posixpath.dirname(location))
                fs.mv(table["location"], location)
        elif isinstance(action, exp.Schema):       # ADD COLUMNS
            cols = [{"name": c.name.lower(), "type": _type(c)} for c in action.expressions]
            have = {c["name"] for c in table["columns"]}
            for c in cols:
                if c["name"] in have:
                    raise AnalysisError(f"column {c['name']!r} already exists in {db}.{name}")

            def add(spec, cols=cols):
                parts = {p["name"] for p in spec["partition_cols"]}
                data = [c for c in spec["columns"] if c["name"] not in parts]
                return {**spec, "columns": data + cols + spec["partition_cols"]}
            table = session.metastore.alter_table(db, name, add)
        elif isinstance(action, exp.AddPartition):
            values = partition_values(action.this, table)
            loc = action.args.get("location")
            location = loc.this.name if loc is not None else \
                posixpath.join(table["location"], partition_dir(values))
            made = session.metastore.add_partition(db, name, values, location,
                                                   bool(action.args.get("exists")))
            if made:
                fs.mkdir(location)
        elif isinstance(action, exp.DropPartition):
            for p in action.expressions:
                values = partition_values(p, table)
                spec = session.metastore.drop_partition(db, name, values)
                if spec is None and not action.args.get("exists"):
                    raise AnalysisError(f"Partition {partition_dir(values)} not found "
                                        f"in {db}.{name}")
                if spec and not table["external"]:
                    _rm(fs, spec["location"])
        else:
            raise AnalysisError(f"ALTER TABLE ... {action.sql(dialect='spark')[:40]}: "
                                "not supported")
    return message("OK")


def partition_values(p: exp.Expression, table: dict, allow_dynamic: bool = False) -> dict:
    """The PARTITION (k='v', ...) clause as {k: v} in the table's partition order."""
    names = [c["name"] for c in table["partition_cols"]]
    if not names:
        raise AnalysisError(f"{table['db']}.{table['name']} is not partitioned")
    out = {}
    for e in p.expressions:
        if isinstance(e, exp.EQ):
            k = e.this.name.lower()
            v = e.expression
            out[k] = v.name if isinstance(v, exp.Literal) else v.sql(dialect="spark")
        elif isinstance(e, exp.Column) and allow_dynamic:
            out[e.name.lower()] = None
        else:
            raise AnalysisError(f"partition spec: expected k='v', got {e.sql()}")
    for k in out:
        if k not in names:
            raise AnalysisError(f"{k!r} is not a partition column of "
                                f"{table['db']}.{table['name']} (those are {', '.join(names)})")
    if not allow_dynamic and set(out) != set(names):
        raise AnalysisError(f"partition spec names {', '.join(out)}; the table is "
                            f"partitioned by {', '.join(names)}")
    return {k: out[k] for k in names if k in out}


# -- describing -----------------------------------------------------------------------


def describe(session, stmt: exp.Describe, catalog) -> Result:
    t = stmt.this
    if not isinstance(t, exp.Table):
        raise AnalysisError("DESCRIBE takes a table name")
    table, parts = catalog.resolve(t)
    rows = [(c["name"], c["type"], "") for c in table["columns"]]
    if table["partition_cols"]:
        rows += [("# Partition Information", "", ""), ("# col_name", "data_type", "comment")]
        rows += [(c["name"], c["type"], "") for c in table["partition_cols"]]
    if (stmt.args.get("style") or "").upper() in ("FORMATTED", "EXTENDED"):
        stats = table.get("stats") or {}
        rows += [("", "", ""), ("# Detailed Table Information", "", ""),
                 ("Database", table["db"], ""), ("Table", table["name"], ""),
                 ("Owner", table.get("owner", ""), ""),
                 ("Type", "VIEW" if table.get("view") else
                  "EXTERNAL" if table["external"] else "MANAGED", ""),
                 ("Provider", table["format"], ""), ("Location", table["location"], "")]
        if table.get("view"):
            rows.append(("View Text", table["view"], ""))
        if stats:
            rows.append(("Statistics", f"{stats.get('totalSize', 0)} bytes, "
                                       f"{stats.get('numRows', 0)} rows", ""))
        if table["properties"]:
            rows.append(("Table Properties", "[" + ", ".join(
                f"{k}={v}" for k, v in sorted(table["properties"].items())) + "]", ""))
        if table["format"] in ("textfile", "csv"):
            rows.append(("Field Delimiter", repr(table["delimiter"]), ""))
        if parts is not None:
            rows.append(("Partitions", str(len(parts)), ""))
    return _rows(["col_name", "data_type", "comment"], rows)


def analyze(session, stmt: exp.Analyze, catalog) -> Result:
    """ANALYZE TABLE t COMPUTE STATISTICS: its rows and bytes, counted by a job."""
    for t in stmt.args.get("tables") or [stmt.this]:
        db, name = catalog.qualified(t)
        if db == LOCAL_DB:               # a temporary view of the session (Spark drops it)
            session.local_tables.pop(name, None)
            continue
        res = session.sql(f"SELECT COUNT(*) FROM `{db}`.`{name}`")
        rows = res.fetchall()[0][0]
        from stackyard.sql.tables import data_files
        table, parts = catalog.resolve(t)
        places = [p["location"] for p in parts] if table["partition_cols"] else \
            [table["location"]]
        files = [f for loc in places for f in data_files(session.client.fs, loc)]
        size = sum(f["length"] for f in files)
        stats = {"numRows": rows, "totalSize": size, "numFiles": len(files)}
        session.metastore.alter_table(db, name, lambda spec, stats=stats: {**spec,
                                                                          "stats": stats})
    return message("OK")


def command(session, word: str, rest: str, catalog) -> Result:
    text = f"{word} {rest}".strip()
    ms = session.metastore
    m = re.fullmatch(r"SHOW\s+(DATABASES|SCHEMAS)(?:\s+LIKE\s+'([^']*)')?", text, re.I)
    if m:
        return _rows(["namespace"], [(d,) for d in ms.databases() if _like(d, m.group(2))])
    m = re.fullmatch(r"SHOW\s+(TABLES|VIEWS)(?:\s+(?:IN|FROM)\s+`?(\w+)`?)?"
                     r"(?:\s+(?:LIKE\s+)?'([^']*)')?", text, re.I)
    if m:
        db = (m.group(2) or session.database).lower()
        views = m.group(1).upper() == "VIEWS"
        out = []
        for t in ms.tables(db):
            spec = ms.table(db, t)
            if spec is None or (views and not spec.get("view")) or not _like(t, m.group(3)):
                continue
            out.append((db, t, False))
        return Result(pa.table({"namespace": [r[0] for r in out],
                                "tableName": [r[1] for r in out],
                                "isTemporary": pa.array([r[2] for r in out], pa.bool_())}))
    m = re.fullmatch(r"SHOW\s+PARTITIONS\s+(\S+)", text, re.I)
    if m:
        table, parts = catalog.resolve(_table(m.group(1)))
        if not table["partition_cols"]:
            raise AnalysisError(f"SHOW PARTITIONS: {table['db']}.{table['name']} "
                                "is not partitioned")
        return _rows(["partition"], [(partition_dir(p["values"]),) for p in parts or []])
    m = re.fullmatch(r"SHOW\s+CREATE\s+TABLE\s+(\S+)", text, re.I)
    if m:
        table, _ = catalog.resolve(_table(m.group(1)))
        return _rows(["createtab_stmt"], [(show_create(table),)])
    m = re.fullmatch(r"SHOW\s+COLUMNS\s+(?:IN|FROM)\s+(\S+)", text, re.I)
    if m:
        table, _ = catalog.resolve(_table(m.group(1)))
        return _rows(["col_name"], [(c["name"],) for c in table["columns"]])
    m = re.fullmatch(r"MSCK\s+REPAIR\s+TABLE\s+(\S+)", text, re.I)
    if m:
        return repair(session, catalog, _table(m.group(1)))
    raise ParseError(f"unsupported statement: {text[:60]}")


def repair(session, catalog, t: exp.Table) -> Result:
    """MSCK REPAIR TABLE: partitions found as k=v directories under the table's
    location and not yet in the metastore are added (as Hive's)."""
    table, parts = catalog.resolve(t)
    names = [c["name"] for c in table["partition_cols"]]
    if not names:
        raise AnalysisError(f"MSCK REPAIR TABLE: {table['db']}.{table['name']} "
                            "is not partitioned")
    fs = session.client.fs
    known = {partition_dir(p["values"]) for p in parts or []}
    added = 0
    frontier = [(table["location"], 0)]
    while frontier:
        path, depth = frontier.pop()
        try:
            entries = fs.ls(path)
        except FileNotFoundError:
            continue
        for e in entries:
            if e["type"] != "directory" or not e["name"].startswith(f"{names[depth]}="):
                continue
            if depth + 1 < len(names):
                frontier.append((e["path"], depth + 1))
                continue
            rel = posixpath.relpath(e["path"], table["location"])
            values = parse_partition_dir(rel)
            if partition_dir(values) in known:
                continue
            if session.metastore.add_partition(table["db"], table["name"], values, e["path"]):
                added += 1
    return message(f"Repaired {added} partitions")


def show_create(table: dict) -> str:
    parts = {c["name"] for c in table["partition_cols"]}
    cols = ",\n  ".join(f"{c['name']} {c['type'].upper()}" for c in table["columns"]
                        if c["name"] not in parts)
    if table.get("view"):
        return f"CREATE VIEW {table['db']}.{table['name']} AS {table['view']}"
    text = f"CREATE {'EXTERNAL ' if table['external'] else ''}TABLE " \
           f"{table['db']}.{table['name']} (\n  {cols})"
    if parts:
        text += "\nPARTITIONED BY (" + ", ".join(
            f"{c['name']} {c['type'].upper()}" for c in table["partition_cols"]) + ")"
    if table["format"] in ("textfile", "csv"):
        d = table["delimiter"].encode("unicode_escape").decode()
        text += f"\nROW FORMAT DELIMITED FIELDS TERMINATED BY '{d}'"
    if table["format"] == "hbase":
        text += "\nSTORED BY 'org.apache.hadoop.hive.hbase.HBaseStorageHandler'"
    else:
        text += f"\nSTORED AS {table['format'].upper()}\nLOCATION '{table['location']}'"
    if table["properties"]:
        text += "\nTBLPROPERTIES (" + ", ".join(
            f"'{k}'='{v}'" for k, v in sorted(table["properties"].items())) + ")"
    return text


# -- helpers --------------------------------------------------------------------------


def _props(stmt: exp.Create) -> dict:
    out: dict = {"properties": {}}
    props = stmt.args.get("properties")
    for p in props.expressions if props else []:
        if isinstance(p, exp.ExternalProperty):
            out["external"] = True
        elif isinstance(p, exp.FileFormatProperty):
            out["format"] = (p.this.name if p.this is not None else "").lower()
        elif isinstance(p, exp.StorageHandlerProperty):
            from stackyard.sql.tablestore import is_handler
            handler = p.this.name if p.this is not None else ""
            if not is_handler(handler):
                raise AnalysisError(f"unsupported storage handler {handler!r} (the table "
                                    "store's: org.apache.hadoop.hive.hbase.HBaseStorageHandler)")
            out["format"] = "hbase"
        elif isinstance(p, exp.SerdeProperties):
            for o in p.expressions:
                out["properties"][o.name] = o.args["value"].name
        elif isinstance(p, exp.LocationProperty):
            out["location"] = p.this.name
        elif isinstance(p, exp.SchemaCommentProperty):
            out["comment"] = p.this.name
        elif isinstance(p, exp.PartitionedByProperty):
            cols = []
            for c in p.this.expressions:
                if isinstance(c, exp.ColumnDef):
                    cols.append({"name": c.name.lower(), "type": _type(c)})
                else:
                    cols.append(c.name.lower())
            out["partitioned"] = cols
        elif isinstance(p, exp.RowFormatDelimitedProperty):
            fields = p.args.get("fields")
            if fields is not None:
                out["delimiter"] = fields.name.encode().decode("unicode_escape")
        elif isinstance(p, exp.OptionsProperty):
            for o in p.expressions:
                key, value = o.name.lower(), o.args["value"].name
                if key in ("compression", "codec"):
                    out["compression"] = value.lower()
                elif key in ("sep", "delimiter"):
                    out["delimiter"] = value
                else:
                    out["properties"][key] = value
        elif isinstance(p, exp.Property):
            key, value = p.name, p.args["value"].name
            out["properties"][key] = value
            if key.lower() in ("parquet.compression", "orc.compress", "compression"):
                out["compression"] = value.lower()
    return out


def _columns(stmt: exp.Create) -> list[dict]:
    schema = stmt.this
    cols = [{"name": c.name.lower(), "type": _type(c)} for c in schema.expressions
            if isinstance(c, exp.ColumnDef)]
    seen = set()
    for c in cols:
        if c["name"] in seen:
            raise AnalysisError(f"column {c['name']!r} is named twice")
        seen.add(c["name"])
    return cols


def _type(c: exp.ColumnDef) -> str:
    kind = c.args.get("kind")
    if kind is None:
        raise AnalysisError(f"column {c.name!r} needs a type")
    t = kind.sql(dialect="spark").lower()
    arrow_type(t)                                   # unknown types fail here
    return t


def _table(name: str) -> exp.Table:
    return exp.to_table(name.replace("`", ""))


def _managed(session, catalog, t, what: str) -> dict:
    table, _ = catalog.resolve(t)
    if table["external"]:
        raise AnalysisError(f"{what}: {table['db']}.{table['name']} is EXTERNAL")
    return table


def _db_exists(session, name: str) -> bool:
    try:
        session.metastore.database(name)
        return True
    except AnalysisError:
        return False


def _rm(fs, path: str) -> None:
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def _like(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    import fnmatch
    return any(fnmatch.fnmatchcase(name, p.strip().replace("%", "*"))
               for p in pattern.split("|"))


def _rows(names: list[str], rows: list[tuple]) -> Result:
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return Result(pa.table({n: pa.array([str(v) for v in c], pa.string())
                            for n, c in zip(names, cols, strict=True)}))

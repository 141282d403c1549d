"""spark.catalog: the metastore's databases, tables and columns, the
session's temporary views, and the functions it knows, as the tables the
PySpark client reads its Database / Table / Column / Function rows from."""

from __future__ import annotations

import fnmatch

import pyarrow as pa

from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.expressions import split_identifier

CATALOG = "spark_catalog"
_STR = pa.string()


def _like(pattern: str, name: str) -> bool:
    if not pattern:
        return True
    return any(fnmatch.fnmatch(name.lower(), p.strip().lower().replace("%", "*"))
               for p in pattern.split("|"))


def _tables(rows: list[tuple]) -> pa.Table:
    return pa.table({
        "name": pa.array([r[0] for r in rows], _STR),
        "catalog": pa.array([r[1] for r in rows], _STR),
        "namespace": pa.array([r[2] for r in rows], pa.list_(_STR)),
        "description": pa.array([r[3] for r in rows], _STR),
        "tableType": pa.array([r[4] for r in rows], _STR),
        "isTemporary": pa.array([r[5] for r in rows], pa.bool_())})


def _db_row(ms, name: str) -> tuple:
    d = ms.database(name)
    return (name, CATALOG, d.get("comment") or "", d.get("location") or "")


def _databases(rows) -> pa.Table:
    return pa.table({"name": pa.array([r[0] for r in rows], _STR),
                     "catalog": pa.array([r[1] for r in rows], _STR),
                     "description": pa.array([r[2] for r in rows], _STR),
                     "locationUri": pa.array([r[3] for r in rows], _STR)})


def _split(session, table_name: str, db_name: str | None = None) -> tuple[str | None, str]:
    parts = split_identifier(table_name)
    if db_name:
        return db_name.lower(), parts[-1]
    if len(parts) >= 2:
        return parts[-2].lower(), parts[-1]
    return None, parts[0]


def _table_row(session, db: str | None, name: str) -> tuple | None:
    sql = session.sql
    if db is None and name.lower() in sql.local_tables and \
            sql.local_tables[name.lower()].get("view") is not None:
        return (name, None, [], None, "TEMPORARY", True)
    if db == "global_temp" and name.lower() in sql.global_tables:
        return (name, None, ["global_temp"], None, "TEMPORARY", True)
    db = db or sql.database
    t = sql.metastore.table(db, name.lower())
    if t is None:
        return None
    kind = "VIEW" if t.get("view") else ("EXTERNAL" if t.get("external") else "MANAGED")
    return (t["name"], CATALOG, [db], t.get("comment") or None, kind, False)


def _bool(v: bool) -> pa.Table:
    return pa.table({"value": pa.array([v], pa.bool_())})


def _str(v) -> pa.Table:
    return pa.table({"value": pa.array([v], _STR)})


def run(session, c) -> pa.Table:
    kind = c.WhichOneof("cat_type")
    sql, ms = session.sql, session.sql.metastore
    op = getattr(c, kind)
    if kind == "current_database":
        return _str(sql.database)
    if kind == "set_current_database":
        ms.database(op.db_name)
        sql.database = op.db_name.lower()
        return pa.table({})
    if kind == "current_catalog":
        return _str(CATALOG)
    if kind == "set_current_catalog":
        if op.catalog_name != CATALOG:
            raise ConnectError("CATALOG_NOT_FOUND",
                               f"The catalog `{op.catalog_name}` not found.", "42P08")
        return pa.table({})
    if kind == "list_catalogs":
        pattern = op.pattern if op.HasField("pattern") else ""
        names = [CATALOG] if _like(pattern, CATALOG) else []
        return pa.table({"name": pa.array(names, _STR),
                         "description": pa.array([None] * len(names), _STR)})
    if kind == "list_views":
        db = op.db_name.lower() if op.HasField("db_name") else sql.database
        pattern = op.pattern if op.HasField("pattern") else ""
        rows = [_table_row(session, db, t) for t in ms.tables(db) if _like(pattern, t)]
        rows = [r for r in rows if r and r[4] == "VIEW"]
        rows += [(n, None, [], None, "TEMPORARY", True)
                 for n, t in sorted(sql.local_tables.items())
                 if t.get("view") is not None and _like(pattern, n)]
        return _tables(rows)
    if kind == "get_table_properties":
        db, name = _split(session, op.table_name)
        t = ms.table(db or sql.database, name.lower())
        if t is None:
            raise ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                               f"The table or view `{op.table_name}` cannot be found.",
                               "42P01")
        props = {k: str(v) for k, v in (t.get("properties") or {}).items()}
        return pa.table({"key": pa.array(list(props), _STR),
                         "value": pa.array(list(props.values()), _STR)})
    if kind == "list_partitions":
        db, name = _split(session, op.table_name)
        from stackyard.sql.metastore import partition_dir
        parts = [partition_dir(p["values"]) for p in
                 ms.partitions(db or sql.database, name.lower())]
        return pa.table({"partition": pa.array(sorted(parts), _STR)})
    if kind == "analyze_table":
        sql.sql(f"ANALYZE TABLE {op.table_name} COMPUTE STATISTICS"
                + (" NOSCAN" if op.no_scan else ""))
        return pa.table({})
    if kind == "get_create_table_string":
        return _str(_create_string(session, op.table_name))
    if kind == "list_databases":
        pattern = op.pattern if op.HasField("pattern") else ""
        return _databases([_db_row(ms, d) for d in ms.databases() if _like(pattern, d)])
    if kind in ("get_database", "database_exists"):
        try:
            row = _db_row(ms, op.db_name.split(".")[-1])
        except Exception:
            if kind == "database_exists":
                return _bool(False)
            raise ConnectError("SCHEMA_NOT_FOUND",
                               f"The schema `{op.db_name}` cannot be found.", "42704") from None
        return _bool(True) if kind == "database_exists" else _databases([row])
    if kind == "list_tables":
        db = op.db_name.lower() if op.HasField("db_name") else sql.database
        pattern = op.pattern if op.HasField("pattern") else ""
        rows = [(n, None, [], None, "TEMPORARY", True)          # Spark lists them first
                for n, t in sorted(sql.local_tables.items())
                if t.get("view") is not None and _like(pattern, n)]
        rows += [_table_row(session, db, t) for t in ms.tables(db) if _like(pattern, t)]
        return _tables([r for r in rows if r])
    if kind in ("get_table", "table_exists"):
        db, name = _split(session, op.table_name, op.db_name if op.HasField("db_name")
                          else None)
        row = _table_row(session, db, name)
        if kind == "table_exists":
            return _bool(row is not None)
        if row is None:
            raise ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                               f"The table or view `{op.table_name}` cannot be found.",
                               "42P01")
        return _tables([row])
    if kind == "list_columns":
        return _columns(session, op)
    if kind in ("drop_temp_view", "drop_global_temp_view"):
        store = sql.local_tables if kind == "drop_temp_view" else sql.global_tables
        found = store.get(op.view_name.lower())
        if found is not None and found.get("view") is not None:
            del store[op.view_name.lower()]
            return _bool(True)
        return _bool(False)
    if kind in ("function_exists",):
        name = op.function_name.lower()
        return _bool(name in sql.udf.functions or name in _builtin_names())
    if kind == "list_functions":
        pattern = op.pattern if op.HasField("pattern") else ""
        names = sorted(n for n in set(sql.udf.functions) | _builtin_names()
                       if not n.startswith("__") and _like(pattern, n))
        return pa.table({"name": pa.array(names, _STR),
                         "catalog": pa.array([None] * len(names), _STR),
                         "namespace": pa.array([None] * len(names), pa.list_(_STR)),
                         "description": pa.array([None] * len(names), _STR),
                         "className": pa.array([""] * len(names), _STR),
                         "isTemporary": pa.array([n in sql.udf.functions for n in names],
                                                 pa.bool_())})
    if kind in ("is_cached", "cache_table", "uncache_table", "truncate_table"):
        db, name = _split(session, op.table_name)
        if _table_row(session, db, name) is None:
            raise ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                               f"The table or view `{op.table_name}` cannot be found.",
                               "42P01")
    if kind == "truncate_table":
        sql.sql(f"TRUNCATE TABLE {op.table_name}")
        return pa.table({})
    if kind in ("is_cached",):
        return _bool(op.table_name.lower() in session.cached_tables)
    if kind == "cache_table":
        session.cached_tables.add(op.table_name.lower())
        return pa.table({})
    if kind == "uncache_table":
        session.cached_tables.discard(op.table_name.lower())
        return pa.table({})
    if kind == "clear_cache":
        session.cached_tables.clear()
        return pa.table({})
    if kind in ("refresh_table", "refresh_by_path"):
        return pa.table({})
    if kind == "recover_partitions":
        sql.sql(f"MSCK REPAIR TABLE {op.table_name}")
        return pa.table({})
    if kind == "drop_table":
        sql.sql(f"DROP TABLE {'IF EXISTS ' if op.if_exists else ''}{op.table_name}")
        return pa.table({})
    if kind == "drop_view":
        sql.sql(f"DROP VIEW {'IF EXISTS ' if op.if_exists else ''}{op.view_name}")
        return pa.table({})
    if kind == "create_database":
        sql.sql(f"CREATE DATABASE {'IF NOT EXISTS ' if op.if_not_exists else ''}{op.db_name}")
        return pa.table({})
    if kind == "drop_database":
        sql.sql(f"DROP DATABASE {'IF EXISTS ' if op.if_exists else ''}{op.db_name}"
                f"{' CASCADE' if op.cascade else ''}")
        return pa.table({})
    if kind in ("create_table", "create_external_table"):
        from stackyard.sparkconnect.write import create_table
        return create_table(session, op)
    raise ConnectError("UNSUPPORTED_FEATURE", f"spark.catalog {kind} is not supported",
                       "0A000")


def _columns(session, op) -> pa.Table:
    from stackyard.sparkconnect.sources import named_table
    db = op.db_name if op.HasField("db_name") else None
    ident = f"{db}.{op.table_name}" if db else op.table_name
    rel = named_table(session, ident)
    schema = session.schema(rel)
    parts = set()
    d, name = _split(session, op.table_name, db)
    t = session.sql.metastore.table(d or session.sql.database, name.lower()) \
        if (d or name.lower() not in session.sql.local_tables) else None
    if t:
        parts = {c["name"] for c in t.get("partition_cols") or []}
    from stackyard.sparkconnect.types import sql_name
    n = len(schema)
    return pa.table({"name": pa.array(schema.names, _STR),
                     "description": pa.array([None] * n, _STR),
                     "dataType": pa.array([sql_name(f.type) for f in schema], _STR),
                     "nullable": pa.array([True] * n, pa.bool_()),
                     "isPartition": pa.array([f.name in parts for f in schema], pa.bool_()),
                     "isBucket": pa.array([False] * n, pa.bool_()),
                     "isCluster": pa.array([False] * n, pa.bool_())})


def _builtin_names() -> set[str]:
    from sqlglot.dialects.spark import Spark
    return {k.lower() for k in Spark.Parser.FUNCTIONS}


def _create_string(session, table_name: str) -> str:
    db, name = _split(session, table_name)
    t = session.sql.metastore.table(db or session.sql.database, name.lower())
    if t is None:
        raise ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                           f"The table or view `{table_name}` cannot be found.", "42P01")
    cols = ",\n  ".join(f"{c['name']} {c['type'].upper()}" for c in t["columns"])
    using = {"parquet": "parquet", "orc": "orc", "csv": "csv", "jsonfile": "json",
             "textfile": "text"}.get(t["format"], t["format"])
    text = f"CREATE TABLE {CATALOG}.{t['db']}.{t['name']} (\n  {cols})\nUSING {using}"
    if t["partition_cols"]:
        text += "\nPARTITIONED BY (" + ", ".join(c["name"] for c in t["partition_cols"]) + ")"
    if t.get("external"):
        text += f"\nLOCATION '{t['location']}'"
    return text + "\n"

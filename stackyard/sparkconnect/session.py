"""One Spark Connect session: a SQL session of its own (current database,
settings, temporary views, UDFs, an engine driver whose jobs form the
session's job groups), the client's artifacts, and its recent executions
(kept for ReattachExecute until the client releases them)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import cloudpickle
import pyarrow as pa
from sqlglot import exp

from stackyard.sparkconnect import types
from stackyard.sparkconnect.artifacts import Artifacts
from stackyard.sparkconnect.conf import SessionConf
from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.expressions import Col
from stackyard.sparkconnect.rel import Namer, Rel, project
from stackyard.sparkconnect.udfs import (  # noqa: E402  (PySpark's eval types)
    ARROW_BATCHED_UDF,
    BATCHED_UDF,
    SCALAR_ARROW_UDF,
    SCALAR_PANDAS_UDF,
    rowwise,
    vectorized,
)
from stackyard.sql.catalog import LOCAL_DB, Catalog
from stackyard.sql.session import Session
from stackyard.sql.types import hive_type


class ConnectSession:
    def __init__(self, server, user_id: str, session_id: str):
        self.server, self.user_id, self.session_id = server, user_id, session_id
        self.server_side_id = str(uuid.uuid4())
        self.sql = Session(server.client, context=None, progress=False,
                           app_name=f"spark-connect {user_id or 'anonymous'} {session_id[:8]}")
        self.sql.global_tables = server.global_tables
        self.conf = SessionConf(self)
        self.artifacts = Artifacts(server.artifact_root, session_id)
        self.executions: dict[str, list] = {}
        self.lock = threading.RLock()
        self.last_used = time.time()
        self._ids = itertools.count(1)
        self.cached: dict[bytes, str] = {}
        self.persisted: dict[bytes, dict] = {}
        self.cached_tables: set[str] = set()
        self.by_key: dict = {}

    def close(self) -> None:
        for hit in self.persisted.values():
            hit["executor"].close()
        self.persisted.clear()
        self.sql.close()
        self.artifacts.remove()

    # -- tables the session holds -------------------------------------------------------

    def next_alias(self) -> str:
        """A FROM alias no other part of any plan of this session uses (sqlglot
        merges subqueries, and two sources called alike would then clash)."""
        return f"s{next(self._ids)}"

    def register_table(self, table: dict) -> str:
        name = f"__t{next(self._ids)}"
        self.sql.local_tables[name] = dict(table, db=LOCAL_DB, name=name)
        return name

    def table_rel(self, table: pa.Table, like: Rel | None = None, key=None) -> Rel:
        """A relation over rows at hand; visible names from TABLE (or LIKE).
        Rows registered under the same KEY (the client's bytes) are one table."""
        names = like.names if like is not None else table.column_names
        if not names:                  # a command's empty answer
            return Rel(exp.select(exp.alias_(exp.Literal.number(1), "__none")).where(
                exp.false()), [])
        namer = Namer()
        internal = [namer(n) for n in names]
        name = self.by_key.get(key) if key is not None else None
        if name is None or name not in self.sql.local_tables:
            rows = pa.Table.from_arrays(list(table.columns), names=internal)
            cols = [{"name": n, "type": hive_type(t)}
                    for n, t in zip(internal, rows.schema.types, strict=True)]
            name = self.register_table({"columns": cols, "partition_cols": [], "memory": rows,
                                        "format": "memory", "view": None, "properties": {},
                                        "stats": {}, "location": ""})
            if key is not None:
                self.by_key[key] = name
        alias = self.next_alias()
        t = exp.Table(this=exp.to_identifier(name, quoted=True),
                      db=exp.to_identifier(LOCAL_DB), alias=exp.TableAlias(
                          this=exp.to_identifier(alias)))
        out = Namer()
        items = [(exp.column(i, alias, quoted=True),
                  Col(n, out(n), like.cols[k].plan_ids if like else frozenset()))
                 for k, (i, n) in enumerate(zip(internal, names, strict=True))]
        return project(t, items)

    def constant_rel(self, planner, exprs) -> Rel:
        from stackyard.sparkconnect.expressions import Scope
        items = planner.select_items(Scope([]), exprs)
        sel = exp.select(*[exp.alias_(e, c.internal, quoted=True) for e, c in items])
        return Rel(sel, [c for _, c in items])

    # -- running ------------------------------------------------------------------------

    def catalog(self, text: str = "") -> Catalog:
        c = Catalog(self.sql.metastore, self.sql.client.fs, text, self.sql.local_tables,
                    self.sql.global_tables)
        c.database = self.sql.database
        c.client = self.sql.client
        return c

    def run_query(self, query: exp.Expression) -> pa.Table:
        """QUERY's rows, its columns as the query names them."""
        return self.sql.execute(query.copy()).arrow()

    def collect(self, rel: Rel) -> pa.Table:
        if not rel.cols:               # select(): rows without columns (isEmpty, count)
            sub = exp.Subquery(this=rel.query, alias=exp.TableAlias(
                this=exp.to_identifier("z")))
            n = self.run_query(exp.select(exp.alias_(exp.Count(this=exp.Star()), "n"))
                               .from_(sub)).column(0)[0].as_py()
            batch = pa.RecordBatch.from_struct_array(pa.array([{}] * n, pa.struct([])))
            return pa.Table.from_batches([batch])
        table = self.run_query(rel.query)
        table = pa.Table.from_arrays(list(table.columns), names=rel.names)
        return types.to_spark_table(table)

    def schema(self, rel: Rel) -> pa.Schema:
        root, _ = self.sql.plan(rel.query.copy(), self.catalog())
        fields = [pa.field(n, types.spark_arrow(t)) for n, t in zip(rel.names,
                                                                      root.schema.types,
                                                                      strict=False)]
        return pa.schema(fields)

    def sql_query_rel(self, text: str) -> Rel:
        from stackyard.sql.parser import parse
        stmts = parse(text, self.sql.dialect)
        if len(stmts) != 1:
            raise ConnectError("PARSE_SYNTAX_ERROR", "spark.sql runs one statement", "42601")
        stmt = stmts[0]
        from stackyard.sql.session import QUERIES
        if not isinstance(stmt, QUERIES):
            return self.table_rel(self.sql.execute(stmt, text).arrow())
        optimized = self.catalog(text).compile(stmt.copy())
        names = list(optimized.named_selects) if hasattr(optimized, "named_selects") else []
        namer = Namer()
        alias = "q"
        sub = exp.Subquery(this=stmt, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        if len(set(n.lower() for n in names)) == len(names):
            items = [(exp.column(n, alias, quoted=True), Col(n, namer(n))) for n in names]
            return project(sub, items)
        return self.table_rel(self.sql.execute(stmt, text).arrow())

    # -- caching and interrupts ----------------------------------------------------------

    def persist(self, relation, level) -> None:
        """df.persist(): the relation's partitions kept in the workers' block
        stores, computed by the first job that needs them (Spark's lazy
        cache); later plans holding the same relation read them from there."""
        from pyspark.sql.connect.proto import common_pb2

        from stackyard.dataset.storage import StorageLevel
        from stackyard.sparkconnect.relations import RelationPlanner
        from stackyard.sql.executor import Executor
        key = relation.SerializeToString()
        if key in self.persisted:
            return
        lvl = common_pb2.StorageLevel()
        if level is not None:
            lvl.CopyFrom(level)
        else:
            lvl.use_memory, lvl.use_disk, lvl.deserialized, lvl.replication = True, True, True, 1
        rel = RelationPlanner(self).plan(relation)
        root, _ = self.sql.plan(rel.query.copy(), self.catalog())
        ex = Executor(self.sql.ctx)
        rdd = self.sql.ctx._rdd(ex.node(root)).persist(StorageLevel(
            lvl.use_disk, lvl.use_memory or not lvl.use_disk, lvl.use_off_heap,
            lvl.deserialized, max(1, lvl.replication)))
        cols = [{"name": n, "type": hive_type(t)} for n, t in zip(root.schema.names,
                                                                  root.schema.types,
                                                                  strict=True)]
        cached = {"node": rdd._node, "schema": root.schema, "partitions": root.partitions,
                  "rows": root.rows, "bytes": root.bytes}
        name = self.register_table({"columns": cols, "partition_cols": [], "cached": cached,
                                    "format": "cache", "view": None, "properties": {},
                                    "stats": {}, "location": ""})
        self.persisted[key] = {"level": lvl, "rdd": rdd, "executor": ex, "name": name,
                               "cols": rel.cols, "internal": root.schema.names}

    def cached_rel(self, relation) -> Rel | None:
        hit = self.persisted.get(relation.SerializeToString()) if self.persisted else None
        if hit is None:
            return None
        alias = self.next_alias()
        t = exp.Table(this=exp.to_identifier(hit["name"], quoted=True),
                      db=exp.to_identifier(LOCAL_DB), alias=exp.TableAlias(
                          this=exp.to_identifier(alias)))
        items = [(exp.column(i, alias, quoted=True), Col(c.name, c.internal, c.plan_ids,
                                                         c.qualifiers))
                 for i, c in zip(hit["internal"], hit["cols"], strict=True)]
        return project(t, items)

    def unpersist(self, relation) -> None:
        hit = self.persisted.pop(relation.SerializeToString(), None)
        if hit is not None:
            hit["rdd"].unpersist()
            hit["executor"].close()
            self.sql.local_tables.pop(hit["name"], None)

    def storage_level(self, relation):
        from pyspark.sql.connect.proto import common_pb2
        hit = self.persisted.get(relation.SerializeToString())
        return hit["level"] if hit else common_pb2.StorageLevel(replication=1)

    def remove_cached(self, relation_id: str) -> None:
        pass

    def interrupt(self) -> list[str]:
        ctx = self.sql._ctx
        ids = list(self.executions)
        if ctx is not None:
            try:
                ctx.cancelAllJobs()
            except Exception:
                pass
        return ids

    # -- UDFs -----------------------------------------------------------------------------

    def python_udf(self, f) -> str:
        """Register the client's pickled function; the name SQL calls it by."""
        key = f.python_udf.command
        if key in self.cached:
            return self.cached[key]
        func, _ = cloudpickle.loads(f.python_udf.command)
        ret = types.to_sql(f.python_udf.output_type)
        name = f"__udf_{next(self._ids)}"
        eval_type = f.python_udf.eval_type
        files = self.artifacts.python_files()
        if eval_type in (SCALAR_PANDAS_UDF, SCALAR_ARROW_UDF, ARROW_BATCHED_UDF):
            wrapped = vectorized(func, eval_type, files,
                                  types.to_arrow(f.python_udf.output_type))
            self.sql.udf.register(name, wrapped, ret, vectorized=True)
        elif eval_type == BATCHED_UDF:
            self.sql.udf.register(name, rowwise(func, ret, files), ret)
        else:
            raise ConnectError("UNSUPPORTED_FEATURE",
                               f"Python UDFs of eval type {eval_type} are not supported",
                               "0A000")
        self.cached[key] = name
        return name

"""Names to tables for one session: the current database, views expanded
into their queries, the schema sqlglot qualifies a query against, and the
scans the planner asks for."""

from __future__ import annotations

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.optimizer import RULES as OPTIMIZER_RULES
from sqlglot.optimizer import optimize
from sqlglot.optimizer.canonicalize import canonicalize

from stackyard.sql.errors import AnalysisError, position
from stackyard.sql.parser import locate, parse
from stackyard.sql.tables import PATH_FORMATS, path_table, plan_scan

MAX_VIEW_DEPTH = 32


def _canonicalize_keeping_casts(expression, dialect=None, **_):
    """sqlglot's canonicalize, but every CAST stays: it drops a cast whose
    operand Spark's typing already gives the target type, and DuckDB, which
    runs the query, types some operands otherwise (sign(int) is an int)."""
    for c in expression.find_all(exp.Cast):
        c.this.type = None
    return canonicalize(expression, dialect=dialect)


RULES = tuple(_canonicalize_keeping_casts if r is canonicalize else r for r in OPTIMIZER_RULES)
LOCAL_DB = "__session"


class Catalog:
    def __init__(self, metastore, fs, sql_text: str = "", local: dict | None = None,
                 global_: dict | None = None):
        self.metastore, self.fs = metastore, fs
        # a session's own tables, by lower-case name: temporary views (their
        # query), and rows or files a front end registered (Spark Connect's
        # local relations and data-source reads); `global_temp.x`: the server's
        self.local = local if local is not None else {}
        self.global_ = global_ if global_ is not None else {}
        self.database = "default"
        self.text = sql_text
        self.parallelism = 2
        self.client = None        # the cluster's client, for tables not in files
        self._tables: dict[tuple[str, str], tuple[dict, list | None]] = {}

    # -- names --------------------------------------------------------------------------

    def qualified(self, t: exp.Table) -> tuple[str, str]:
        self.mark_local(t)
        return (t.db or self.database).lower(), t.name if _is_path(t) else t.name.lower()

    def mark_local(self, t: exp.Table) -> None:
        """An unqualified name of a session table is that table (Spark: a
        temporary view hides a table of the same name); it is marked so,
        before sqlglot qualifies it with the current database."""
        if not t.db and t.name.lower() in self.local and not _in_cte(t):
            t.set("db", exp.to_identifier(LOCAL_DB))

    def _session_table(self, t: exp.Table) -> dict | None:
        if t.db == LOCAL_DB:
            return self.local.get(t.name.lower())
        if t.db.lower() == "global_temp":
            found = self.global_.get(t.name.lower())
            if found is None:
                line, col = position(self.text, t.this)
                raise AnalysisError(f"Table or view not found: global_temp.{t.name}", line, col)
            return found
        return None

    def lookup(self, t: exp.Table) -> dict:
        key = self.qualified(t)
        if key not in self._tables:
            db, name = key
            own = self._session_table(t)
            if own is not None:
                self._tables[key] = (own, None)
                return own
            if _is_path(t):
                table = path_table(self.fs, db, name)
            else:
                table = self.metastore.table(db, name)
                if table is None:
                    self.metastore.database(db)      # "Database 'x' not found" first
                    line, col = position(self.text, t.this)
                    raise AnalysisError(f"Table or view not found: {db}.{name}", line, col)
            self._tables[key] = (table, None)
        return self._tables[key][0]

    def resolve(self, t: exp.Table) -> tuple[dict, list | None]:
        table = self.lookup(t)
        key = self.qualified(t)
        parts = self._tables[key][1]
        if parts is None and table["partition_cols"]:
            parts = table["partitions"] if "partitions" in table else \
                self.metastore.partitions(table["db"], table["name"])
            self._tables[key] = (table, parts)
        return table, parts

    def scan(self, table: dict, partitions, columns, conjuncts):
        if table["format"] == "hbase":
            from stackyard.sql import tablestore
            return tablestore.plan(self.client.tables, table, columns, conjuncts,
                                   self.parallelism)
        return plan_scan(self.fs, table, partitions, columns, conjuncts, self.parallelism)

    # -- compiling a query --------------------------------------------------------------

    def compile(self, query: exp.Expression) -> exp.Expression:
        """QUERY with views expanded, qualified and optimized by sqlglot."""
        query = self.expand_views(query)
        schema: dict = {}
        ctes = {c.alias_or_name for c in query.find_all(exp.CTE)}
        for t in query.find_all(exp.Table):
            if not t.db and t.name in ctes:
                continue
            table = self.lookup(t)
            db, name = self.qualified(t)
            schema.setdefault(db, {})[name] = {c["name"]: c["type"] for c in table["columns"]}
        try:
            return optimize(query, schema=schema, db=self.database, dialect="spark",
                            rules=RULES)
        except sqlglot.errors.OptimizeError as e:
            raise self._analysis(str(e)) from None
        except sqlglot.errors.SqlglotError as e:
            raise AnalysisError(str(e).splitlines()[0]) from None

    def _analysis(self, message: str) -> AnalysisError:
        import re
        m = re.search(r"Column '\"?([^'\"]+)\"?' could not be resolved", message)
        if m:
            line, col = locate(self.text, m.group(1))
            return AnalysisError(f"Column '{m.group(1)}' does not exist", line, col)
        m = re.search(r"Unknown table: '?\"?([^'\"]+)", message)
        if m:
            line, col = locate(self.text, m.group(1))
            return AnalysisError(f"Table or alias '{m.group(1)}' not found", line, col)
        return AnalysisError(message.splitlines()[0])

    def expand_views(self, query: exp.Expression) -> exp.Expression:
        for _ in range(MAX_VIEW_DEPTH):
            ctes = {c.alias_or_name for c in query.find_all(exp.CTE)}
            views = []
            for t in query.find_all(exp.Table):
                if (not t.db and t.name in ctes) or _is_path(t):
                    continue
                table = self.lookup(t)
                if table.get("view"):
                    views.append((t, table))
            if not views:
                return query
            for t, table in views:
                view = table["view"]
                body = parse(view)[0] if isinstance(view, str) else view.copy()
                t.replace(exp.Subquery(this=body, alias=exp.TableAlias(
                    this=exp.to_identifier(t.alias_or_name))))
        raise AnalysisError(f"views nest more than {MAX_VIEW_DEPTH} deep (a cycle?)")

    # -- queries without tables ----------------------------------------------------------

    def constant_select(self, sel: exp.Select) -> pa.Table:
        from stackyard.sql.fragments import run_sql
        from stackyard.sql.udf import used_by
        text = sel.sql(dialect="duckdb")
        try:
            return run_sql(text, {}, udfs=used_by(text))
        except Exception as e:
            from stackyard.sql.physical import _duckdb_message
            raise AnalysisError(_duckdb_message(e)) from None

    def values_table(self, values: exp.Values) -> pa.Table:
        from stackyard.sql.fragments import run_sql
        return run_sql(f"SELECT * FROM {values.sql(dialect='duckdb')}", {})


def _in_cte(t: exp.Table) -> bool:
    names = set()
    node = t.parent
    while node is not None:
        w = node.args.get("with") or node.args.get("with_")
        if w is not None:
            names |= {c.alias_or_name for c in w.expressions}
        node = node.parent
    return t.name in names


def _is_path(t: exp.Table) -> bool:
    return bool(t.db) and t.db.lower() in PATH_FORMATS and t.name.startswith("/")

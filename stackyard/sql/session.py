"""A SQL session: its current database and settings, over one cluster's
metastore, DFS and engine. `sql()` runs statements one after another and
returns the last one's result."""

from __future__ import annotations

import re
import threading

from sqlglot import exp

from stackyard.errors import ClusterUnavailable
from stackyard.sql import ddl, dml
from stackyard.sql.catalog import Catalog
from stackyard.sql.errors import AnalysisError, ParseError, SqlError
from stackyard.sql.executor import Executor
from stackyard.sql.metastore import Metastore
from stackyard.sql.parser import parse
from stackyard.sql.physical import SUBQUERIES, explain
from stackyard.sql.planner import Conf, Planner
from stackyard.sql.result import Result, message
from stackyard.sql.udf import UDFS, UdfRegistry

QUERIES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
CONF_KEYS = {"spark.sql.shuffle.partitions": "shuffle_partitions",
             "spark.sql.autoBroadcastJoinThreshold": "broadcast_threshold"}


class Session:
    def __init__(self, client, database: str = "default", dialect: str = "spark",
                 context=None, progress: bool | None = None, app_name: str = "stackyard-sql"):
        self.client = client
        self.dialect = dialect
        self.metastore = Metastore(client.coord)
        self.database = database
        self.conf = Conf()
        self.settings: dict[str, str] = {}
        self._ctx = context
        self._own_ctx = context is None
        self._progress = progress
        self.app_name = app_name
        self._lock = threading.Lock()
        self.history: list[dict] = []
        self.udf = UdfRegistry()
        self._statements = 0
        self.local_tables: dict[str, dict] = {}       # temporary views, front ends' rows
        self.global_tables: dict[str, dict] = {}      # global_temp (a server shares one)

    @property
    def ctx(self):
        if self._ctx is None:
            self._ctx = self.client.context(self.app_name, progress=self._progress)
            slots = self._slots()
            self.conf.shuffle_partitions = max(2, 2 * slots)
        return self._ctx

    def _slots(self) -> int:
        try:
            return max(1, self._ctx.defaultParallelism)
        except Exception:
            return 2

    def close(self) -> None:
        if self._ctx is not None and self._own_ctx:
            self._ctx.stop()
        self._ctx = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- statements ---------------------------------------------------------------------

    def sql(self, text: str, params: list | tuple | None = None) -> Result:
        if params:
            text = bind(text, params)
        result = message("OK")
        for stmt in parse(text, self.dialect):
            result = self.execute(stmt, text)
        return result

    def execute(self, stmt: exp.Expression, text: str = "") -> Result:
        """STMT, its jobs in a job group of their own (the scheduler's SQL page)."""
        ctas = isinstance(stmt, exp.Create) and stmt.args.get("expression") is not None \
            and (stmt.args.get("kind") or "").upper() == "TABLE"
        if isinstance(stmt, QUERIES + (exp.Insert,)) or ctas:
            self._statements += 1
            self.ctx.setJobGroup(f"sql-{self.ctx.applicationId[-6:]}-{self._statements}",
                                 " ".join(stmt.sql(dialect="spark").split())[:300])
        return self._execute(stmt, text)

    def _execute(self, stmt: exp.Expression, text: str = "") -> Result:
        catalog = Catalog(self.metastore, self.client.fs, text or stmt.sql(),
                          self.local_tables, self.global_tables)
        catalog.database = self.database
        catalog.client = self.client
        if isinstance(stmt, QUERIES):
            return self.query(stmt, catalog, text)
        if isinstance(stmt, exp.Command):
            return self.command(stmt, catalog, text)
        if isinstance(stmt, exp.Use):
            name = stmt.this.name
            self.metastore.database(name)
            self.database = name.lower()
            return message(f"using {self.database}")
        if isinstance(stmt, exp.Set):
            return self.set(stmt)
        if isinstance(stmt, exp.Insert | exp.LoadData):
            return dml.run(self, stmt, catalog)
        if isinstance(stmt, exp.Create) and stmt.args.get("expression") is not None \
                and (stmt.args.get("kind") or "").upper() == "TABLE":
            return dml.create_table_as(self, stmt, catalog)
        return ddl.run(self, stmt, catalog)

    def plan(self, query: exp.Expression, catalog: Catalog):
        optimized = catalog.compile(query)
        try:
            catalog.parallelism = max(1, self.ctx.defaultParallelism)
        except ClusterUnavailable:         # no engine: a view can still be checked
            catalog.parallelism = 2
        token = SUBQUERIES.set({})
        funcs = UDFS.set(self.udf.functions)
        try:
            return Planner(catalog, self.conf).plan(optimized), optimized
        finally:
            SUBQUERIES.reset(token)
            UDFS.reset(funcs)

    def query(self, query: exp.Expression, catalog: Catalog, text: str = "") -> Result:
        root, _ = self.plan(query, catalog)
        table = self.run_plan(root, query.sql(dialect="spark"))
        return Result(table.rename_columns([_visible(n) for n in table.column_names]))

    def run_plan(self, root, text: str):
        from stackyard.sql import local
        if local.eligible(root):
            return local.run(root)
        ctx = self.ctx
        ctx.setJobDescription(("SQL: " + " ".join(text.split()))[:300])
        ex = Executor(ctx)
        try:
            return ex.collect(root)
        finally:
            ex.close()

    def command(self, stmt: exp.Command, catalog: Catalog, text: str) -> Result:
        word = str(stmt.this).upper()
        rest = stmt.expression.name if stmt.expression is not None else ""
        if word == "EXPLAIN":
            m = re.match(r"\s*(EXTENDED|FORMATTED|CODEGEN|COST)?\s*(.*)$", rest, re.S | re.I)
            mode, body = (m.group(1) or "").upper(), m.group(2)
            inner = parse(body, self.dialect)
            if len(inner) != 1 or not isinstance(inner[0], QUERIES + (exp.Insert,)):
                raise ParseError("EXPLAIN takes one query")
            target = inner[0].expression if isinstance(inner[0], exp.Insert) else inner[0]
            root, optimized = self.plan(target, catalog)
            text = ""
            if mode == "EXTENDED":
                text = "== Optimized Logical Plan ==\n" + optimized.sql(dialect="spark",
                                                                        pretty=True) + "\n\n"
            text += "== Physical Plan ==\n" + explain(root, mode == "EXTENDED")
            return message(text)
        return ddl.command(self, word, rest, catalog)

    def set(self, stmt: exp.Set) -> Result:
        for item in stmt.expressions:
            e = item.this
            if not isinstance(e, exp.EQ):
                raise ParseError(f"SET expects key=value, got {item.sql()}")
            key = e.this.sql(dialect="spark").replace(" ", "")
            value = e.expression.name if isinstance(e.expression, exp.Literal) \
                else e.expression.sql(dialect="spark")
            self.settings[key] = value
            if key in CONF_KEYS:
                try:
                    number = _bytes(value) if "Threshold" in key else int(value)
                except ValueError:
                    raise AnalysisError(f"{key}: expected a number, got {value!r}") from None
                if key == "spark.sql.shuffle.partitions" and number < 1:
                    raise AnalysisError(f"{key}: must be positive, got {number}")
                setattr(self.conf, CONF_KEYS[key], number)
        return message("OK")


def _visible(name: str) -> str:
    return name


def _bytes(value: str) -> int:
    m = re.fullmatch(r"\s*(-?\d+)\s*([kmgt]?)b?\s*", value.lower())
    if not m:
        raise ValueError(value)
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
                              "t": 1 << 40}[m.group(2)]


def bind(text: str, params, render=None) -> str:
    """TEXT with each ? (outside quotes) replaced by a SQL literal of the next
    parameter (RENDER makes it; default: a Python value's literal)."""
    from stackyard.sql.dbapi import literal
    render = render or literal
    out, it, quote = [], iter(params), None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
            out.append(ch)
        elif ch in "'\"`":
            quote = ch
            out.append(ch)
        elif ch == "?":
            try:
                out.append(render(next(it)))
            except StopIteration:
                raise SqlError("fewer parameters than ? placeholders") from None
        else:
            out.append(ch)
    if next(it, _END) is not _END:
        raise SqlError("more parameters than ? placeholders")
    return "".join(out)


_END = object()

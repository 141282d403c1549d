"""SQL over the DFS (Hive / Spark SQL): a metastore in the coordination cell,
queries parsed by sqlglot, planned here into stages on the engine, and each
task's plan fragment run by DuckDB over Arrow.

`Session` is the entry point (`sy.connect().sql(...)` uses one); `connect()`
is the DB-API 2.0 face of the same thing."""

from stackyard.sql.errors import AnalysisError, ParseError, SqlError

__all__ = ["AnalysisError", "ParseError", "SqlError", "Session", "connect"]


def __getattr__(name):
    if name == "Session":
        from stackyard.sql.session import Session
        return Session
    if name == "connect":
        from stackyard.sql.dbapi import connect
        return connect
    raise AttributeError(name)

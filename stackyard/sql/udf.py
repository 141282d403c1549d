"""Python functions callable from SQL (Spark's spark.udf.register): scalar
ones called a row at a time, vectorized ones with Arrow arrays (a batch at a
time). They run in the workers: a fragment that names one carries it, by
value, in the job's payload, and registers it with its DuckDB connection."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from sqlglot import exp

from stackyard.sql.errors import AnalysisError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the session's functions while one of its statements is planned
UDFS: ContextVar[dict | None] = ContextVar("udfs", default=None)


@dataclass(frozen=True)
class Udf:
    name: str
    func: Callable
    return_type: str              # DuckDB's name of the result type
    vectorized: bool = False

    def register(self, con) -> None:
        con.create_function(self.name, self.func, None, self.return_type,
                            type="arrow" if self.vectorized else "native",
                            side_effects=False)


class UdfRegistry:
    """session.udf: register(name, f, returnType="string", vectorized=False)."""

    def __init__(self):
        self.functions: dict[str, Udf] = {}

    def register(self, name: str, f: Callable, returnType: str = "string",  # noqa: N803
                 vectorized: bool = False) -> Callable:
        if not _NAME.match(name or ""):
            raise AnalysisError(f"invalid function name {name!r}")
        if not callable(f):
            raise AnalysisError(f"{name}: expected a callable, got {type(f).__name__}")
        try:
            duck = exp.DataType.build(returnType, dialect="spark").sql(dialect="duckdb")
        except Exception:
            raise AnalysisError(f"{name}: unknown return type {returnType!r}") from None
        self.functions[name.lower()] = Udf(name.lower(), f, duck, vectorized)
        return f

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.functions


def used_by(sql: str) -> list[Udf]:
    """The registered functions SQL calls."""
    funcs = UDFS.get() or {}
    return [u for name, u in funcs.items()
            if re.search(r"(?<![\w.])" + re.escape(name) + r"\s*\(", sql, re.IGNORECASE)]

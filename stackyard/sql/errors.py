"""The errors a SQL user sees: each one line that names the problem and,
where the statement text has it, the line and column."""

from __future__ import annotations


class SqlError(Exception):
    """Base of every SQL error; `line` and `col` are 1-based, or None."""

    kind = "SQL error"

    def __init__(self, message: str, line: int | None = None, col: int | None = None):
        self.message, self.line, self.col = message, line, col
        where = f" (line {line}, column {col})" if line is not None else ""
        super().__init__(f"{message}{where}")


class ParseError(SqlError):
    kind = "syntax error"


class AnalysisError(SqlError):
    """Unknown table, unknown column, a type mismatch, a DDL conflict."""
    kind = "analysis error"


class ExecutionError(SqlError):
    kind = "execution error"


def position(sql: str, node) -> tuple[int | None, int | None]:
    """Where sqlglot's NODE starts in SQL, 1-based (its tokens keep their offsets)."""
    meta = getattr(node, "meta", None) or {}
    start = meta.get("start")
    if start is None:
        return None, None
    return line_col(sql, start)


def line_col(sql: str, offset: int) -> tuple[int, int]:
    line = sql.count("\n", 0, offset) + 1
    return line, offset - (sql.rfind("\n", 0, offset) + 1) + 1

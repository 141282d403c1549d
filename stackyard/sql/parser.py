"""Statements from text, by sqlglot, in Spark's dialect (Hive's on request):
one error with the line and column where the parser stopped."""

from __future__ import annotations

import logging

import sqlglot
from sqlglot import exp

from stackyard.sql.errors import ParseError, line_col

logging.getLogger("sqlglot").setLevel(logging.ERROR)

DIALECTS = ("spark", "hive", "databricks", "duckdb")


def parse(sql: str, dialect: str = "spark") -> list[exp.Expression]:
    if dialect not in DIALECTS:
        raise ParseError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
    if not sql or not sql.strip().strip(";").strip():
        raise ParseError("empty statement")
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except sqlglot.errors.ParseError as e:
        first = e.errors[0] if e.errors else {}
        line, col = first.get("line"), first.get("col")
        if line is not None and col is not None:
            col = max(1, col - len(first.get("highlight") or "") + 1)
        raise ParseError(f"syntax error: {first.get('description') or e}"
                         + _near(first), line, col) from None
    except sqlglot.errors.TokenError as e:
        raise ParseError(f"syntax error: {e}") from None
    return [s for s in statements if s is not None]


def _near(err: dict) -> str:
    h = (err.get("highlight") or "").strip()
    return f" near '{h}'" if h else ""


def locate(sql: str, name: str) -> tuple[int | None, int | None]:
    """Where identifier NAME first appears in SQL (for errors sqlglot raises
    past the parser without a position)."""
    import re
    m = re.search(r"(?<![\w.])" + re.escape(name) + r"(?!\w)", sql, re.IGNORECASE)
    if not m:
        return None, None
    return line_col(sql, m.start())

"""How columns are named inside a plan. Between fragments, a column of
source ALIAS is named "ALIAS.col" (one flat, quoted identifier), so the
inputs of a join never clash; a fragment's SQL refers to them so."""

from __future__ import annotations

from sqlglot import exp


def flat_name(table: str, column: str) -> str:
    return f"{table}.{column}"


def flat(e: exp.Expression) -> exp.Expression:
    def f(n):
        if isinstance(n, exp.Column) and n.table and not isinstance(n.this, exp.Star):
            return exp.column(exp.to_identifier(flat_name(n.table, n.name), quoted=True))
        return n
    return e.copy().transform(f, copy=False)


def plain(e: exp.Expression) -> exp.Expression:
    """E with its columns' tables dropped (a scan's filter over the file's own names)."""
    def f(n):
        if isinstance(n, exp.Column) and n.table:
            return exp.column(exp.to_identifier(n.name, quoted=True))
        return n
    return e.copy().transform(f, copy=False)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql(e: exp.Expression) -> str:
    return e.sql(dialect="duckdb")


def aliases(e: exp.Expression) -> set[str]:
    return {c.table for c in e.find_all(exp.Column) if c.table}


def conjuncts(e: exp.Expression | None) -> list[exp.Expression]:
    if e is None:
        return []
    if isinstance(e, exp.Paren) and isinstance(e.this, exp.And):
        return conjuncts(e.this)
    if isinstance(e, exp.And):
        return conjuncts(e.left) + conjuncts(e.right)
    return [e]


def conjoin(es: list[exp.Expression]) -> exp.Expression | None:
    if not es:
        return None
    out = es[0]
    for e in es[1:]:
        out = exp.and_(out, e, copy=False)
    return out

"""A translated relation: a query of the SQL layer (a sqlglot SELECT) whose
output columns carry internal names unique within it, beside the names the
user sees. Spark lets a DataFrame hold two columns called `id` (after a
join) and tells them apart by the DataFrame they came from; SQL cannot, so
every column has an internal name and the plan ids it came through."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlglot import exp

from stackyard.sparkconnect.expressions import Col, Scope, Source


@dataclass
class Rel:
    query: exp.Expression
    cols: list[Col]
    plan_ids: frozenset = frozenset()
    # set where the rows are already at hand (show_string, describe, ...)
    sort_kept: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cols]


class Namer:
    """Internal names unique within one output (case-insensitively, as DuckDB
    compares names), readable where they can be."""

    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, visible: str) -> str:
        # lower case: the SQL layer folds names as Spark's dialect does
        base = re.sub(r"[^a-z0-9_]", "_", visible.lower())[:40] or "c"
        name, k = base, 1
        while name.lower() in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name.lower())
        return name


class Aliases:
    def __init__(self):
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"t{self.n}"


def source(rel: Rel, alias: str) -> tuple[Source, exp.Expression]:
    """REL as a FROM item called ALIAS, and the Source its columns resolve in."""
    sub = exp.Subquery(this=rel.query, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    return Source(alias, rel.cols, rel.plan_ids), sub


def scope_of(*sources: Source) -> Scope:
    return Scope(list(sources))


def project(from_: exp.Expression, items: list[tuple[exp.Expression, Col]],
            plan_ids: frozenset = frozenset()) -> Rel:
    """SELECT each expression AS its column's internal name FROM FROM_."""
    exprs = [exp.alias_(e, c.internal, quoted=True) for e, c in items] or \
        [exp.alias_(exp.Literal.number(1), "__none")]     # select(): rows, no columns
    sel = exp.select(*exprs).from_(from_)
    return Rel(sel, [c for _, c in items], plan_ids)


def passthrough(src: Source, namer: Namer | None = None) -> list[tuple[exp.Expression, Col]]:
    """Every column of SRC, unchanged."""
    namer = namer or Namer()
    out = []
    for c in src.cols:
        out.append((exp.column(c.internal, src.alias, quoted=True),
                    Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
    return out


def wrap_select(rel: Rel, alias: str) -> tuple[Source, exp.Select]:
    """SELECT every column of REL FROM it, to add a clause to."""
    src, sub = source(rel, alias)
    sel = exp.select(*[exp.alias_(exp.column(c.internal, alias, quoted=True), c.internal,
                                  quoted=True) for c in rel.cols]).from_(sub)
    return src, sel

"""groupBy / rollup / cube / grouping sets / pivot, as GROUP BY queries."""

from __future__ import annotations

from pyspark.sql.connect.proto import relations_pb2 as R
from sqlglot import exp

from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.expressions import Col, python_value
from stackyard.sparkconnect.names import name_of
from stackyard.sparkconnect.rel import Namer, project

G = R.Aggregate.GroupType


def aggregate(planner, a: R.Aggregate):
    rel, scope, sub = planner.child(a.input)
    tr = planner.tr(scope)
    namer = Namer()
    keys, items = [], []
    for g in a.grouping_expressions:
        e = tr(g)
        name = e.alias if isinstance(e, exp.Alias) else name_of(g)
        inner = e.this if isinstance(e, exp.Alias) else e
        keys.append(inner)
        pids, quals = frozenset(), frozenset()
        if g.WhichOneof("expr_type") == "unresolved_attribute":
            ua = g.unresolved_attribute
            _, col = scope.resolve(ua.unparsed_identifier,
                                   ua.plan_id if ua.HasField("plan_id") else None)
            pids, quals = col.plan_ids, col.qualifiers
        items.append((inner, Col(name, namer(name), pids, quals)))
    if a.group_type == G.GROUP_TYPE_PIVOT:
        items = items + _pivot(planner, rel, scope, tr, a, namer)
    else:
        for e in a.aggregate_expressions:
            out = tr(e)
            name = out.alias if isinstance(out, exp.Alias) else name_of(e)
            inner = out.this if isinstance(out, exp.Alias) else out
            items.append((inner, Col(name, namer(name))))
    out = project(sub, items, frozenset())
    if not keys:
        return out
    if a.group_type == G.GROUP_TYPE_ROLLUP:
        out.query = out.query.group_by(exp.Rollup(expressions=keys))
    elif a.group_type == G.GROUP_TYPE_CUBE:
        out.query = out.query.group_by(exp.Cube(expressions=keys))
    elif a.group_type == G.GROUP_TYPE_GROUPING_SETS:
        sets = [exp.Tuple(expressions=[tr(x) for x in gs.grouping_set])
                for gs in a.grouping_sets]
        group = exp.Group(expressions=[exp.GroupingSets(expressions=sets)])
        out.query.set("group", group)
    else:
        out.query = out.query.group_by(*keys)
    return out


def _pivot(planner, rel, scope, tr, a: R.Aggregate, namer: Namer):
    pcol = tr(a.pivot.col)
    if a.pivot.values:
        values = [python_value(v) for v in a.pivot.values]
        lits = [planner_literal(v) for v in a.pivot.values]
    else:
        # Spark runs a job for the distinct pivot values, sorted; so do we
        src = scope.sources[0]
        q = exp.select(exp.alias_(pcol.copy(), "v", quoted=True)).from_(
            exp.Subquery(this=rel.query.copy(), alias=exp.TableAlias(
                this=exp.to_identifier(src.alias)))).distinct()
        table = planner.session.run_query(q)
        values = sorted((v for v in table.column(0).to_pylist() if v is not None), key=str)
        if None in table.column(0).to_pylist():
            values.append(None)
        if len(values) > 10000:
            raise ConnectError("", "The pivot column has more than 10000 distinct values",
                               "54000")
        lits = [exp.Null() if v is None else (exp.Literal.string(v) if isinstance(v, str)
                                              else exp.Literal.number(v)) for v in values]
    out = []
    aggs = list(a.aggregate_expressions)
    for v, lit in zip(values, lits, strict=True):
        cond = exp.Is(this=pcol.copy(), expression=exp.Null()) if v is None else \
            exp.EQ(this=pcol.copy(), expression=lit)
        for e in aggs:
            agg = tr(e)
            inner = agg.this if isinstance(agg, exp.Alias) else agg
            label = "null" if v is None else str(v)
            name = label if len(aggs) == 1 else \
                f"{label}_{agg.alias if isinstance(agg, exp.Alias) else name_of(e)}"
            out.append((exp.Filter(this=inner, expression=exp.Where(this=cond)),
                        Col(name, namer(name))))
    return out


def planner_literal(lit):
    from stackyard.sparkconnect.expressions import literal
    return literal(lit)

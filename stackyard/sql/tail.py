"""The rest of a SELECT block once its joins are planned: the residual
filter, aggregation (partial before the exchange when every aggregate can
be split, Spark's partial/final HashAggregate; grouping sets partial by all
their keys, then final in one partition), window functions (their input
exchanged by the windows' PARTITION BY), DISTINCT, and ORDER BY / LIMIT
(top-N in every partition before one gathers them)."""

from __future__ import annotations

from sqlglot import exp

from stackyard.sql.names import flat, q, sql
from stackyard.sql.physical import PNode, exchange, fragment

SPLITTABLE = (exp.Sum, exp.Count, exp.Min, exp.Max, exp.Avg)
_DUCKDB_AGGREGATES: set[str] = set()


def is_aggregate(node: exp.Expression) -> bool:
    """An aggregate call: one sqlglot knows, or a DuckDB aggregate it does
    not (kurtosis_pop, ...), which must still be planned as one."""
    if isinstance(node, exp.AggFunc):
        return True
    if not isinstance(node, exp.Anonymous):
        return False
    if not _DUCKDB_AGGREGATES:
        import duckdb
        rows = duckdb.sql("SELECT DISTINCT function_name FROM duckdb_functions() "
                          "WHERE function_type = 'aggregate'").fetchall()
        _DUCKDB_AGGREGATES.update(r[0].lower() for r in rows)
    return node.name.lower() in _DUCKDB_AGGREGATES


def block(sel: exp.Select, node: PNode, residual: exp.Expression | None, n: int) -> PNode:
    projections = list(sel.expressions)
    having = (sel.args.get("having") or exp.Having()).this
    order = sel.args.get("order")
    group = sel.args.get("group")
    windows = [w for p in projections for w in p.find_all(exp.Window)]
    window_funcs = {id(w.this) for w in windows}
    scope = projections + ([having] if having is not None else []) + \
        ([o.this for o in order.expressions] if order else [])
    aggs = _unique([a for e in scope for a in e.find_all(exp.AggFunc, exp.Anonymous)
                    if is_aggregate(a)
                    if id(a) not in window_funcs and not isinstance(a, exp.Grouping)
                    and not _inside_agg(a)])
    keys, sets = _group_keys(group)
    where = f" WHERE {sql(flat(residual))}" if residual is not None else ""
    rewrite = flat
    group_sql = ""
    if group is not None or aggs:
        if all(_splittable(a) for a in aggs):
            node, rewrite, group_sql, win_keys = _partial(node, sel, keys, sets, aggs, where,
                                                          windows, n)
        else:
            node, group_sql, win_keys = _whole(node, group, keys, sets, where, windows, n)
        where = ""
    elif windows:
        node, win_keys = _window_input(node, windows, where, n)
        where = ""
    # the block's own projection, per partition (top-N when there is a LIMIT)
    names = [p.alias_or_name for p in projections]
    cols = [f"{sql(rewrite(p.this if isinstance(p, exp.Alias) else p))} AS {q(name)}"
            for p, name in zip(projections, names, strict=True)]
    order_keys, hidden = _order_keys(order, projections, names, rewrite) if order else ([], [])
    cols += [f"{sql(e)} AS {q(h)}" for h, e in hidden]
    distinct = "DISTINCT " if sel.args.get("distinct") else ""
    text = f"SELECT {distinct}{', '.join(cols)} FROM __in{where}{group_sql}"
    if having is not None:
        text += f" HAVING {sql(rewrite(having))}"
    limit, offset = _int(sel.args.get("limit")), _int(sel.args.get("offset"))
    if limit is not None and not distinct:
        if order_keys:
            text += f" ORDER BY {', '.join(order_keys)}"
        text += f" LIMIT {limit + (offset or 0)}"
    label = "Project" if group_sql == "" else "HashAggregate(final)"
    out = fragment(label, text, [("__in", node)])
    if distinct and out.partitions > 1:
        out = _distinct_all(out, n)
    return _finish(out, order_keys, limit, offset, [h for h, _ in hidden])


def distinct(node: PNode, n: int) -> PNode:
    local = fragment("HashAggregate(partial distinct)", "SELECT DISTINCT * FROM __in",
                     [("__in", node)])
    return _distinct_all(local, n)


def _distinct_all(node: PNode, n: int) -> PNode:
    return fragment("HashAggregate(distinct)", "SELECT DISTINCT * FROM __in",
                    [("__in", exchange(node, tuple(node.names), n))])


def order_limit(node: PNode, query: exp.Expression, n: int) -> PNode:
    """ORDER BY / LIMIT on a set operation's result (its output names)."""
    order = query.args.get("order")
    keys = [sql(_ordered(o, node.names)) for o in (order.expressions if order else [])]
    return _finish(node, keys, _int(query.args.get("limit")), _int(query.args.get("offset")), [])


def _ordered(o: exp.Ordered, names: list[str]) -> exp.Ordered:
    e = o.this
    if isinstance(e, exp.Literal) and not e.is_string:
        e = exp.column(exp.to_identifier(names[int(e.this) - 1], quoted=True))
    elif isinstance(e, exp.Column):
        e = exp.column(exp.to_identifier(e.name, quoted=True))
    out = o.copy()
    out.set("this", e)
    return out


def _finish(node: PNode, order_keys: list[str], limit: int | None, offset: int | None,
            hidden: list[str]) -> PNode:
    if order_keys or limit is not None or offset:
        gathered = exchange(node, (), 1)
        text = "SELECT * FROM __in"
        if order_keys:
            text += f" ORDER BY {', '.join(order_keys)}"
        if limit is not None:
            text += f" LIMIT {limit}"
        if offset:
            text += f" OFFSET {offset}"
        label = ("TakeOrderedAndProject" if limit is not None else "Sort") if order_keys \
            else "CollectLimit"
        node = fragment(label, text, [("__in", gathered)],
                        rows=min(node.rows, limit) if limit is not None else node.rows)
    if hidden:
        keep = ", ".join(q(c) for c in node.names if c not in hidden)
        node = fragment("Project", f"SELECT {keep} FROM __in", [("__in", node)])
    return node


# -- aggregation ------------------------------------------------------------------------


def _group_keys(group: exp.Group | None) -> tuple[list[exp.Expression], bool]:
    if group is None:
        return [], False
    keys, sets = [], False
    for e in group.expressions:
        if isinstance(e, exp.Rollup | exp.Cube):
            keys += e.expressions
            sets = True
        elif isinstance(e, exp.GroupingSets):
            sets = True
            for s in e.expressions:
                keys += s.expressions if isinstance(s, exp.Tuple) else \
                    [s.this] if isinstance(s, exp.Paren) else [s]
        else:
            keys.append(e)
    for k in ("rollup", "cube", "grouping_sets"):
        for e in group.args.get(k) or []:
            sets = True
            keys += getattr(e, "expressions", [e])
    return _unique(keys), sets


def _splittable(a: exp.AggFunc) -> bool:
    if not isinstance(a, SPLITTABLE) or a.find(exp.Distinct):
        return False
    return not isinstance(a.parent, exp.Filter)


def _partial(node, sel, keys, sets, aggs, where, windows, n):
    """Partial aggregation per partition, an exchange by the keys, then the
    final merge; returns the rewrite that maps the block's expressions onto
    the merged columns."""
    pcols, merged = [], []
    for i, k in enumerate(keys):
        pcols.append(f"{sql(flat(k))} AS {q(f'__g{i}')}")
    j = 0
    for a in aggs:
        arg = a.this
        args = sql(flat(arg)) if arg is not None else "*"
        if isinstance(a, exp.Avg):
            pcols += [f"SUM({args}) AS __a{j}", f"COUNT({args}) AS __a{j + 1}"]
            merged.append(f"(CAST(SUM(__a{j}) AS DOUBLE) / SUM(__a{j + 1}))")
            j += 2
            continue
        fn = {exp.Sum: "SUM", exp.Count: "COUNT", exp.Min: "MIN", exp.Max: "MAX"}[type(a)]
        pcols.append(f"{fn}({args}) AS __a{j}")
        merged.append({"SUM": f"SUM(__a{j})", "COUNT": f"CAST(COALESCE(SUM(__a{j}), 0) AS BIGINT)",
                       "MIN": f"MIN(__a{j})", "MAX": f"MAX(__a{j})"}[fn])
        j += 1
    gsql = " GROUP BY " + ", ".join(q(f"__g{i}") for i in range(len(keys))) if keys else ""
    partial = fragment("HashAggregate(partial)", f"SELECT {', '.join(pcols) or '1 AS __one'} "
                       f"FROM __in{where}{gsql}", [("__in", node)],
                       rows=node.rows * 0.5 if keys else 1)
    key_names = tuple(f"__g{i}" for i in range(len(keys)))
    merged_exprs = [exp.maybe_parse(m, dialect="duckdb") for m in merged]

    def rewrite(e: exp.Expression) -> exp.Expression:
        def f(x):
            for i, k in enumerate(keys):
                if x == k:
                    return exp.column(exp.to_identifier(f"__g{i}", quoted=True))
            for a, m in zip(aggs, merged_exprs, strict=True):
                if x == a:
                    return m.copy()
            return x
        return flat(e.copy().transform(f))

    win_keys = _window_keys(windows, rewrite)
    if sets or not keys:
        ex = exchange(partial, (), 1)
    elif win_keys is not None and win_keys and set(win_keys) <= set(key_names):
        ex = exchange(partial, tuple(win_keys), n)
    elif windows and win_keys != list(key_names):
        ex = exchange(partial, (), 1)
    else:
        ex = exchange(partial, key_names, n)
    group_sql = ""
    if keys:
        group = sel.args["group"].copy()
        group_sql = " GROUP BY " + sql(rewrite(group)).removeprefix("GROUP BY ").strip()
    return ex, rewrite, group_sql, win_keys


def _whole(node, group, keys, sets, where, windows, n):
    """Aggregates that cannot be split (COUNT(DISTINCT), collect_list...): the
    rows themselves exchanged by the group keys, then aggregated once."""
    extra = [f"{sql(flat(k))} AS {q(f'__k{i}')}" for i, k in enumerate(keys)]
    pre = fragment("Project group keys", f"SELECT *{', ' if extra else ''}{', '.join(extra)} "
                   f"FROM __in{where}", [("__in", node)])
    names = tuple(f"__k{i}" for i in range(len(keys)))
    win_keys = _window_keys(windows, flat)
    if sets or not keys or (windows and not win_keys):
        ex = exchange(pre, (), 1)
    elif windows:
        ex = exchange(pre, tuple(win_keys), n)
    else:
        ex = exchange(pre, names, n)
    group_sql = " " + sql(flat(group)) if group is not None else ""
    return ex, group_sql, win_keys


def _window_keys(windows, rewrite) -> list[str] | None:
    """The column names every window partitions by, if they all agree on
    plain columns; None if they do not (then one partition computes them)."""
    if not windows:
        return None
    parts = []
    for w in windows:
        p = [rewrite(e) for e in (w.args.get("partition_by") or [])]
        parts.append(p)
    first = parts[0]
    if not first or any(p != first for p in parts) or \
            not all(isinstance(e, exp.Column) and not e.table for e in first):
        return None
    return [e.name for e in first]


def _window_input(node, windows, where, n):
    keys = _window_keys(windows, flat)
    pre = fragment("Filter", f"SELECT * FROM __in{where}", [("__in", node)]) if where else node
    return exchange(pre, tuple(keys) if keys else (), n if keys else 1), keys


def _order_keys(order, projections, names, rewrite):
    keys, hidden = [], []
    inner = [p.this if isinstance(p, exp.Alias) else p for p in projections]
    for i, o in enumerate(order.expressions):
        e = o.this
        name = None
        if isinstance(e, exp.Literal) and not e.is_string:
            name = names[int(e.this) - 1]
        elif isinstance(e, exp.Column) and not e.table and e.name in names:
            name = e.name
        else:
            for p, nm in zip(inner, names, strict=True):
                if p == e:
                    name = nm
                    break
        if name is None:
            name = f"__o{i}"
            hidden.append((name, rewrite(e)))
        out = o.copy()
        out.set("this", exp.column(exp.to_identifier(name, quoted=True)))
        keys.append(sql(out))
    return keys, hidden


def _int(e) -> int | None:
    if e is None:
        return None
    v = e.expression if isinstance(e, exp.Limit | exp.Offset) else e
    try:
        return int(v.this if isinstance(v, exp.Literal) else v.name)
    except (TypeError, ValueError, AttributeError):
        from stackyard.sql.errors import AnalysisError
        raise AnalysisError(f"LIMIT/OFFSET must be an integer literal, got {v.sql()}") from None


def _unique(items):
    out = []
    for x in items:
        if not any(x == y for y in out):
            out.append(x)
    return out


def _inside_agg(a: exp.Expression) -> bool:
    p = a.parent
    while p is not None:
        if is_aggregate(p) and not isinstance(p, exp.Grouping):
            return True
        if isinstance(p, exp.Window):
            return False
        p = p.parent
    return False

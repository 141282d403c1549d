"""The DataFrame conveniences Spark builds from other relations: show(),
sample, na.fill / na.drop / na.replace, describe / summary, unpivot,
to(schema), and statistics (corr, cov, crosstab, approxQuantile, freqItems)."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql.connect.proto import relations_pb2 as R
from sqlglot import exp

from stackyard.sparkconnect import show, types
from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.expressions import Col, python_value
from stackyard.sparkconnect.rel import Namer, Rel, project, wrap_select


def _limited(session, r: R.Relation, n: int) -> tuple[pa.Table, bool]:
    from stackyard.sparkconnect.relations import RelationPlanner
    planner = RelationPlanner(session)
    rel = planner.plan(r)
    _, sel = wrap_select(rel, planner.alias())
    rows = session.collect(Rel(sel.limit(max(0, n) + 1), rel.cols))
    return rows.slice(0, max(0, n)), rows.num_rows > n


def show_string_table(session, s: R.ShowString) -> pa.Table:
    rows, more = _limited(session, s.input, s.num_rows)
    text = show.show_string(rows, s.num_rows, s.truncate, s.vertical, more)
    return pa.table({"show_string": pa.array([text], pa.string())})


def html_string_table(session, s: R.HtmlString) -> pa.Table:
    rows, more = _limited(session, s.input, s.num_rows)
    return pa.table({"html_string": pa.array([show.html_string(rows, s.num_rows, s.truncate,
                                                               more)], pa.string())})


def show_string(planner, s: R.ShowString) -> Rel:
    return planner.session.table_rel(show_string_table(planner.session, s))


def html_string(planner, s: R.HtmlString) -> Rel:
    return planner.session.table_rel(html_string_table(planner.session, s))


def catalog(planner, c) -> Rel:
    from stackyard.sparkconnect.catalog import run
    return planner.session.table_rel(run(planner.session, c))


def with_relations(planner, w: R.WithRelations) -> Rel:
    return planner.plan(w.root)


def collect_metrics(planner, c: R.CollectMetrics) -> Rel:
    return planner.plan(c.input)


def sample(planner, s: R.Sample) -> Rel:
    rel, scope, sub = planner.child(s.input)
    from stackyard.sparkconnect.rel import passthrough
    out = project(sub, passthrough(scope.sources[0]), rel.plan_ids)
    if s.with_replacement:
        raise ConnectError("UNSUPPORTED_FEATURE", "sample with replacement", "0A000")
    # a row's draw is a hash of its values and the seed: the same in every
    # run and every task, so randomSplit's ranges part the rows exactly
    src = scope.sources[0]
    seed = s.seed if s.HasField("seed") else 0
    cols = [exp.column(c.internal, src.alias, quoted=True) for c in src.cols]
    draw = exp.Div(this=exp.Mod(this=exp.Anonymous(this="hash", expressions=cols + [
        exp.Literal.number(seed)]), expression=exp.Literal.number(1_000_003)),
        expression=exp.Literal.number(1_000_003.0))
    out.query = out.query.where(exp.and_(
        exp.GTE(this=draw.copy(), expression=exp.Literal.number(s.lower_bound)),
        exp.LT(this=draw, expression=exp.Literal.number(s.upper_bound))))
    return out


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def fill_na(planner, f: R.NAFill) -> Rel:
    rel = planner.plan(f.input)
    schema = planner.session.schema(rel)
    src_alias = planner.alias()
    from stackyard.sparkconnect.rel import source
    src, sub = source(rel, src_alias)
    values = [python_value(v) for v in f.values]
    cols = list(f.cols)
    fills: dict[str, object] = {}
    if cols and len(values) == len(cols):
        fills = {c.lower(): v for c, v in zip(cols, values, strict=True)}
    elif values:
        v = values[0]
        for c, field in zip(rel.cols, schema, strict=True):
            if cols and c.name.lower() not in {x.lower() for x in cols}:
                continue
            ok = (isinstance(v, bool) and pa.types.is_boolean(field.type)) or \
                (not isinstance(v, bool) and isinstance(v, int | float) and
                 _numeric(field.type)) or \
                (isinstance(v, str) and pa.types.is_string(field.type))
            if ok:
                fills[c.name.lower()] = v
    namer = Namer()
    items = []
    for c, field in zip(rel.cols, schema, strict=True):
        ref = exp.column(c.internal, src.alias, quoted=True)
        if c.name.lower() in fills:
            v = fills[c.name.lower()]
            lit = _lit(v)
            if isinstance(v, float) and pa.types.is_integer(field.type):
                lit = exp.Literal.number(int(v))
            if pa.types.is_floating(field.type):     # NaN is filled as null is
                ref = exp.Nullif(this=ref, expression=exp.Cast(
                    this=exp.Literal.string("NaN"), to=exp.DataType.build("DOUBLE")))
            ref = exp.Cast(this=exp.func("coalesce", ref, lit),
                           to=exp.DataType.build(types.sql_name(field.type), dialect="spark"))
        items.append((ref, Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
    return project(sub, items, rel.plan_ids)


def _lit(v) -> exp.Expression:
    if v is None:
        return exp.Null()
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if isinstance(v, int | float):
        return exp.Literal.number(v)
    return exp.Literal.string(str(v))


def drop_na(planner, d: R.NADrop) -> Rel:
    rel, scope, sub = planner.child(d.input)
    src = scope.sources[0]
    from stackyard.sparkconnect.rel import passthrough
    out = project(sub, passthrough(src), rel.plan_ids)
    names = {c.lower() for c in d.cols}
    schema = planner.session.schema(rel)
    refs = []
    for c, f in zip(src.cols, schema, strict=True):
        if names and c.name.lower() not in names:
            continue
        ref: exp.Expression = exp.column(c.internal, src.alias, quoted=True)
        if pa.types.is_floating(f.type):        # Spark counts NaN as null here
            ref = exp.Nullif(this=ref, expression=exp.Cast(
                this=exp.Literal.string("NaN"), to=exp.DataType.build("DOUBLE")))
        refs.append(ref)
    if not refs:
        return out
    need = d.min_non_nulls if d.HasField("min_non_nulls") else len(refs)
    count = exp.Add(this=exp.Literal.number(0), expression=exp.Literal.number(0))
    terms = [exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=r, expression=exp.Null())),
                                  true=exp.Literal.number(1))],
                      default=exp.Literal.number(0)) for r in refs]
    count = terms[0]
    for t in terms[1:]:
        count = exp.Add(this=count, expression=t)
    out.query = out.query.where(exp.GTE(this=exp.Paren(this=count),
                                        expression=exp.Literal.number(need)))
    return out


def replace(planner, r: R.NAReplace) -> Rel:
    rel, scope, sub = planner.child(r.input)
    src = scope.sources[0]
    names = {c.lower() for c in r.cols}
    pairs = [(python_value(x.old_value), python_value(x.new_value)) for x in r.replacements]
    schema = planner.session.schema(rel)
    namer = Namer()
    items = []
    for c, field in zip(src.cols, schema, strict=True):
        ref = exp.column(c.internal, src.alias, quoted=True)
        if not names or c.name.lower() in names:
            ifs = []
            for old, new in pairs:
                if old is None:
                    cond = exp.Is(this=ref.copy(), expression=exp.Null())
                elif isinstance(old, str) != pa.types.is_string(field.type):
                    continue
                elif isinstance(old, bool) != pa.types.is_boolean(field.type):
                    continue
                else:
                    cond = exp.EQ(this=ref.copy(), expression=_lit(old))
                ifs.append(exp.If(this=cond, true=_lit(new)))
            if ifs:
                ref = exp.Case(ifs=ifs, default=ref)
        items.append((ref, Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
    return project(sub, items, rel.plan_ids)


def describe(planner, d: R.StatDescribe) -> Rel:
    return _summary(planner, d.input, ["count", "mean", "stddev", "min", "max"], list(d.cols))


def summary(planner, s: R.StatSummary) -> Rel:
    stats = list(s.statistics) or ["count", "mean", "stddev", "min", "25%", "50%", "75%",
                                   "max"]
    return _summary(planner, s.input, stats, [])


def _summary(planner, r: R.Relation, stats: list[str], only: list[str]) -> Rel:
    session = planner.session
    rel = planner.plan(r)
    schema = session.schema(rel)
    picked = [(c, f) for c, f in zip(rel.cols, schema, strict=True)
              if (c.name in only if only else (_numeric(f.type) or
                                                pa.types.is_string(f.type)))]
    alias = planner.alias()
    from stackyard.sparkconnect.rel import source
    src, sub = source(rel, alias)
    aggs = []
    for c, f in picked:
        ref = exp.column(c.internal, alias, quoted=True)
        num = _numeric(f.type)
        for s in stats:
            if s == "count":
                e = exp.Count(this=ref.copy())
            elif s == "mean":
                e = exp.Avg(this=ref.copy()) if num else exp.Null()
            elif s == "stddev":
                e = exp.Stddev(this=ref.copy()) if num else exp.Null()
            elif s in ("min", "max"):
                e = (exp.Min if s == "min" else exp.Max)(this=ref.copy())
            elif s.endswith("%"):
                e = exp.PercentileDisc(this=ref.copy(), expression=exp.Literal.number(
                    float(s[:-1]) / 100)) if num else exp.Null()
            elif s == "count_distinct":
                e = exp.Count(this=exp.Distinct(expressions=[ref.copy()]))
            else:
                raise ConnectError("", f"{s} is not a recognised statistic", "42000")
            aggs.append(exp.Cast(this=e, to=exp.DataType.build("STRING")))
    if not aggs:
        table = pa.table({"summary": pa.array(stats, pa.string())})
        return session.table_rel(table)
    q = exp.select(*[exp.alias_(a, f"a{i}", quoted=True) for i, a in enumerate(aggs)]).from_(
        sub)
    row = session.run_query(q).to_pylist()[0]
    values = list(row.values())
    cols = {"summary": pa.array(stats, pa.string())}
    for k, (c, f) in enumerate(picked):
        vals = values[k * len(stats):(k + 1) * len(stats)]
        out = []
        for s, v in zip(stats, vals, strict=True):
            if v is not None and s in ("mean", "stddev") or (v is not None and s.endswith("%")):
                try:
                    fv = float(v)
                    v = show.java_double(fv) if s in ("mean", "stddev") else v
                except ValueError:
                    pass
            if v is not None and pa.types.is_floating(f.type) and s in ("min", "max"):
                v = show.java_double(float(v))
            out.append(v)
        cols[c.name] = pa.array(out, pa.string())
    return session.table_rel(pa.table(cols))


def unpivot(planner, u: R.Unpivot) -> Rel:
    rel, scope, sub = planner.child(u.input)
    tr = planner.tr(scope)
    ids = [tr(i) for i in u.ids]
    id_names = [_name(i) for i in u.ids]
    if u.HasField("values"):
        vals = [(tr(v), _name(v)) for v in u.values.values]
    else:
        idset = {n.lower() for n in id_names}
        vals = [(exp.column(c.internal, scope.sources[0].alias, quoted=True), c.name)
                for c in scope.sources[0].cols if c.name.lower() not in idset]
    parts = []
    namer = Namer()
    cols = [Col(n, namer(n)) for n in id_names] + \
        [Col(u.variable_column_name, namer(u.variable_column_name)),
         Col(u.value_column_name, namer(u.value_column_name))]
    for v, name in vals:
        sel = exp.select(*[exp.alias_(i.copy(), c.internal, quoted=True)
                           for i, c in zip(ids, cols, strict=False)],
                         exp.alias_(exp.Literal.string(name), cols[-2].internal, quoted=True),
                         exp.alias_(v, cols[-1].internal, quoted=True)).from_(sub.copy())
        parts.append(sel)
    q = parts[0]
    for p in parts[1:]:
        q = exp.Union(this=q, expression=p, distinct=False)
    wrapped = exp.select(*[exp.column(c.internal, "u", quoted=True) for c in cols]).from_(
        exp.Subquery(this=q, alias=exp.TableAlias(this=exp.to_identifier("u"))))
    return Rel(wrapped, cols)


def _name(e) -> str:
    from stackyard.sparkconnect.names import name_of
    return name_of(e)


def to_schema(planner, t: R.ToSchema) -> Rel:
    rel, scope, sub = planner.child(t.input)
    src = scope.sources[0]
    target = types.to_arrow(t.schema)
    namer = Namer()
    items = []
    for f in target:
        ref, col = scope.resolve(f.name)
        items.append((exp.Cast(this=ref, to=exp.DataType.build(types.sql_name(f.type),
                                                                dialect="spark")),
                      Col(f.name, namer(f.name), col.plan_ids, col.qualifiers)))
    del src
    return project(sub, items, rel.plan_ids)


def _pair_agg(planner, r, col1: str, col2: str, func: str) -> Rel:
    rel, scope, sub = planner.child(r)
    a, _ = scope.resolve(col1)
    b, _ = scope.resolve(col2)
    q = exp.select(exp.alias_(exp.func(func, a, b, dialect="spark"), "v", quoted=True)).from_(
        sub)
    return Rel(q, [Col(f"{func}({col1}, {col2})", "v")])


def corr(planner, c: R.StatCorr) -> Rel:
    return _pair_agg(planner, c.input, c.col1, c.col2, "corr")


def cov(planner, c: R.StatCov) -> Rel:
    return _pair_agg(planner, c.input, c.col1, c.col2, "covar_samp")


def crosstab(planner, c: R.StatCrosstab) -> Rel:
    rel, scope, sub = planner.child(c.input)
    a, _ = scope.resolve(c.col1)
    b, _ = scope.resolve(c.col2)
    q = exp.select(exp.alias_(exp.Cast(this=a, to=exp.DataType.build("STRING")), "a"),
                   exp.alias_(exp.Cast(this=b, to=exp.DataType.build("STRING")), "b"),
                   exp.alias_(exp.Count(this=exp.Star()), "n")).from_(sub).group_by(
        exp.column("a"), exp.column("b"))
    rows = planner.session.run_query(q).to_pylist()
    keys = sorted({r["b"] for r in rows}, key=lambda v: (v is None, str(v)))
    firsts = sorted({r["a"] for r in rows}, key=lambda v: (v is None, str(v)))
    counts = {(r["a"], r["b"]): r["n"] for r in rows}
    cols = {f"{c.col1}_{c.col2}": pa.array([("null" if v is None else v) for v in firsts])}
    for k in keys:
        cols["null" if k is None else k] = pa.array([counts.get((f, k), 0) for f in firsts],
                                                    pa.int64())
    return planner.session.table_rel(pa.table(cols))


def approx_quantile(planner, q: R.StatApproxQuantile) -> Rel:
    rel, scope, sub = planner.child(q.input)
    probs = list(q.probabilities)
    items = []
    for name in q.cols:
        ref, _ = scope.resolve(name)
        items.append(exp.PercentileDisc(
            this=exp.Cast(this=ref, to=exp.DataType.build("DOUBLE")),
            expression=exp.Array(expressions=[exp.Literal.number(p) for p in probs])))
    sel = exp.select(*[exp.alias_(i, f"q{k}") for k, i in enumerate(items)]).from_(sub)
    row = planner.session.run_query(sel).to_pylist()[0]
    values = [list(v) if v is not None else [] for v in row.values()]
    table = pa.table({"approx_quantile": pa.array([values], pa.list_(pa.list_(pa.float64())))})
    return planner.session.table_rel(table)


def freq_items(planner, f: R.StatFreqItems) -> Rel:
    rel, scope, sub = planner.child(f.input)
    support = f.support if f.HasField("support") else 0.01
    sel_items = []
    for name in f.cols:
        ref, _ = scope.resolve(name)
        sel_items.append(exp.alias_(exp.ArrayAgg(this=ref), name, quoted=True))
    rows = planner.session.run_query(exp.select(*sel_items).from_(sub)).to_pylist()[0]
    cols = {}
    for name in f.cols:
        vals = rows[name] or []
        n = len(vals)
        counts: dict = {}
        for v in vals:
            counts[v] = counts.get(v, 0) + 1
        cols[f"{name}_freqItems"] = [[v for v, k in counts.items() if k >= support * n]]
    return planner.session.table_rel(pa.table(cols))


def map_partitions(planner, m: R.MapPartitions) -> Rel:
    """mapInPandas / mapInArrow (and foreach, foreachPartition): the client's
    function over the input's rows, a partition per task in the workers."""
    import cloudpickle

    from stackyard.sparkconnect.udfs import MAP_ARROW, MAP_PANDAS, ipc, partition_mapper
    session = planner.session
    rel = planner.plan(m.input)
    rows = session.collect(rel)
    udf = m.func.python_udf
    func, _ = cloudpickle.loads(udf.command)
    if udf.eval_type not in (MAP_PANDAS, MAP_ARROW):
        raise ConnectError("UNSUPPORTED_FEATURE",
                           f"mapPartitions of eval type {udf.eval_type}", "0A000")
    out_type = types.to_arrow(udf.output_type)
    schema = pa.schema(list(out_type)) if pa.types.is_struct(out_type) else \
        pa.schema([("value", out_type)])
    ctx = session.sql.ctx
    slices = max(1, min(ctx.defaultParallelism, rows.num_rows // 1000 or 1))
    step = -(-rows.num_rows // slices) if rows.num_rows else 1
    pieces = [ipc(rows.slice(i, step)) for i in range(0, max(rows.num_rows, 1), step)]
    apply = partition_mapper(func, udf.eval_type == MAP_PANDAS, schema,
                              session.artifacts.python_files())
    parts = ctx.parallelize(pieces, len(pieces)).mapPartitions(apply).collect()
    tables = [pa.ipc.open_stream(p).read_all() for p in parts]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return session.table_rel(table)
